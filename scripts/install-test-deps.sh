#!/usr/bin/env bash
# Installs the real BitTorrent clients the interop tests run (Debian packages).
# Skips apt when they are all present already.
set -euo pipefail

# iproute2: network namespaces for the Transmission tests (Transmission never dials loopback).
# mount, util-linux: a small tmpfs and prlimit for the full-disk tests (crates/share-cli/tests/faults.rs).
# python3-libtorrent: a libtorrent seeder for hybrid torrents (crates/share-cli/tests/hybrid.rs) and
# libtorrent 2.0 sessions for tests/tests/interop_libtorrent.rs (/usr/bin/python3).
# tmux: a pseudo-terminal for the chat input line test (crates/share-cli/tests/terminal.rs).
packages=(aria2 transmission-cli transmission-daemon mktorrent iproute2 mount util-linux python3-libtorrent tmux)
tools=(aria2c transmission-show transmission-create transmission-cli transmission-daemon transmission-remote mktorrent ip mount umount prlimit tmux)

missing=0
for t in "${tools[@]}"; do
  command -v "$t" >/dev/null 2>&1 || missing=1
done
/usr/bin/python3 -c 'import libtorrent' >/dev/null 2>&1 || missing=1
if [ "$missing" = 0 ]; then
  echo "install-test-deps: ${tools[*]} and python3-libtorrent already installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-test-deps: need root or sudo to apt-get install ${packages[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-test-deps: installed ${packages[*]}"
