#!/usr/bin/env bash
# Builds and runs the test suite. Usage: scripts/test.sh [release] [package] [asan] [python] [fuzz]  (default: all)
#   release: -O2 Release build        -> build/        (C++ tests, CTest; the fixture suite once per ISA level)
#   package: cmake --install + C/C++ consumers, the .deb, the binary under QEMU as older CPUs (needs release)
#   asan:    AddressSanitizer + UBSan -> build-asan/   (the same C++ tests)
#   python:  `pip install .` into a fresh venv (build-python/venv, Debian's numpy/pytest visible), then
#            pytest python/tests against the installed package
#   fuzz:    the libFuzzer targets (clang, ASan+UBSan, build-fuzz/), FUZZ_SECONDS (30) each: scripts/fuzz.sh
# The reference values come from the repository's tests/fixtures (PAIRRM_FIXTURES=DIR points elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
# Debian's interpreter (numpy, pytest and pybind11 come from apt); PYTHON=... overrides.
PYTHON=${PYTHON:-/usr/bin/python3}
for kind in "${@:-release package asan python fuzz}"; do
  for k in $kind; do
    case "$k" in
      release) dir=build; flags=(-DCMAKE_BUILD_TYPE=Release) ;;
      # -O1 -g1: line tables for the reports, a third of -O2 -g's compile time (CMakeLists.txt keeps the
      # kernels at -O2); no micro benchmarks, no Python module: the release build has them.
      asan) dir=build-asan; flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
                                   -DPAIRRM_SANITIZE=ON -DPAIRRM_BUILD_PYTHON=OFF -DPAIRRM_BUILD_BENCH=OFF) ;;
      python)
        echo "== python: pip install . into build-python/venv"
        rm -rf build-python/venv
        "$PYTHON" -m venv --system-site-packages build-python/venv
        build-python/venv/bin/python -m pip install --quiet --no-build-isolation --no-deps .
        echo "== python tests"
        (cd python/tests && ../../build-python/venv/bin/python -m pytest -q -p no:cacheprovider)
        continue ;;
      fuzz) scripts/fuzz.sh "${FUZZ_SECONDS:-30}"; continue ;;
      package) scripts/test_package.sh build; continue ;;
      *) echo "unknown build kind '$k' (release|package|asan|python|fuzz)" >&2; exit 2 ;;
    esac
    echo "== $k build ($dir)"
    cmake -S . -B "$dir" "${flags[@]}" -DPython_EXECUTABLE="$PYTHON" >/dev/null
    cmake --build "$dir" -j"$jobs"
    echo "== $k tests"
    # halt_on_error: a sanitizer report fails the test instead of scrolling past.
    ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
      ctest --test-dir "$dir" --output-on-failure --no-tests=error -j"$jobs"
  done
done
