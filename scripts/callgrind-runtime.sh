#!/usr/bin/env bash
# Instructions per operation (callgrind) of the runtime's hot paths — yield
# round trip, spawn + join from the root and from a green thread, a queue
# ping-pong — for this checkout and for a base revision, side by side:
#
#   scripts/callgrind-runtime.sh [BASE_REV]     # default: main
#
# Both sides run the same driver, this checkout's
# crates/sylvan-bench/src/bin/hotpath.rs, built against each side's
# crates/sylvan alone (not the whole bench crate: a small build). Each
# figure is (run with N operations − run with 0) / N, so start-up costs
# cancel. Needs valgrind. Builds in $TMPDIR (or /tmp).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
work="$(mktemp -d "${TMPDIR:-/tmp}/sylvan-cg.XXXXXX")"
trap 'git worktree remove --force "$work/base-src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind" >&2; exit 1; }
git worktree add --detach "$work/base-src" "$base_rev" >/dev/null
N=20000
for v in base cur; do
    src=$([ $v = cur ] && pwd || echo "$work/base-src")
    mkdir -p "$work/$v/src"
    cat >"$work/$v/Cargo.toml" <<TOML
[package]
name = "cg-$v"
version = "0.1.0"
edition = "2024"
[dependencies]
sylvan = { path = "$src/crates/sylvan" }
[profile.release]
debug = 1
[workspace]
TOML
    cp "$src/Cargo.lock" "$work/$v/"
    cp crates/sylvan-bench/src/bin/hotpath.rs "$work/$v/src/main.rs"
    (cd "$work/$v" && CARGO_TARGET_DIR="$work/target-$v" CARGO_INCREMENTAL=0 cargo build -q --release)
done
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | grep -o 'Collected : [0-9]*' | grep -o '[0-9]*'; }
printf '%-28s %8s %8s %7s\n' "instructions per op" "$base_rev" "this" "ratio"
for m in yield spawn spawn_inside queue; do
    declare -A r
    for v in base cur; do
        bin="$work/target-$v/release/cg-$v"
        r[$v]=$(( ($(count "$bin" $m $N) - $(count "$bin" $m 0)) / N ))
    done
    name=$(case $m in yield) echo "yield round trip";; spawn) echo "spawn + join (root)";; spawn_inside) echo "spawn + join (green)";; queue) echo "queue ping-pong";; esac)
    printf '%-28s %8d %8d %7s\n' "$name" "${r[base]}" "${r[cur]}" "$(awk "BEGIN{printf \"%.3f\", ${r[cur]}/${r[base]}}")"
done
