#!/usr/bin/env bash
# Short coverage-guided fuzzing for CI: every cargo-fuzz target runs FUZZ_SECONDS (default
# 60) from the checked-in seed corpus and minimized regressions, copied to a scratch
# directory so the work tree stays clean. Fails if a target crashes, leaks, times out or
# runs out of memory, and prints where the reproducer was saved.
#
#   bash fuzz/ci.sh                      # all targets, 60 s each
#   FUZZ_SECONDS=10 bash fuzz/ci.sh      # shorter
#   bash fuzz/ci.sh state_ops            # some targets only
#
# Needs cargo-fuzz (installed here if missing) and a nightly compiler: `cargo +nightly`
# when a nightly toolchain is installed, otherwise (or with FUZZ_NIGHTLY=0) the default
# toolchain with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(message_decode handshake_decode state_ops swarm_ops book_ops)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if [ "${FUZZ_NIGHTLY:-1}" != 0 ] && cargo +nightly --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    echo "fuzz/ci.sh: no nightly toolchain, using $(rustc --version) with RUSTC_BOOTSTRAP=1"
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/ut_pex-fuzz.XXXXXX")"
keep_scratch=0
cleanup() {
    if [ "$keep_scratch" -eq 0 ]; then
        rm -rf "$scratch"
    fi
}
trap cleanup EXIT

failed=()
for target in "${targets[@]}"; do
    "${fuzz[@]}" build "$target"
    work="$scratch/$target"
    mkdir -p "$work/corpus" "$work/regressions" "$work/artifacts"
    cp -R "corpus/$target/." "$work/corpus/"
    if [ -d "regressions/$target" ]; then
        cp -R "regressions/$target/." "$work/regressions/"
    fi
    echo "=== fuzz $target for ${seconds}s ==="
    status=0
    # The outer timeout only guards against a hung process: libFuzzer stops itself after
    # max_total_time, and flags a single input slower than 10 s as a timeout.
    timeout --kill-after=30 "$((seconds + 300))" \
        "${fuzz[@]}" run "$target" "$work/corpus" "$work/regressions" -- \
        -dict=pex.dict \
        -max_total_time="$seconds" \
        -timeout=10 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        -artifact_prefix="$work/artifacts/" \
        >"$work/log" 2>&1 || status=$?
    grep -E '^#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units|stat::average_exec_per_sec' "$work/log" || true
    found="$(find "$work/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)"
    if [ "$status" -ne 0 ] || [ -n "$found" ]; then
        echo "fuzz/ci.sh: $target FAILED (exit status $status)"
        tail -n 60 "$work/log"
        for artifact in $found; do
            echo "reproducer: $artifact"
            echo "  replay:   cd fuzz && cargo +nightly fuzz run $target $artifact"
            echo "  minimize: cd fuzz && cargo +nightly fuzz tmin $target $artifact"
            echo "  then keep it in fuzz/regressions/$target/ (tests/fuzz_regressions.rs replays it)"
        done
        failed+=("$target")
        keep_scratch=1
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz/ci.sh: failing targets: ${failed[*]} (logs and artifacts kept in $scratch)"
    exit 1
fi
echo "fuzz/ci.sh: ${targets[*]}: no crash, leak, timeout or OOM in ${seconds}s each"
