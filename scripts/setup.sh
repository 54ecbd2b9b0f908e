#!/usr/bin/env bash
# Installs the Debian packages pairrm.cpp needs, then builds it (build/). Non-interactive and idempotent;
# run as root (no sudo needed) or as a user with sudo.
#   scripts/setup.sh            build and run: the compiler and the libraries (and the Python module's
#                               build tools), then the Release build in build/
#   scripts/setup.sh --dev      + what the tests need (scripts/test.sh, .ci/run): GoogleTest, clang and
#                               libFuzzer, Chromium, QEMU, PyTorch, Dask, the npm protocol clients, wrk
#   scripts/setup.sh --bench    + PyTorch with the pthread OpenBLAS, and ONNX Runtime (npm onnxruntime-node,
#                               bench/ort): the peer columns of BENCHMARKS.md
#   --deps-only                 with any of the above: packages only, no build (scripts/test.sh builds)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."
dev=0 bench=0 build=1
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    --bench) bench=1 ;;
    --deps-only) build=0 ;;
    *) echo "setup.sh: unknown option '$arg' (--dev, --bench, --deps-only)" >&2; exit 2 ;;
  esac
done
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: run as root, or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

# Build and run.
PACKAGES=(
  build-essential cmake pkg-config git
  libsentencepiece-dev   # tokenizer: the spm.model Unigram
  libutf8proc-dev        # grapheme clusters for fast-tokenizer parity
  libdnnl-dev            # GEMM (oneDNN)
  nlohmann-json3-dev     # config.json, safetensors header, JSONL
  libcli11-dev           # command line
  libcpp-httplib-dev     # pairrm serve (HTTP)
  libcurl4-openssl-dev libssl-dev   # Hugging Face Hub downloads, sha256
  curl                   # the server examples
  python3 python3-dev pybind11-dev python3-numpy   # the Python module and its runtime
  python3-pip python3-venv python3-setuptools python3-wheel  # pip install . (offline: --no-build-isolation)
)
# What the tests need.
DEV_PACKAGES=(
  libgtest-dev libgmock-dev  # the C++ tests
  libbenchmark-dev       # micro benchmarks (built with the tests, so that they compile)
  clang libclang-rt-14-dev   # libFuzzer targets (scripts/fuzz.sh)
  chromium fonts-liberation  # renders the eval HTML report in its test (headless)
  python3-pytest         # the Python tests
  python3-dask python3-distributed     # pairrm.dask (cluster scoring) and its tests
  python3-torch          # the "with torch" half of the llm_blender / trl tests (~540 MB installed)
  qemu-user              # runs the portable binary as older CPUs (x86-64 baseline, AVX2) in its package test
  dpkg-dev file          # cpack -G DEB: dpkg-shlibdeps derives the package's Depends
  wrk                    # the server's load test
  nodejs                 # the real npm client libraries of the protocol tests (npm: see below)
)
# OpenBLAS's pthread build: python3-torch alone may pull a single-threaded BLAS, and PyTorch would then run
# the reference BLAS and every ratio against it would be wrong.
BENCH_PACKAGES=(python3-torch libopenblas0-pthread nodejs wrk libbenchmark-dev)
if [ "$dev" = 1 ]; then PACKAGES+=("${DEV_PACKAGES[@]}"); fi
if [ "$bench" = 1 ]; then PACKAGES+=("${BENCH_PACKAGES[@]}"); fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
# npm on its own, and only when the command is missing: a nodejs built by NodeSource already ships npm and
# Conflicts with Debian's npm package, so naming both in one install fails the whole transaction.
if { [ "$dev" = 1 ] || [ "$bench" = 1 ]; } && ! command -v npm >/dev/null 2>&1; then
  $SUDO apt-get install -y -qq --no-install-recommends npm
fi

if [ "$dev" = 1 ]; then
  # The real client libraries of the protocol tests (tests/clients: cohere-ai and openai, pinned by its
  # package-lock.json), which CTest's ProtocolClients.NpmClients runs against `pairrm serve`; under CI
  # their absence fails that test, so a failed install fails the set-up there.
  if ! npm ci --prefix tests/clients --no-audit --no-fund; then
    echo "setup: warning: npm ci in tests/clients failed: the npm client tests will be skipped" >&2
    if [ -n "${CI:-}" ]; then exit 1; fi
  fi
fi
if [ "$bench" = 1 ]; then
  # ONNX Runtime for the same-run peer column (bench/ort_bench.mjs), from npm's onnxruntime-node, which ships
  # ONNX Runtime's native CPU library; --ignore-scripts: its post-install only fetches a GPU part (from a host
  # this needs no access to).
  npm ci --prefix bench/ort --ignore-scripts --no-audit --no-fund
fi

if [ "$build" = 1 ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
  echo "setup: built build/pairrm (try: build/pairrm compare --source \"hello!\" --a \"hi!\" --b \"f**k off!\")"
fi
