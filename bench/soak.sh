#!/usr/bin/env bash
# Soak test of `pairrm serve`: C connections of POST /compare (bench/load_test.lua's rotating prompts) for D
# seconds, the server's resident memory sampled every 10 s. Passes (exit 0) when no request failed other
# than with 429 (queue full: the documented back-pressure) — no socket error, timeout, 5xx or other 4xx, by
# wrk's count and by the server's own — and the RSS of the last half of the run stays within 5 % of its
# value at the half-way mark (the first half is warm-up: workspaces grow to the largest batch seen).
#   bench/soak.sh [--model DIR] [--connections 64] [--duration 600] [--threads 2] [serve flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/tiny connections=64 duration=600 threads=2
. bench/server_args.sh
parse_server_args "$@"

work=$(mktemp -d)
"$bin" serve --model "$model" --port 0 --threads "$threads" --timeout-s 300 "${extra[@]}" >"$work/serve.out" 2>"$work/serve.err" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 600); do grep -q listening "$work/serve.out" && break; sleep 0.1; done
port=$(grep -o '[0-9]*$' "$work/serve.out")
url="http://127.0.0.1:$port"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
( while kill -0 $pid 2>/dev/null; do echo "$(date +%s) $(rss_kb)"; sleep 10; done ) >"$work/rss" &
sampler=$!

echo "== soak: $connections connections, ${duration}s, model $model, $threads threads, server pid $pid"
wrk -t2 -c"$connections" -d"${duration}s" --timeout 300s --latency -s bench/load_test.lua "$url" >"$work/wrk" || true
kill $sampler 2>/dev/null || true
cat "$work/wrk"
result=$(grep '^RESULT' "$work/wrk")
metrics=$(curl -s "$url/metrics")
echo "== server: requests by status"
echo "$metrics" | grep '^pairrm_requests_total' || true
echo "== RSS (MB) every 10 s"
awk '{printf "%d ", $2 / 1024} END {print ""}' "$work/rss"

# Failures: wrk's socket-level errors, and every status the server answered other than 200, 429 and 499 (the
# requests still queued when wrk stops and hangs up: no client sees those).
socket_errors=$(echo "$result" | grep -o 'errors_[a-z]*=[0-9]*' | awk -F= '{s += $2} END {print s + 0}')
bad_status=$(echo "$metrics" | awk '/^pairrm_requests_total/ && !/status="(200|429|499)"/ {s += $2} END {print s + 0}')
ok=$(echo "$metrics" | awk '/^pairrm_requests_total/ && /status="200"/ {s += $2} END {print s + 0}')
throttled=$(echo "$metrics" | awk '/^pairrm_requests_total/ && /status="429"/ {s += $2} END {print s + 0}')
read -r rss_mid rss_max rss_last < <(awk '{v[NR] = $2} END {m = int((NR + 1) / 2); mx = 0;
  for (i = m; i <= NR; i++) if (v[i] > mx) mx = v[i]; print v[m], mx, v[NR]}' "$work/rss")
growth=$(awk -v a="$rss_mid" -v b="$rss_max" 'BEGIN {printf "%.1f", 100 * (b - a) / a}')
echo "SOAK requests_ok=$ok throttled_429=$throttled socket_errors=$socket_errors other_failures=$bad_status" \
     "rss_mid_mb=$((rss_mid / 1024)) rss_max_second_half_mb=$((rss_max / 1024)) rss_last_mb=$((rss_last / 1024))" \
     "rss_growth_second_half=${growth}% $(echo "$result" | grep -o 'rps=[0-9.]* p50_ms=[0-9.]* p90_ms=[0-9.]* p99_ms=[0-9.]*')"
kill -TERM $pid
wait $pid || true
if [ "$socket_errors" -ne 0 ] || [ "$bad_status" -ne 0 ] || [ "$ok" -eq 0 ]; then echo "SOAK FAILED: failed requests" >&2; exit 1; fi
if awk -v g="$growth" 'BEGIN {exit !(g > 5)}'; then echo "SOAK FAILED: RSS grew ${growth}% in the second half" >&2; exit 1; fi
echo "SOAK PASSED"
