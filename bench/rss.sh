#!/usr/bin/env bash
# Peak RSS of `share fetch` for growing file sizes (default 1 GiB and 8 GiB) from one share
# seeder on loopback: memory must stay flat whatever the size. Run by hand; needs free disk
# of about 2.2x the largest size.
# Usage: bench/rss.sh [SIZE_MIB...]
set -euo pipefail
# Loopback only: no public DHT, no multicast on the LAN.
export SHARE_NO_DHT=1 SHARE_NO_LSD=1
cd "$(dirname "$0")/.."
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1024 8192)
cargo build --release -q -p share-cli
share=$PWD/target/release/share
work=$(mktemp -d /tmp/share-bench-rss.XXXXXX)
seeder=""
trap '[ -n "$seeder" ] && kill "$seeder" 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
echo "share fetch peak RSS from one share seeder, loopback, $(nproc) cores"
for mib in "${sizes[@]}"; do
  head -c "$((mib * 1024 * 1024))" /dev/urandom > data.bin
  "$share" seed data.bin --announce-host 127.0.0.1 --port 0 --tracker-port 0 --json >seed.log 2>&1 </dev/null &
  seeder=$!
  for _ in $(seq 600); do grep -q tracker_ok seed.log && break; sleep 0.1; done
  /usr/bin/time -f "%e %M" -o time.txt "$share" fetch data.bin.torrent -o out.bin --no-seed --port 0 >/dev/null 2>&1 </dev/null
  cmp -s data.bin out.bin || { echo "fetch of $mib MiB differs" >&2; exit 1; }
  read -r secs kib < time.txt
  printf '  %6d MiB: %6.2f s, peak RSS %5.1f MiB\n' "$mib" "$secs" "$(echo "$kib / 1024" | bc -l)"
  kill -INT "$seeder"; wait "$seeder" 2>/dev/null || true; seeder=""
  rm -f data.bin out.bin data.bin.torrent
done
