#!/usr/bin/env bash
# Runs every fuzz target for a budget each, one after the other:
#   fuzz/run.sh [SECONDS] [TARGET...]     (default 60 s, every target)
# Needs the nightly toolchain and cargo-fuzz (cargo install cargo-fuzz).
# Each target starts from its seeds (fuzz/seeds/TARGET, in the repo) and
# keeps what it finds in fuzz/corpus/TARGET (not in the repo); a crash
# lands in fuzz/artifacts/TARGET and stops the script with its status.
# The last lines of each run (executions per second, coverage) are
# printed at the end.
set -euo pipefail
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null ||
    { echo "fuzz/run.sh: needs cargo-fuzz (run: cargo install cargo-fuzz)" >&2; exit 2; }
secs="${1:-60}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
summary=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "seeds/$t"
    log="$(mktemp)"
    echo "fuzz/run.sh: $t for ${secs}s" >&2
    status=0
    cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1 || status=$?
    stats="$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$log" | tail -1 || true)"
    eps="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
    summary+=("$t: ${eps:-?} exec/s; $stats")
    if ((status != 0)); then
        tail -40 "$log" >&2
        echo "fuzz/run.sh: $t failed (status $status); the input is in fuzz/artifacts/$t" >&2
        printf '%s\n' "${summary[@]}"
        exit "$status"
    fi
    rm -f "$log"
done
printf '%s\n' "${summary[@]}"
