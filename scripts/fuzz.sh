#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan, build-fuzz/) and runs each for SECONDS (default 45),
# as many targets at once as there are cores (one process each).
#   scripts/fuzz.sh [--minimise] [SECONDS] [TARGET...]     targets: safetensors config tokenizer jsonl http_body request_framing
# FUZZ_RUNS=N also stops each target after N executions (the long runs: FUZZ_RUNS=10000000 with a large SECONDS);
# `kill -INT` of a target's process stops it early as a clean run (libFuzzer exits 72 after its final stats).
# SECONDS 0 with --minimise: only the minimising step, over what earlier runs left in build-fuzz/corpus.
# Each target reads the repository's corpus, fuzz/corpus/<target>/ (hand-written seeds at the top, the grown
# corpus of earlier long runs in grown/), and writes what it finds to build-fuzz/corpus/<target>; crashes go
# to build-fuzz/crashes/. Every run appends its executions to build-fuzz/executions.tsv (the figures in
# docs/robustness.md are sums of it). --minimise, after the runs: fuzz/corpus/<target>/grown/ becomes the
# smallest set of inputs that, with the seeds, covers all that the seeds, grown/ and the new finds cover.
set -euo pipefail
cd "$(dirname "$0")/.."
minimise=0
if [ "${1:-}" = "--minimise" ]; then minimise=1; shift; fi
seconds=${1:-45}
shift || true
targets=(${@:-safetensors config tokenizer jsonl http_body request_framing})
jobs=$(nproc 2>/dev/null || echo 2)
CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B build-fuzz -DPAIRRM_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# Only the targets that run (not the CLI, the shared library or the other targets).
cmake --build build-fuzz -j"$jobs" --target "${targets[@]/#/fuzz_}"
mkdir -p build-fuzz/crashes
# malloc_context_size=0: ASan records no stack per malloc/free while fuzzing (recording it was a quarter of
# fuzz_tokenizer's time: 1.6x the executions per second without it); detection is unchanged, and a failure's
# input is re-run with full stacks for the report (report_with_stacks).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:malloc_context_size=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# Every execution of a target, fuzzing, merging or re-running one input, under the same limits:
# -max_len 8192: big enough for every parser's structure; -timeout 10: a hang is a failure.
limits=(-max_len=8192 -timeout=10 -rss_limit_mb=4096)

run_target() {
  local t=$1
  mkdir -p build-fuzz/corpus/"$t"
  build-fuzz/fuzz/fuzz_"$t" -max_total_time="$seconds" -runs="${FUZZ_RUNS:--1}" "${limits[@]}" \
    -artifact_prefix=build-fuzz/crashes/"$t"- -print_final_stats=1 \
    build-fuzz/corpus/"$t" fuzz/corpus/"$t" >build-fuzz/fuzz_"$t".log 2>&1
}

# The failing input again, alone, with allocation and free stacks in ASan's report.
report_with_stacks() {
  local t=$1 input
  input=$(grep -o 'Test unit written to [^ ]*' build-fuzz/fuzz_"$t".log | tail -1 | sed 's/^Test unit written to //' || true)
  [ -n "$input" ] && [ -f "$input" ] || return 0
  echo "== fuzz_$t: $input re-run with full stacks"
  # The run's options and limits, stacks back on (a later ASan option overrides an earlier one).
  ASAN_OPTIONS=$ASAN_OPTIONS:malloc_context_size=30 build-fuzz/fuzz/fuzz_"$t" "${limits[@]}" "$input" 2>&1 |
    tail -60 || true
}

report() {
  local t=$1 status=$2
  echo "== fuzz_$t: ${seconds}s, exit $status"
  grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|SUMMARY|deadly signal|Test unit written' \
    build-fuzz/fuzz_"$t".log || true
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' build-fuzz/fuzz_"$t".log | grep -o '[0-9]*$' || echo 0)
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$runs" "$seconds" "$status" >>build-fuzz/executions.tsv
  if [ "$status" -ne 0 ] && [ "$status" -ne 72 ]; then
    tail -40 build-fuzz/fuzz_"$t".log
    report_with_stacks "$t"
    echo "fuzz_$t FAILED (exit $status; inputs in build-fuzz/crashes/)"
    return 1
  fi
}

# Up to $jobs targets at once; each one's log is reported when it ends.
declare -A pid_target=()
failed=0
reap_one() {
  local status=0 done_pid
  wait -n -p done_pid "${!pid_target[@]}" || status=$?
  report "${pid_target[$done_pid]}" "$status" || failed=1
  unset "pid_target[$done_pid]"
}
for t in "${targets[@]}"; do
  [ -x build-fuzz/fuzz/fuzz_"$t" ] || { echo "unknown fuzz target '$t'" >&2; exit 2; }
  if [ "$seconds" -eq 0 ]; then continue; fi
  while [ "${#pid_target[@]}" -ge "$jobs" ]; do reap_one; done
  run_target "$t" &
  pid_target[$!]=$t
done
while [ "${#pid_target[@]}" -gt 0 ]; do reap_one; done
[ "$failed" -eq 0 ] || exit 1

if [ "$minimise" -eq 1 ]; then
  for t in "${targets[@]}"; do
    # libFuzzer's merge keeps every input of its first directory and adds from the others only what brings
    # new coverage; starting it from the seeds alone leaves exactly the grown inputs the seeds lack.
    fresh=$(mktemp -d)
    find fuzz/corpus/"$t" -maxdepth 1 -type f -exec cp {} "$fresh"/ \;
    ls "$fresh" | sort >"$fresh.seeds"
    mkdir -p fuzz/corpus/"$t"/grown
    build-fuzz/fuzz/fuzz_"$t" -merge=1 "${limits[@]}" \
      "$fresh" fuzz/corpus/"$t"/grown build-fuzz/corpus/"$t" >build-fuzz/merge_"$t".log 2>&1 ||
      { tail -40 build-fuzz/merge_"$t".log; echo "fuzz_$t: merge FAILED"; exit 1; }
    rm -f fuzz/corpus/"$t"/grown/*
    comm -13 "$fresh.seeds" <(ls "$fresh" | sort) | while read -r f; do mv "$fresh/$f" fuzz/corpus/"$t"/grown/; done
    echo "== fuzz_$t: fuzz/corpus/$t/grown has $(ls fuzz/corpus/"$t"/grown | wc -l) inputs ($(du -sh --apparent-size fuzz/corpus/"$t"/grown | cut -f1))"
    rm -rf "$fresh" "$fresh.seeds"
  done
fi
