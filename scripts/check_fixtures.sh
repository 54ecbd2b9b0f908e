#!/usr/bin/env bash
# Proves the repository's copy of the reference fixtures (tests/fixtures) byte-identical to an upstream fixture
# directory: every file the tests read (links followed) must equal the upstream file of the same path.
# Usage: scripts/check_fixtures.sh [UPSTREAM_DIR]   (default ../shared/fixtures)
set -euo pipefail
cd "$(dirname "$0")/.."
upstream=${1:-../shared/fixtures}
[ -d "$upstream" ] || { echo "check_fixtures: no upstream fixtures at $upstream" >&2; exit 2; }
count=0
while IFS= read -r -d '' f; do
  rel=${f#tests/fixtures/}
  [ "$rel" = README.md ] && continue
  if ! cmp -s "$f" "$upstream/$rel"; then echo "check_fixtures: tests/fixtures/$rel differs from $upstream/$rel" >&2; exit 1; fi
  count=$((count + 1))
done < <(find -L tests/fixtures -type f -print0)
[ "$count" -gt 0 ] || { echo "check_fixtures: no fixture files found" >&2; exit 1; }
echo "check_fixtures: $count files identical to $upstream"
