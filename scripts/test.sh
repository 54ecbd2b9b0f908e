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
# Each phase's wall time, printed as it ends and summed up at the end (CI's 90-minute budget is watched there).
start_all=$SECONDS
phase_times=()
phase_start=$SECONDS
end_phase() {
  phase_times+=("$1 $((SECONDS - phase_start)) s")
  echo "== $1: $((SECONDS - phase_start)) s"
  phase_start=$SECONDS
}
trap 'echo "== phase times: ${phase_times[*]:-none} (total $((SECONDS - start_all)) s)"' EXIT
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
        # The release build (build/, Python module on by default) already compiled the engine: pip brings
        # its module target up to date there instead of building everything a second time in build-python/.
        reuse=""
        if grep -qs "PAIRRM_BUILD_PYTHON:BOOL=ON" build/CMakeCache.txt; then reuse=$PWD/build; fi
        PAIRRM_CMAKE_BUILD_DIR=$reuse build-python/venv/bin/python -m pip install --quiet --no-build-isolation --no-deps .
        echo "== python tests"
        (cd python/tests && ../../build-python/venv/bin/python -m pytest -q -p no:cacheprovider)
        end_phase python
        continue ;;
      fuzz) scripts/fuzz.sh "${FUZZ_SECONDS:-30}"; end_phase fuzz; continue ;;
      package) scripts/test_package.sh build; end_phase package; continue ;;
      *) echo "unknown build kind '$k' (release|package|asan|python|fuzz)" >&2; exit 2 ;;
    esac
    echo "== $k build ($dir)"
    cmake -S . -B "$dir" "${flags[@]}" -DPython_EXECUTABLE="$PYTHON" >/dev/null
    cmake --build "$dir" -j"$jobs"
    end_phase "$k-build"
    echo "== $k tests"
    # halt_on_error: a sanitizer report fails the test instead of scrolling past.
    ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
      ctest --test-dir "$dir" --output-on-failure --no-tests=error -j"$jobs"
    end_phase "$k-tests"
  done
done
