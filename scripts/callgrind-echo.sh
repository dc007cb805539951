#!/usr/bin/env bash
# Server-side instructions per request (callgrind) of the echo servers of
# crates/sylvan-bench (`echo --server sylvan|tokio|mio`), at 1, 64 and 1000
# connections, side by side:
#
#   scripts/callgrind-echo.sh [SERVER...]     # default: sylvan tokio mio
#
# Each server runs under callgrind while a small client holds CONNS
# connections, each doing ROUNDS closed-loop 64-byte request → echo; then
# again with the same connections and no requests. The figure is the
# difference over CONNS × ROUNDS, so start-up, accept and close cancel.
# Kernel time is not counted (`strace -c -f` shows the same sendto and
# recvfrom per request for all three). Needs valgrind and python3; builds
# the bench binary into $CARGO_TARGET_DIR (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }
servers=("$@")
[ $# -eq 0 ] && servers=(sylvan tokio mio)
target="${CARGO_TARGET_DIR:-target}"
cargo build -q --release -p sylvan-bench --bin echo
bin="$target/release/echo"
work="$(mktemp -d "${TMPDIR:-/tmp}/sylvan-cg-echo.XXXXXX")"
holder=
cleanup() {
    [ -n "$holder" ] && kill "$holder" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# The client: CONNS connections, one 64-byte request in flight on each,
# ROUNDS requests per connection, every echo checked.
cat >"$work/drive.py" <<'PY'
import selectors, socket, sys
port, conns, rounds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
msg = b"x" * 64
sel = selectors.DefaultSelector()
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
left = {}
for s in socks:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if rounds:
        s.sendall(msg)
        left[s] = [rounds, b""]
        sel.register(s, selectors.EVENT_READ)
while left:
    for key, _ in sel.select():
        s = key.fileobj
        data = s.recv(4096)
        if not data:
            sys.exit("server closed a connection")
        st = left[s]
        st[1] += data
        if len(st[1]) == len(msg):
            if st[1] != msg:
                sys.exit("wrong echo")
            st[0] -= 1
            st[1] = b""
            if st[0] == 0:
                sel.unregister(s)
                del left[s]
            else:
                s.sendall(msg)
for s in socks:
    s.close()
PY

# Instructions of one server run: `$2` connections, `$3` rounds each. The
# server exits when its standard input closes.
count() {
    local kind=$1 conns=$2 rounds=$3
    rm -f "$work/stdin"
    mkfifo -m 600 "$work/stdin"
    sleep 3600 >"$work/stdin" &
    holder=$!
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --server "$kind" \
        <"$work/stdin" >"$work/port" 2>"$work/vg.log" &
    local pid=$!
    for _ in $(seq 600); do
        grep -q 'port=' "$work/port" 2>/dev/null && break
        sleep 0.1
    done
    python3 "$work/drive.py" "$(grep -o 'port=[0-9]*' "$work/port" | cut -d= -f2)" "$conns" "$rounds"
    kill "$holder"
    holder=
    wait "$pid" || true
    grep -o 'Collected : [0-9]*' "$work/vg.log" | grep -o '[0-9]*$'
}

printf '%-8s' "conns"
for s in "${servers[@]}"; do printf ' %10s' "$s"; done
[ "${servers[0]}" = sylvan ] && [ ${#servers[@]} -gt 1 ] && for s in "${servers[@]:1}"; do printf ' %16s' "sylvan/$s"; done
echo
for point in "1 5000" "64 300" "1000 20"; do
    read -r conns rounds <<<"$point"
    declare -A per
    for s in "${servers[@]}"; do
        per[$s]=$(( ($(count "$s" "$conns" "$rounds") - $(count "$s" "$conns" 0)) / (conns * rounds) ))
    done
    printf '%-8s' "$conns"
    for s in "${servers[@]}"; do printf ' %10d' "${per[$s]}"; done
    if [ "${servers[0]}" = sylvan ] && [ ${#servers[@]} -gt 1 ]; then
        for s in "${servers[@]:1}"; do
            printf ' %16s' "$(awk "BEGIN{printf \"%.2f×\", ${per[sylvan]}/${per[$s]}}")"
        done
    fi
    echo
done
