#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (not part of CI).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     default: 60 s, every target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz passes nightly-only flags
# (-Zsanitizer); on a stable toolchain RUSTC_BOOTSTRAP=1 lets rustc accept them. Each target
# keeps its corpus in fuzz/corpus/TARGET (seeded from fuzz/seeds/TARGET and the fixtures);
# a crash leaves its input in fuzz/artifacts/TARGET/. Fix it, then commit the input as a
# regression unit test in the crate whose parser failed. A summary line per target says how
# long it ran clean and how many inputs it tried.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi

export RUSTC_BOOTSTRAP=1
nice -n 19 cargo fuzz build --release
# Run the built binaries directly: one cargo build, then no cargo process while fuzzing.
bin="target/$(rustc -vV | sed -n 's/^host: //p')/release"

mkdir -p corpus logs
summary=()
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    # Seeds: committed inputs for this target, and the manifests in fixtures/ for the parsers
    # of bencode.
    if [ -d "seeds/$t" ]; then cp -n "seeds/$t"/* "corpus/$t/" 2>/dev/null || true; fi
    case "$t" in
        bencode|metainfo|tracker_response) cp -n ../fixtures/*.torrent "corpus/$t/" 2>/dev/null || true ;;
    esac
    log="logs/$t.log"
    start=$(date +%s)
    if nice -n 19 "$bin/$t" "corpus/$t" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 >"$log" 2>&1; then
        result="clean"
    else
        result="FAILED (see fuzz/$log and fuzz/artifacts/$t/)"
        status=1
    fi
    ran=$(( $(date +%s) - start ))
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    summary+=("$(printf '%-18s %-8s %5d s  %12s runs' "$t" "$result" "$ran" "${runs:-?}")")
done
printf '%s\n' "${summary[@]}"
exit $status
