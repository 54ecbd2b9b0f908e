#!/usr/bin/env bash
# Load test of `pairrm serve` on loopback with wrk: C concurrent connections for D seconds of POST /compare
# (both orders: 2 forward passes per request), then the server's own view from /metrics (batch sizes,
# rejections). Bounded in time; the server is started and stopped here.
#   bench/load_test.sh [--model DIR] [--connections C] [--duration S] [--threads T] [serve flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/tiny connections=32 duration=60 threads=2
. bench/server_args.sh
parse_server_args "$@"

out=$(mktemp)
"$bin" serve --model "$model" --port 0 --threads "$threads" --timeout-s 300 --max-queue 100000 "${extra[@]}" >"$out" 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 200); do grep -q listening "$out" && break; sleep 0.1; done
port=$(grep -o '[0-9]*$' "$out")
url="http://127.0.0.1:$port"

echo "== wrk: $connections connections, ${duration}s, model $model, $threads threads"
wrk -t2 -c"$connections" -d"${duration}s" --timeout 300s --latency -s bench/load_test.lua "$url" | tee /dev/stderr | grep '^RESULT'
echo "== server metrics"
curl -s "$url/metrics" | grep -E '^pairrm_(batch_rows_(sum|count)|batches_total|rows_total|tokens_total|tokens_per_second|rejected_total|requests_total)' 
curl -s "$url/metrics" | awk '/^pairrm_batch_rows_sum/ {s=$2} /^pairrm_batch_rows_count/ {c=$2} END {if (c) printf "mean batch size %.2f rows\n", s/c}'
kill -TERM $pid
wait $pid
