#!/usr/bin/env bash
# The project's test command (README, and .ci/run after installing the interop tools).
# Runs every test of the workspace, then lists the tests that skipped because a real
# BitTorrent client was missing (under CI=true a missing client fails its test instead).
set -uo pipefail
cd "$(dirname "$0")/.."

mkdir -p target
export SHARE_SKIP_LOG="$PWD/target/skipped-tests.txt"
: > "$SHARE_SKIP_LOG"

cargo test --workspace --locked "$@"
status=$?

if [ -s "$SHARE_SKIP_LOG" ]; then
  echo
  echo "Skipped (install the tools with scripts/install-test-deps.sh):"
  sort -u "$SHARE_SKIP_LOG" | sed 's/^/  /'
fi
exit $status
