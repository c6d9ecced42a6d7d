#!/usr/bin/env bash
# One session seeding many small torrents on one port (issue 11): idle CPU, RSS, and how soon
# a fetch of any one of them starts and ends. Run by hand; not part of CI.
# Usage: bench/many.sh [TORRENTS=1000] [SIZE_KIB=1024] [IDLE_SECS=30] [FETCHES=5]
#
# 1. TORRENTS files of SIZE_KIB random bytes; `share seed` of all of them in one process
#    (one port, one embedded tracker), waited for until every torrent says `seeding` and
#    the tracker has seen every announce.
# 2. Idle: the seeder's user+system CPU over IDLE_SECS (from /proc/PID/stat) as % of one
#    core, and its RSS (VmRSS, VmHWM).
# 3. FETCHES fetches, one at a time, of torrents picked at random: the time from starting
#    `share fetch --no-seed` to its first verified piece and to its exit, each checked byte
#    for byte. Medians with min-max.
set -euo pipefail
# Loopback only: no public DHT, no multicast on the LAN.
export SHARE_NO_DHT=1 SHARE_NO_LSD=1
cd "$(dirname "$0")/.."
n=${1:-1000}
kib=${2:-1024}
idle=${3:-30}
fetches=${4:-5}
cargo build --release -q -p share-cli
share=$PWD/target/release/share
work=$(mktemp -d /tmp/share-bench-many.XXXXXX)
seeder=""
trap '[ -n "$seeder" ] && kill "$seeder" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
cd "$work"
mkdir files
for i in $(seq -w 1 "$n"); do head -c "$((kib * 1024))" /dev/urandom > "files/f$i.bin"; done
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
kib_of() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

echo "share: one session seeding $n torrents of $kib KiB on one port; $(nproc) cores; $(date -u +%FT%TZ)"
start=$(date +%s.%N)
"$share" seed files/f*.bin --announce-host 127.0.0.1 --port 0 --tracker-port 0 --json >seed.log 2>seed.err </dev/null &
seeder=$!
for _ in $(seq 6000); do
  [ "$(grep -c '"event":"seeding"' seed.log)" -ge "$n" ] && break
  kill -0 "$seeder" 2>/dev/null || { echo "the seeder exited:" >&2; cat seed.err >&2; exit 1; }
  sleep 0.1
done
ready=$(date +%s.%N)
[ "$(grep -c '"event":"seeding"' seed.log)" -ge "$n" ] || { echo "not every torrent seeds" >&2; exit 1; }
# Every torrent's first announce is answered before the idle measurement starts.
for _ in $(seq 6000); do [ "$(grep -c '"event":"tracker_ok"' seed.log)" -ge "$n" ] && break; sleep 0.1; done
announced=$(date +%s.%N)
printf '  start: every torrent seeding after %.1f s (hashing %d MiB), every first announce answered after %.1f s\n' \
  "$(echo "$ready - $start" | bc -l)" "$((n * kib / 1024))" "$(echo "$announced - $start" | bc -l)"
t0=$(cpu_ticks "$seeder"); sleep "$idle"; t1=$(cpu_ticks "$seeder")
printf '  idle: %.2f%% of one core over %d s; RSS %.1f MiB (peak %.1f MiB)\n' \
  "$(echo "($t1 - $t0) * 100 / $hz / $idle" | bc -l)" "$idle" \
  "$(echo "$(kib_of "$seeder" VmRSS) / 1024" | bc -l)" "$(echo "$(kib_of "$seeder" VmHWM) / 1024" | bc -l)"

firsts=(); totals=()
for r in $(seq "$fetches"); do
  i=$(printf "%0${#n}d" $(( (RANDOM * 32768 + RANDOM) % n + 1 )))
  rm -f out.bin
  sync
  s=$(date +%s.%N)
  "$share" fetch "files/f$i.bin.torrent" -o out.bin --no-seed --port 0 --json >fetch.log 2>fetch.err </dev/null &
  f=$!
  first=""
  while kill -0 "$f" 2>/dev/null; do
    if [ -z "$first" ] && grep -q '"event":"piece_verified"' fetch.log; then first=$(date +%s.%N); fi
    sleep 0.01
  done
  wait "$f" || { echo "fetch of f$i failed:" >&2; cat fetch.err >&2; exit 1; }
  e=$(date +%s.%N)
  [ -n "$first" ] || first=$e
  cmp -s "files/f$i.bin" out.bin || { echo "fetch of f$i differs" >&2; exit 1; }
  firsts+=("$(echo "$first - $s" | bc -l)"); totals+=("$(echo "$e - $s" | bc -l)")
  printf '  fetch %d (f%s): first piece after %.3f s, done after %.3f s\n' "$r" "$i" "${firsts[-1]}" "${totals[-1]}"
done
stats() { sort -n | awk '{a[NR]=$1} END {printf "%.3f s (%.3f-%.3f)", a[int((NR+1)/2)], a[1], a[NR]}'; }
echo "  fetch of one torrent: first piece $(printf '%s\n' "${firsts[@]}" | stats), done $(printf '%s\n' "${totals[@]}" | stats)"
printf '  seeder after the fetches: RSS %.1f MiB\n' "$(echo "$(kib_of "$seeder" VmRSS) / 1024" | bc -l)"
