# Sourced by bench/load_test.sh and bench/soak.sh: their shared flags and checks. The caller sets the defaults
# (model, connections, duration, threads) first; parse_server_args "$@" overrides them, collects any other
# flag into extra (passed on to `pairrm serve`) and sets bin, the pairrm binary, after checking it and wrk.
parse_server_args() {
  extra=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --model) model=$2; shift 2 ;;
      --connections) connections=$2; shift 2 ;;
      --duration) duration=$2; shift 2 ;;
      --threads) threads=$2; shift 2 ;;
      *) extra+=("$1"); shift ;;
    esac
  done
  bin=${PAIRRM_BIN:-build/pairrm}
  [ -x "$bin" ] || { echo "build first: cmake -S . -B build && cmake --build build -j" >&2; exit 2; }
  command -v wrk >/dev/null || { echo "wrk is missing: scripts/setup.sh installs it" >&2; exit 2; }
}
