#!/usr/bin/env bash
# share create against mktorrent on the same file, in the same run, alternating.
# Usage: bench/create.sh [SIZE_MIB=1024] [RUNS=3]
# Prints median, min and max wall time and throughput for each, and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mib=${1:-1024}
runs=${2:-3}
command -v mktorrent >/dev/null || { echo "mktorrent is missing: apt-get install mktorrent" >&2; exit 1; }

cargo build --release -q -p share-cli
share=target/release/share
work=$(mktemp -d /tmp/share-bench-create.XXXXXX)
trap 'rm -rf "$work"' EXIT
file=$work/data.bin
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$file"
cat "$file" > /dev/null   # both read from the page cache

now() { date +%s.%N; }
declare -a ours theirs
for i in $(seq "$runs"); do
  t0=$(now); "$share" create "$file" --piece-size 1M -t http://127.0.0.1:6969/announce -o "$work/ours.torrent" >/dev/null; t1=$(now)
  rm -f "$work/theirs.torrent"
  t2=$(now); mktorrent -l 20 -a http://127.0.0.1:6969/announce -o "$work/theirs.torrent" "$file" >/dev/null; t3=$(now)
  ours+=("$(echo "$t1 - $t0" | bc -l)"); theirs+=("$(echo "$t3 - $t2" | bc -l)")
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.3f %.3f %.3f", a[int((NR+1)/2)], a[1], a[NR]}'; }
read -r om omin omax <<<"$(stats "${ours[@]}")"
read -r tm tmin tmax <<<"$(stats "${theirs[@]}")"
hash_ours=$("$share" info --json "$work/ours.torrent" | sed 's/.*"info_hash":"\([0-9a-f]*\)".*/\1/')
hash_theirs=$("$share" info --json "$work/theirs.torrent" | sed 's/.*"info_hash":"\([0-9a-f]*\)".*/\1/')
echo "file: ${size_mib} MiB, 1 MiB pieces, $runs runs each, $(nproc) cores"
printf '%-14s median %6.3f s (min %.3f, max %.3f)  %7.0f MB/s\n' "share create" "$om" "$omin" "$omax" "$(echo "$size_mib * 1.048576 / $om" | bc -l)"
printf '%-14s median %6.3f s (min %.3f, max %.3f)  %7.0f MB/s\n' "mktorrent" "$tm" "$tmin" "$tmax" "$(echo "$size_mib * 1.048576 / $tm" | bc -l)"
printf 'ratio share/mktorrent wall time: %.2f (below 1 is faster)\n' "$(echo "$om / $tm" | bc -l)"
[ "$hash_ours" = "$hash_theirs" ] && echo "same info hash: $hash_ours" || echo "INFO HASHES DIFFER: $hash_ours vs $hash_theirs"
