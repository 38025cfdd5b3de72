#!/usr/bin/env bash
# How deep a target gets in a given amount of CPU time: runs TARGET without a sanitizer
# (`-s none --release`) from its seed corpus and regressions (copied to a scratch directory)
# with the dictionary, stops it once the fuzzer process has used CPU_SECONDS of CPU (default
# 1800: "10 million executions in 30 minutes on one core"), and prints libFuzzer's last
# status line. CPU time, not wall time, so another job on the machine does not skew it.
#
#   bash fuzz/depth.sh state_ops          # 30 CPU minutes
#   bash fuzz/depth.sh message_decode 60
set -euo pipefail
cd "$(dirname "$0")"
target="$1"
limit="${2:-1800}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/corpus"
cp -r "corpus/$target/." "$scratch/corpus/" 2>/dev/null || true
[ -d "regressions/$target" ] && cp -r "regressions/$target/." "$scratch/corpus/"
cargo +nightly fuzz build -s none --release "$target"
"target/x86_64-unknown-linux-gnu/release/$target" -dict=pex.dict -max_total_time=86400 \
    "$scratch/corpus" >"$scratch/log" 2>&1 &
pid=$!
ticks="$(getconf CLK_TCK)"
stopped=0
while kill -0 "$pid" 2>/dev/null; do
    read -r user sys < <(awk '{print $14, $15}' "/proc/$pid/stat")
    if [ $(((user + sys) / ticks)) -ge "$limit" ]; then
        kill -INT "$pid"
        stopped=1
        break
    fi
    sleep 1
done
wait "$pid" || true
if [ "$stopped" = 0 ]; then
    echo "$target stopped on its own (a crash?):" >&2
    tail -30 "$scratch/log" >&2
    exit 1
fi
echo "$target after $limit CPU seconds:"
grep '^#' "$scratch/log" | tail -1
