#!/usr/bin/env bash
# Installs every Debian package pairrm.cpp needs to build, test and benchmark, then builds it (build/).
# Non-interactive and idempotent; run as root (no sudo needed) or through sudo. --deps-only: packages only.
# --bench also installs PyTorch (python3-torch, ~1 GB with its dependencies) for bench/pytorch_baseline.py
# and bench/onnx_export.py, and ONNX Runtime (npm onnxruntime-node, bench/ort) for bench/ort_bench.mjs: the
# PyTorch and ONNX Runtime sides of BENCHMARKS.md; nothing else needs them.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PACKAGES=(
  build-essential cmake pkg-config git
  libsentencepiece-dev   # tokenizer: the spm.model Unigram
  libutf8proc-dev        # grapheme clusters for fast-tokenizer parity
  libdnnl-dev            # GEMM (oneDNN)
  nlohmann-json3-dev     # config.json, safetensors header, JSONL
  libcli11-dev           # command line
  libcpp-httplib-dev     # pairrm serve (HTTP)
  libcurl4-openssl-dev libssl-dev   # Hugging Face Hub downloads, sha256
  libgtest-dev libgmock-dev  # tests
  curl wrk               # server examples and its load test
  clang libclang-rt-14-dev   # libFuzzer targets (scripts/fuzz.sh)
  chromium fonts-liberation  # renders the eval HTML report in its test (headless)
  libbenchmark-dev       # micro benchmarks
  python3 python3-dev pybind11-dev     # the Python module
  python3-numpy python3-pytest         # its runtime and tests
  python3-dask python3-distributed     # pairrm.dask (cluster scoring) and its tests
  python3-torch          # the "with torch" half of the llm_blender / trl tests (~540 MB installed, 160 packages)
  python3-pip python3-venv python3-setuptools python3-wheel  # pip install . (offline: --no-build-isolation)
  qemu-user              # runs the portable binary as older CPUs (x86-64 baseline, AVX2) in its package test
  dpkg-dev file          # cpack -G DEB: dpkg-shlibdeps derives the package's Depends
)
# OpenBLAS's pthread build: python3-torch alone may pull a single-threaded BLAS.
if [ "${1:-}" = "--bench" ]; then PACKAGES+=(python3-torch libopenblas0-pthread); fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
# The one-command set-up: dependencies, then the build (--deps-only stops after the packages).
if [ "${1:-}" != "--deps-only" ] && [ "${1:-}" != "--bench" ]; then
  cd "$(dirname "$0")/.."
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
  echo "setup: built build/pairrm (try: build/pairrm compare --source \"hello!\" --a \"hi!\" --b \"f**k off!\")"
fi
# --bench: ONNX Runtime for the same-run peer column (bench/ort_bench.mjs), from npm's onnxruntime-node,
# which ships ONNX Runtime's native CPU library; --ignore-scripts: its post-install only fetches a GPU part
# (from a host this needs no access to).
if [ "${1:-}" = "--bench" ]; then
  if ! command -v npm >/dev/null 2>&1; then $SUDO apt-get install -y -qq --no-install-recommends nodejs npm; fi
  npm ci --prefix "$(dirname "$0")/../bench/ort" --ignore-scripts --no-audit --no-fund
fi
# The real client libraries of the protocol tests (tests/clients: cohere-ai and openai from npm, pinned by
# its package-lock.json), which CTest's ProtocolClients.NpmClients runs against `pairrm serve`; under
# CI=true their absence fails that test, so a failed install fails the set-up there.
if ! command -v npm >/dev/null 2>&1; then $SUDO apt-get install -y -qq --no-install-recommends nodejs npm; fi
# (The build above may have changed directory to the repository: look beside this script, then here.)
CLIENTS=""
for root in "$(dirname "$0")/.." "$PWD"; do
  if [ -f "$root/tests/clients/package.json" ]; then CLIENTS="$root/tests/clients"; break; fi
done
if [ -z "$CLIENTS" ] || ! npm ci --prefix "$CLIENTS" --no-audit --no-fund; then
  echo "setup: warning: npm ci in tests/clients failed: the npm client tests will be skipped" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
fi
