#!/usr/bin/env bash
# Swarm benchmark: share fetch against aria2c and rqbit on the same swarm, in the same run.
# Usage: bench/swarm.sh [SIZE_MIB=1024] [RUNS=5]     (run by hand; not part of CI)
#
# 1. 3 `share seed` seeders behind `share tracker` on loopback, and 3 aria2c seeders behind a
#    second tracker (same info hash); one fetcher at a time: share fetch --no-seed, aria2c and
#    rqbit, each from our seeders then from aria2c's, alternating, RUNS each (is our upload
#    path the bottleneck for other clients?). From our seeders share also fetches with
#    --encryption require and --encryption off: RC4 against plain in the same loop (the
#    default, prefer, is RC4 between share peers).
# 2. 1 share seeder to 1 share fetcher.
# 3. 3 share seeders to 4 share fetchers at once (time until all complete).
# 4. share create against mktorrent (bench/create.sh).
# Prints medians with min-max, MB/s, peak RSS, and the ratios. Every download is checked
# byte for byte.
set -euo pipefail
# Loopback only: no public DHT, no multicast on the LAN.
export SHARE_NO_DHT=1 SHARE_NO_LSD=1
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
runs=${2:-5}

need() { command -v "$1" >/dev/null || { echo "missing $1: $2" >&2; exit 1; }; }
need aria2c "apt-get install aria2"
need mktorrent "apt-get install mktorrent"
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time: apt-get install time" >&2; exit 1; }
if ! command -v rqbit >/dev/null; then
  echo "rqbit is missing: installing it with cargo install --locked rqbit (about 11 minutes on 2 cores)"
  cargo install --locked rqbit
fi
rqbit_bin=$(command -v rqbit)

cargo build --release -q -p share-cli
share=$PWD/target/release/share
work=$(mktemp -d /tmp/share-bench-swarm.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
cd "$work"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > data.bin
bytes=$(stat -c %s data.bin)
tport=$(free_port)
url="http://127.0.0.1:$tport/announce"
"$share" tracker --bind "127.0.0.1:$tport" 2>tracker.log & pids+=($!)
"$share" create data.bin -t "$url" -o data.torrent >/dev/null
# A second tracker for the aria2c seeders: the same info hash, so the same download, but
# fetchers given a2.torrent see only the aria2c seeders.
a2port=$(free_port)
"$share" tracker --bind "127.0.0.1:$a2port" 2>tracker-a2.log & pids+=($!)
"$share" create data.bin -t "http://127.0.0.1:$a2port/announce" -o a2.torrent >/dev/null
hash=$("$share" info --json data.torrent | sed 's/.*"info_hash":"\([0-9a-f]*\)".*/\1/')
qhash=$(echo "$hash" | sed 's/../%&/g')

# Counts in the tracker's scrape (complete | incomplete).
scrape() { python3 - "${2:-$tport}" "$qhash" "$1" <<'PY'
import sys, urllib.request
port, qhash, key = sys.argv[1:]
body = urllib.request.urlopen(f"http://127.0.0.1:{port}/scrape?info_hash={qhash}").read()
k = f"{len(key)}:{key}i".encode()
print(int(body.split(k)[1].split(b"e")[0]) if k in body else 0)
PY
}
wait_seeders() { for _ in $(seq 600); do [ "$(scrape complete "${2:-$tport}")" -ge "$1" ] && return; sleep 0.1; done; echo "seeders did not announce" >&2; exit 1; }

start_share_seeders() {
  seeders=()
  for i in $(seq "$1"); do
    "$share" seed data.bin -t "$url" -o "seed$i.torrent" --port 0 --json >"seed$i.log" 2>&1 </dev/null & seeders+=($!); pids+=($!)
  done
  wait_seeders "$1"
}
stop_seeders() { for p in "${seeders[@]}"; do kill -INT "$p" 2>/dev/null || true; done; for p in "${seeders[@]}"; do wait "$p" 2>/dev/null || true; done; seeders=(); for _ in $(seq 100); do [ "$(scrape complete)" = 0 ] && return; sleep 0.1; done; }

# One timed download; prints "seconds peak_rss_kib".
fetch_with() {
  local client=$1 torrent=${2:-data.torrent} out="$work/out-$1"
  rm -rf "$out"; mkdir -p "$out"
  # The last run's dirty pages are written back now, not during this run.
  sync
  local cmd
  case $client in
    share) cmd=("$share" fetch "$torrent" -o "$out/data.bin" --no-seed --port 0) ;;
    share-require) cmd=("$share" fetch "$torrent" -o "$out/data.bin" --no-seed --port 0 --encryption require) ;;
    share-off) cmd=("$share" fetch "$torrent" -o "$out/data.bin" --no-seed --port 0 --encryption off) ;;
    aria2c) cmd=(aria2c --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false
                 --seed-time=0 --listen-port="$(free_port)" --file-allocation=none --console-log-level=error
                 --summary-interval=0 -d "$out" "$torrent") ;;
    rqbit) cmd=("$rqbit_bin" --disable-dht --disable-upnp-port-forward download -e --disable-http-api -o "$out" "$torrent") ;;
  esac
  /usr/bin/time -f "%e %M" -o "$work/time.$client" "${cmd[@]}" >"$work/$client.log" 2>&1 </dev/null
  cmp -s data.bin "$out/data.bin" || { echo "$client produced different bytes" >&2; exit 1; }
  rm -rf "$out"
  cat "$work/time.$client"
}

