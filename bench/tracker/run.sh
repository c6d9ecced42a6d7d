#!/usr/bin/env bash
# Load benchmark of the announce path: `share tracker` against opentracker, in the same run,
# with the same wrk script (random peers over 64 swarms), with and without keep-alive.
# Usage: bench/tracker/run.sh [SECONDS=10] [CONNECTIONS=50] [ROUNDS=3]
#   SHARE_THREADS=N passes --threads N to `share tracker` (default: one worker per core).
# Needs: wrk and opentracker (apt-get install wrk opentracker). Loopback only.
# Each round runs every (tracker, mode) pair once, alternating who goes first; the table
# gives the median requests per second over the rounds, the ratio ours/opentracker, and the
# CPU time each server spent per request (kernel included), which is steadier than the rate
# on a shared machine. Then both RSS.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-50}
rounds=${3:-3}
for tool in wrk opentracker python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install wrk opentracker" >&2; exit 1; }
done

cargo build --release -q -p share-cli
share=$PWD/target/release/share
work=$(mktemp -d /tmp/share-bench-tracker.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# 64 swarms: hex for opentracker's whitelist, percent-encoded bytes for the query.
python3 - "$work" <<'PY'
import os, sys, random
random.seed(64)
work = sys.argv[1]
with open(f"{work}/whitelist", "w") as wl, open(f"{work}/hashes", "w") as enc:
    for _ in range(64):
        h = bytes(random.getrandbits(8) for _ in range(20))
        wl.write(h.hex() + "\n")
        enc.write("".join(f"%{b:02X}" for b in h) + "\n")
PY
# opentracker chroots to the work directory and drops to `nobody`, then reads the whitelist.
chmod 755 "$work"; chmod 644 "$work/whitelist"
export ANNOUNCE_HASHES=$work/hashes
first_hash=$(head -n1 "$work/hashes")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_up() { # URL
  for _ in $(seq 100); do
    curl -s -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "tracker at $1 did not come up" >&2; exit 1
}

check() { # NAME BASE: one announce must return peers, not a failure
  local body
  body=$(curl -s "$2/announce?info_hash=$first_hash&peer_id=-CHECK0-aaaaaaaaaaaa&port=1&uploaded=0&downloaded=0&left=1&compact=1" | tr -d '\0')
  case "$body" in
    *"failure reason"*|"") echo "$1 refused the check announce: $body" >&2; exit 1 ;;
  esac
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

ours_port=$(free_port)
"$share" tracker --bind "127.0.0.1:$ours_port" --interval 1800 ${SHARE_THREADS:+--threads "$SHARE_THREADS"} \
  2>"$work/ours.log" &
ours_pid=$!; pids+=("$ours_pid")
ot_port=$(free_port)
(cd "$work" && exec opentracker -i 127.0.0.1 -p "$ot_port" -P "$ot_port" -w whitelist -d "$work") \
  >"$work/opentracker.log" 2>&1 &
ot_pid=$!; pids+=("$ot_pid")
ours=http://127.0.0.1:$ours_port
theirs=http://127.0.0.1:$ot_port
wait_up "$ours/stats"
wait_up "$theirs/announce"
check share "$ours"
check opentracker "$theirs"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # NAME PID BASE MODE: appends "rate cpu_us_per_request" to $work/NAME-MODE
  local name=$1 pid=$2 base=$3 mode=$4 args=() out c0 c1
  [ "$mode" = close ] && args=(-H "Connection: close")
  c0=$(cpu_ticks "$pid")
  out=$(wrk -t1 -c"$conns" -d"${secs}s" -s bench/tracker/announce.lua "${args[@]}" "$base/announce")
  c1=$(cpu_ticks "$pid")
  if grep -q "Non-2xx" <<<"$out"; then
    echo "$name ($mode): $(grep Non-2xx <<<"$out")" >&2
  fi
  python3 - "$out" "$c0" "$c1" "$(getconf CLK_TCK)" >>"$work/$name-$mode" <<'PY'
import re, sys
out, c0, c1, hz = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
n = int(re.search(r"(\d+) requests in", out).group(1))
print(rate, (c1 - c0) / hz * 1e6 / max(n, 1))
PY
}

printf "wrk: %s s x %s rounds, %s connections, 1 thread; 64 swarms, random peers; %s cores\n" \
  "$secs" "$rounds" "$conns" "$(nproc)"
for round in $(seq "$rounds"); do
  for mode in keep-alive close; do
    if [ $(((round + ${#mode}) % 2)) = 0 ]; then
      run share "$ours_pid" "$ours" "$mode"; run opentracker "$ot_pid" "$theirs" "$mode"
    else
      run opentracker "$ot_pid" "$theirs" "$mode"; run share "$ours_pid" "$ours" "$mode"
    fi
  done
done
python3 - "$work" <<'PY'
import statistics, sys
work = sys.argv[1]
def load(name, mode):
    rows = [tuple(map(float, l.split())) for l in open(f"{work}/{name}-{mode}")]
    return statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows), [r[0] for r in rows]
print(f"{'mode':<11} {'share req/s':>12} {'opentracker':>12} {'ratio':>6}   {'share us/req':>12} {'ot us/req':>10}   rounds (share | opentracker)")
for mode in ("keep-alive", "close"):
    a, ca, ra = load("share", mode)
    b, cb, rb = load("opentracker", mode)
    runs = " ".join(f"{x:.0f}" for x in ra) + " | " + " ".join(f"{x:.0f}" for x in rb)
    print(f"{mode:<11} {a:>12.0f} {b:>12.0f} {a / b:>6.2f}   {ca:>12.1f} {cb:>10.1f}   {runs}")
PY
printf "RSS after the runs: share %s KiB, opentracker %s KiB\n" "$(rss_kib "$ours_pid")" "$(rss_kib "$ot_pid")"
curl -s "$ours/stats" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("share holds", d["swarms"], "swarms,", d["peers"], "peers")'
