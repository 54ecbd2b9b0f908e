#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan, build-fuzz/) and runs each for SECONDS (default 45)
# from its seed corpus in fuzz/corpus/<target>; new inputs go to a scratch copy, crashes to build-fuzz/crashes/.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      targets: safetensors config tokenizer jsonl http_body
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-45}
shift || true
targets=("${@:-safetensors config tokenizer jsonl http_body}")
jobs=$(nproc 2>/dev/null || echo 2)
CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B build-fuzz -DPAIRRM_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$jobs"
mkdir -p build-fuzz/crashes
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
for t in ${targets[*]}; do
  work=build-fuzz/corpus/$t
  mkdir -p "$work"
  cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
  echo "== fuzz_$t: ${seconds}s"
  # -max_len 8192: big enough for every parser's structure; -timeout 10: a hang is a failure.
  status=0
  build-fuzz/fuzz/fuzz_"$t" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=4096 \
    -artifact_prefix=build-fuzz/crashes/"$t"- -print_final_stats=1 "$work" >build-fuzz/fuzz_"$t".log 2>&1 || status=$?
  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY|deadly signal|Test unit written' \
    build-fuzz/fuzz_"$t".log || true
  if [ "$status" -ne 0 ]; then
    tail -40 build-fuzz/fuzz_"$t".log
    echo "fuzz_$t FAILED (exit $status; inputs in build-fuzz/crashes/)"
    exit 1
  fi
done
