#!/usr/bin/env bash
# User-space CPU of the echo or HTTP servers of crates/sylvan-bench under
# real load, in units of the kernel's CPU for the same requests, sampled
# with perf:
#
#   scripts/perf-user.sh echo|http [-c CONNS] [-n ROUNDS] [SERVER[=BIN]...]
#   scripts/perf-user.sh echo -c 1000              # sylvan tokio, 5 rounds
#   scripts/perf-user.sh echo -c 1000 sylvan=/tmp/echo-old sylvan tokio
#   scripts/perf-user.sh http -c 1000              # sylvan hyper bare
#
# Why: on this shared 2-core VM the server CPU per request that `echo` or
# `http` reports drifts ±10–30 % from one 0.6 s round to the next, more than the
# difference between the servers. But the kernel does the same work per
# request for all of them (the same recv, send and epoll_wait; perf shows
# the same kernel symbols in the same proportions), so the user time per
# unit of kernel time compares what the runtimes themselves cost, whatever
# the host's speed at the moment. Samples land where the CPU stalls, so the
# profile (`perf report -i`) also shows where user time goes.
#
# Each round runs each SERVER once, the server on CPU 0 and the load on
# CPU 1 (echo: `echo --conns CONNS --servers S`, its own load generator;
# http: `http --serve S` under `wrk -t1 -cCONNS`, after 1 s of warm-up),
# and samples the server process for 3 s with perf's cpu-clock at
# 4999 Hz; it prints user/kernel per round, then the medians and each
# server's median against the last one named. Needs perf (apt-get install
# linux-perf), wrk for http, and root or kernel.perf_event_paranoid ≤ 1;
# builds the bench binary into $CARGO_TARGET_DIR (default target/) unless
# every SERVER names its BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "needs perf: apt-get install linux-perf" >&2; exit 1; }
bench=${1:-}
case $bench in
    echo) defaults=(sylvan tokio) ;;
    http)
        defaults=(sylvan hyper bare)
        command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 1; }
        ;;
    *) sed -n '5,8p' "$0" >&2; exit 2 ;;
esac
shift
conns=1000
rounds=5
while getopts c:n: opt; do
    case $opt in
        c) conns=$OPTARG ;;
        n) rounds=$OPTARG ;;
        *) sed -n '5,8p' "$0" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
servers=("$@")
[ ${#servers[@]} -eq 0 ] && servers=("${defaults[@]}")
target="${CARGO_TARGET_DIR:-target}"
for s in "${servers[@]}"; do
    if [[ $s != *=* ]]; then
        cargo build -q --release -p sylvan-bench --bin "$bench"
        break
    fi
done
work="$(mktemp -d "${TMPDIR:-/tmp}/sylvan-perf-user.XXXXXX")"
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# User/kernel ratio of the samples in "$work/perf.data".
ratio() {
    perf report -i "$work/perf.data" --sort dso -q 2>/dev/null | awk '
        { gsub("%", "", $1); if ($2 == "[kernel.kallsyms]") k += $1; else u += $1 }
        END { if (k == 0) exit 1; printf "%.4f\n", u / k }'
}

# One run of an HTTP server under wrk.
measure_http() {
    local kind=$1 bin=$2 line port
    rm -f "$work/port"
    mkfifo "$work/port"
    taskset -c 0 "$bin" --serve "$kind" >"$work/port" &
    server=$!
    # (This runs in a command substitution's subshell: its own trap.)
    trap '[ -n "$server" ] && kill "$server" 2>/dev/null' EXIT
    read -r line <"$work/port"
    port=${line#PORT }
    taskset -c 1 wrk -t1 -c"$conns" -d1s "http://127.0.0.1:$port/" >/dev/null
    perf record -q -e cpu-clock -F 4999 -p "$server" -o "$work/perf.data" -- sleep 3 2>/dev/null &
    local rec=$!
    taskset -c 1 wrk -t1 -c"$conns" -d4s "http://127.0.0.1:$port/" >/dev/null
    wait "$rec"
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=
    ratio
}

# One run of an echo server under the bench's load generator.
measure_echo() {
    local kind=$1 bin=$2
    "$bin" --conns "$conns" --servers "$kind" --rounds 6 >"$work/out" 2>&1 &
    local main=$! pid=
    for _ in $(seq 200); do
        pid=$(pgrep -f -- "--server $kind" | head -1 || true)
        [ -n "$pid" ] && break
        sleep 0.05
    done
    [ -n "$pid" ] || { cat "$work/out" >&2; echo "the $kind server did not start" >&2; exit 1; }
    sleep 1 # connections made, warm-up under way
    perf record -q -e cpu-clock -F 4999 -p "$pid" -o "$work/perf.data" -- sleep 3 2>/dev/null
    wait "$main" || { cat "$work/out" >&2; exit 1; }
    ratio
}

declare -A all
printf 'user/kernel per round, %s connections\n' "$conns"
for r in $(seq "$rounds"); do
    for i in "${!servers[@]}"; do
        spec=${servers[$i]}
        kind=${spec%%=*}
        bin=$target/release/$bench
        [[ $spec == *=* ]] && bin=${spec#*=}
        v=$(measure_"$bench" "$kind" "$bin")
        all[$i]+="$v "
        printf '  round %d  %-40s %s\n' "$r" "$spec" "$v"
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
last=$((${#servers[@]} - 1))
base=$(echo "${all[$last]}" | median)
printf 'median user/kernel (vs %s):\n' "${servers[$last]}"
for i in "${!servers[@]}"; do
    m=$(echo "${all[$i]}" | median)
    printf '  %-40s %s  %s\n' "${servers[$i]}" "$m" "$(awk "BEGIN{printf \"%.2f×\", $m/$base}")"
done
