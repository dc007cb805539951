#!/usr/bin/env bash
# Instructions per operation (callgrind) of the runtime's hot paths — yield
# round trip, spawn + join from the root, spawn + join from a green thread —
# for this checkout and for a base revision, side by side:
#
#   scripts/callgrind-runtime.sh [BASE_REV]     # default: main
#
# Each figure is (run with N operations − run with 0) / N, so start-up
# costs cancel. Needs valgrind. Builds in $TMPDIR (or /tmp).
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
edition = "2021"
[dependencies]
sylvan = { path = "$src/crates/sylvan" }
[profile.release]
debug = 1
[workspace]
TOML
    cp "$src/Cargo.lock" "$work/$v/"
    cat >"$work/$v/src/main.rs" <<'RS'
use std::hint::black_box;
fn yields(n: u64) {
    let side = move || { for _ in 0..n { sylvan::yield_now(); } };
    let (a, b) = (sylvan::spawn(side), sylvan::spawn(side));
    a.join().unwrap();
    b.join().unwrap();
}
fn spawn_join(n: u64) {
    let mut sum = 0u64;
    for i in 0..n { sum += sylvan::spawn(move || i).join().unwrap(); }
    black_box(sum);
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    let n: u64 = a[2].parse().unwrap();
    spawn_join(10); // warm up the hub and the stack pool
    match a[1].as_str() {
        "yield" => yields(n),
        "spawn" => spawn_join(n),
        "inside" => sylvan::spawn(move || spawn_join(n)).join().unwrap(),
        _ => {}
    }
}
RS
    (cd "$work/$v" && CARGO_TARGET_DIR="$work/target-$v" cargo build -q --release)
done
count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 | grep -o 'Collected : [0-9]*' | grep -o '[0-9]*'; }
printf '%-28s %8s %8s %7s\n' "instructions per op" "$base_rev" "this" "ratio"
for m in yield spawn inside; do
    declare -A r
    for v in base cur; do
        bin="$work/target-$v/release/cg-$v"
        r[$v]=$(( ($(count "$bin" $m $N) - $(count "$bin" $m 0)) / N ))
    done
    name=$(case $m in yield) echo "yield round trip";; spawn) echo "spawn + join (root)";; inside) echo "spawn + join (green)";; esac)
    printf '%-28s %8d %8d %7s\n' "$name" "${r[base]}" "${r[cur]}" "$(awk "BEGIN{printf \"%.3f\", ${r[cur]}/${r[base]}}")"
done