stats() { sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f %.2f", a[int((NR+1)/2)], a[1], a[NR]}'; }
declare -A secs rss
row() { # name, then "secs rss" lines on stdin
  local name=$1 s r
  local lines; lines=$(cat)
  read -r med lo hi <<<"$(echo "$lines" | awk '{print $1}' | stats)"
  r=$(echo "$lines" | awk '{print $2}' | sort -n | tail -1)
  secs[$name]=$med; rss[$name]=$r
  local rss_text="n/a"; [ "$r" -gt 0 ] && rss_text=$(printf '%.1f MiB' "$(echo "$r / 1024" | bc -l)")
  printf '  %-34s %7.2f s  (%.2f-%.2f)  %7.0f MB/s  peak RSS %s\n' "$name" "$med" "$lo" "$hi" \
    "$(echo "$bytes / 1000000 / $med" | bc -l)" "$rss_text"
}
ratio() { printf '  %-50s %.2f\n' "$1" "$(echo "${secs[$2]} / ${secs[$3]}" | bc -l)"; }

echo "share swarm benchmark: ${size_mib} MiB, $runs runs each, $(nproc) cores, loopback; $(date -u +%FT%TZ)"
echo
echo "1. three share seeders and three aria2c seeders (behind two trackers), one fetcher at a"
echo "   time, alternating clients and seeder sets in the same loop"
aseeds=()
for i in 1 2 3; do
  mkdir -p "a2seed$i"; ln -f data.bin "a2seed$i/data.bin"
  aria2c --enable-dht=false --enable-dht6=false --bt-enable-lpd=false --enable-peer-exchange=false --seed-ratio=0.0 \
    --check-integrity=true --listen-port="$(free_port)" --console-log-level=error --summary-interval=0 \
    -d "a2seed$i" a2.torrent >"a2seed$i.log" 2>&1 </dev/null & aseeds+=($!); pids+=($!)
done
wait_seeders 3 "$a2port"
start_share_seeders 3
declare -A res res2
for r in $(seq "$runs"); do
  for c in share share-require share-off aria2c rqbit; do
    res[$c]+="$(fetch_with $c data.torrent)"$'\n'
    case $c in share-*) continue ;; esac
    res2[$c]+="$(fetch_with $c a2.torrent)"$'\n'
  done
done
for c in share share-require share-off aria2c rqbit; do row "$c from 3 share seeders" < <(printf '%s' "${res[$c]}" | sed '/^$/d'); done
for c in share aria2c rqbit; do row "$c from 3 aria2c seeders" < <(printf '%s' "${res2[$c]}" | sed '/^$/d'); done
stop_seeders
for p in "${aseeds[@]}"; do kill "$p" 2>/dev/null || true; done

echo
echo "2. one share seeder, one share fetcher"
start_share_seeders 1
one=""; for r in $(seq "$runs"); do one+="$(fetch_with share)"$'\n'; done
row "share from 1 share seeder" < <(printf '%s' "$one" | sed '/^$/d')
stop_seeders

echo
echo "3. three share seeders, four share fetchers at once"
start_share_seeders 3
all=""
for r in $(seq "$runs"); do
  sync; t0=$(date +%s.%N); fp=()
  for i in 1 2 3 4; do
    rm -rf "out4-$i"; mkdir "out4-$i"
    "$share" fetch data.torrent -o "out4-$i/data.bin" --no-seed --port 0 >/dev/null 2>&1 </dev/null & fp+=($!)
  done
  for p in "${fp[@]}"; do wait "$p"; done
  t1=$(date +%s.%N)
  for i in 1 2 3 4; do cmp -s data.bin "out4-$i/data.bin" || { echo "fetcher $i differs" >&2; exit 1; }; rm -rf "out4-$i"; done
  all+="$(echo "$t1 - $t0" | bc -l) 0"$'\n'
done
row "4 share fetchers, until all done" < <(printf '%s' "$all" | sed '/^$/d')
stop_seeders

echo
echo "ratios of wall time (below 1: share is faster)"
ratio "share / rqbit (3 share seeders)" "share from 3 share seeders" "rqbit from 3 share seeders"
ratio "share --encryption require / off (RC4 / plain)" "share-require from 3 share seeders" "share-off from 3 share seeders"
ratio "share / aria2c (3 share seeders)" "share from 3 share seeders" "aria2c from 3 share seeders"
ratio "rqbit: share seeders / aria2c seeders" "rqbit from 3 share seeders" "rqbit from 3 aria2c seeders"
ratio "aria2c: share seeders / aria2c seeders" "aria2c from 3 share seeders" "aria2c from 3 aria2c seeders"

echo
echo "4. share create against mktorrent"
cd - >/dev/null
bash bench/create.sh "$size_mib" "$runs" | sed 's/^/  /'
