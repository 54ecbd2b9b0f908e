#!/usr/bin/env bash
# Builds and runs the test suite. Usage: scripts/test.sh [release] [asan]   (default: both)
#   release: -O2 Release build        -> build/
#   asan:    AddressSanitizer + UBSan -> build-asan/
# Needs ../shared/fixtures (or PAIRRM_FIXTURES=DIR) for the reference values.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
for kind in "${@:-release asan}"; do
  for k in $kind; do
    case "$k" in
      release) dir=build; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
      asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DPAIRRM_SANITIZE=ON) ;;
      *) echo "unknown build kind '$k' (release|asan)" >&2; exit 2 ;;
    esac
    echo "== $k build ($dir)"
    cmake -S . -B "$dir" "${flags[@]}" >/dev/null
    cmake --build "$dir" -j"$jobs"
    echo "== $k tests"
    # halt_on_error: a sanitizer report fails the test instead of scrolling past.
    ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
      ctest --test-dir "$dir" --output-on-failure -j"$jobs"
  done
done
