#!/usr/bin/env bash
# The project as another machine or project gets it: `cmake --install` into a scratch prefix, then a C and a
# C++ consumer built against it with find_package(pairrm) and with pkg-config; the .deb from CPack,
# installed into a scratch root (dpkg-deb -x), its Depends checked by apt (simulated install), and
# `pairrm compare` run from it on the bundled model; the portable binary run under QEMU as CPUs without AVX2
# (x86-64 baseline) and with AVX2 only, to prove the cpuid dispatch and that no newer instruction leaks.
# Usage: scripts/test_package.sh [BUILD_DIR]   (default build; must be configured and built)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
fail() { echo "test_package: FAIL: $*" >&2; exit 1; }
expect_same_score() {  # two "score=..." lines must agree: the consumers and the CLI run the same engine
  local a b; a=$(grep -o 'score=[-0-9.]*' <<<"$1"); b=$(grep -o 'score=[-0-9.]*' <<<"$2")
  [ -n "$a" ] && [ "$a" = "$b" ] || fail "scores differ: '$1' vs '$2'"
}

echo "== cmake --install"
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
for f in bin/pairrm lib/libpairrm.so include/pairrm/pairrm.h include/pairrm/ranking.h include/pairrm/pairrm_c.h \
         lib/cmake/pairrm/pairrmConfig.cmake lib/pkgconfig/pairrm.pc share/pairrm/models/tiny/model.safetensors; do
  [ -e "$scratch/prefix/$f" ] || fail "missing $f in the installed tree"
done
# The exported include path: every entry is the installed tree's include/ (never the source tree's src/ or
# include/, which a consumer on another machine does not have). Read whole (grep -q would print nothing to
# a second grep), then each ;-separated entry checked.
targets="$scratch/prefix/lib/cmake/pairrm/pairrmTargets.cmake"
includes=$(grep -o 'INTERFACE_INCLUDE_DIRECTORIES "[^"]*"' "$targets" || true)
[ -n "$includes" ] || fail "pairrmTargets.cmake exports no INTERFACE_INCLUDE_DIRECTORIES"
while IFS= read -r dir; do
  [ "$dir" = '${_IMPORT_PREFIX}/include' ] || fail "an exported include directory is not the installed include/: '$dir'"
done < <(sed -e 's/^INTERFACE_INCLUDE_DIRECTORIES "//' -e 's/"$//' <<<"$includes" | tr ';' '\n')
model="$scratch/prefix/share/pairrm/models/tiny"

echo "== the installed binary finds its bundled model (no build-time path)"
mv "$build" "$build.moved"  # the source tree's models/ link must not be what it finds
trap 'mv "$build.moved" "$build" 2>/dev/null; rm -rf "$scratch"' EXIT
cli=$("$scratch/prefix/bin/pairrm" compare --source "hello!" --a "hi!" --b "f**k off!" --json 2>"$scratch/warn")
grep -q "RANDOM-WEIGHT" "$scratch/warn" || fail "no random-weight warning on stderr"
mv "$build.moved" "$build"
trap 'rm -rf "$scratch"' EXIT
cli_score="score=$(python3 -c 'import json,sys; print("%.6f" % json.loads(sys.argv[1])["score"])' "$cli")"

echo "== C and C++ consumers: find_package(pairrm)"
cmake -S tests/consumer -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
c_out=$(LD_LIBRARY_PATH="$scratch/prefix/lib" "$scratch/consumer/c_consumer" "$model")
cpp_out=$(LD_LIBRARY_PATH="$scratch/prefix/lib" "$scratch/consumer/cpp_consumer" "$model")
echo "   C:   $c_out"; echo "   C++: $cpp_out"
expect_same_score "$c_out" "$cli_score"; expect_same_score "$cpp_out" "$cli_score"

echo "== C consumer: pkg-config"
cc tests/consumer/c_consumer.c -o "$scratch/c_pc" $(PKG_CONFIG_PATH="$scratch/prefix/lib/pkgconfig" pkg-config --cflags --libs pairrm)
pc_out=$(LD_LIBRARY_PATH="$scratch/prefix/lib" "$scratch/c_pc" "$model")
expect_same_score "$pc_out" "$cli_score"

echo "== .deb (cpack)"
(cd "$build" && cpack -G DEB >/dev/null 2>&1) || fail "cpack -G DEB failed"
deb=$(ls "$build"/pairrm_*.deb | head -1)
[ -f "$deb" ] || fail "cpack made no .deb"
info=$(dpkg-deb -I "$deb"); listing=$(dpkg-deb -c "$deb")  # whole outputs: grep -q would cut the pipe
grep -q "Depends:.*libdnnl" <<<"$info" || fail "the .deb's Depends lacks oneDNN: $(grep Depends <<<"$info")"
grep -q "./usr/bin/pairrm$" <<<"$listing" || fail "the .deb has no /usr/bin/pairrm"
grep -q "./usr/lib/x86_64-linux-gnu/libpairrm.so" <<<"$listing" || grep -q "./usr/lib/libpairrm.so" <<<"$listing" \
  || fail "the .deb has no libpairrm.so"
grep -q "./usr/share/pairrm/models/tiny/config.json" <<<"$listing" || fail "the .deb lacks the bundled model"
apt-get install -s "$(realpath "$deb")" >"$scratch/apt.log" 2>&1 || { cat "$scratch/apt.log"; fail "apt cannot install the .deb"; }
dpkg-deb -x "$deb" "$scratch/root"
deb_out=$(LD_LIBRARY_PATH="$scratch/root/usr/lib:$scratch/root/usr/lib/x86_64-linux-gnu" "$scratch/root/usr/bin/pairrm" compare -q --source "hello!" --a "hi!" --b "f**k off!" --json 2>/dev/null)
expect_same_score "score=$(python3 -c 'import json,sys; print("%.6f" % json.loads(sys.argv[1])["score"])' "$deb_out")" "$cli_score"
echo "   $(basename "$deb"): installs (apt simulation), runs from the package tree"

echo "== one binary for every x86-64 CPU (QEMU user mode)"
command -v qemu-x86_64 >/dev/null || fail "qemu-x86_64 missing (scripts/setup.sh --dev installs qemu-user)"
for cpu in Westmere:generic Haswell:avx2; do
  out=$(qemu-x86_64 -cpu "${cpu%%:*}" "$build/pairrm" bench --model "$model" --tokens 40 --pairs 1 --threads 1 --json 2>/dev/null) \
    || fail "the binary fails on a ${cpu%%:*} CPU"
  isa=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["isa"])' "$out")
  [ "$isa" = "${cpu##*:}" ] || fail "on ${cpu%%:*} the binary chose '$isa', expected '${cpu##*:}'"
  echo "   ${cpu%%:*}: runs, chooses $isa"
done
echo "test_package: all checks passed"
