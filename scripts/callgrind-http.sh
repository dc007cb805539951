#!/usr/bin/env bash
# Server-side instructions per request (callgrind) of the keep-alive hello
# world of crates/sylvan-bench (`http --serve sylvan|hyper|bare`; bare is a
# bare httparse responder on tokio, the floor):
#
#   scripts/callgrind-http.sh [SERVER...]     # default: sylvan hyper bare
#   N=20000 CONNS=4 KEEP=/tmp/cg-http scripts/callgrind-http.sh sylvan
#   MISSES=1 N=21000 CONNS=1000 scripts/callgrind-http.sh   # L1 data misses
#
# Each server runs under callgrind while a small client holds CONNS
# keep-alive connections, each with one request in flight at a time (as
# `wrk` does), for N requests in all; then again for CONNS requests (one
# per connection). The figure is the difference over N − CONNS, so start-up,
# accept and close cancel. Kernel time is not counted. Set KEEP=dir to keep
# the profiles (callgrind_annotate them). Needs valgrind and python3; builds
# the bench binary into $CARGO_TARGET_DIR (default target/). For another
# revision, run a copy of this script in a worktree of it. With CONNS=1
# every request is one hub turn, and repeated runs agree to the
# instruction; with more connections the requests a turn serves vary a
# little from run to run (tens of instructions per request).
#
# With MISSES=1 the figure is L1 data-cache misses per request instead
# (cachegrind's cache simulation): with many connections, the cache lines
# each request's state costs.
set -euo pipefail
cd "$(dirname "$0")/.."
# Many connections need more descriptors than the usual soft limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
command -v valgrind >/dev/null || { echo "needs valgrind: apt-get install valgrind" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }
if [ $# -eq 0 ]; then servers=(sylvan hyper bare); else servers=("$@"); fi
misses="${MISSES:-0}"
N="${N:-20000}"
CONNS="${CONNS:-4}"
target="${CARGO_TARGET_DIR:-target}"
cargo build -q --release -p sylvan-bench --bin http
bin="$target/release/http"
work="$(mktemp -d "${TMPDIR:-/tmp}/sylvan-cg-http.XXXXXX")"
trap 'rm -rf "$work"' EXIT
out="${KEEP:-$work}"
mkdir -p "$out"

# The client: CONNS connections, one request in flight on each, until
# `total` responses have come back.
cat >"$work/drive.py" <<'PY'
import selectors, socket, sys
port, total, conns = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
req = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
body = b"Hello, World!"
sel = selectors.DefaultSelector()
socks = []
for _ in range(conns):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    socks.append(s)
sent = done = 0
pending = {}
for s in socks:
    if sent < total:
        s.sendall(req)
        sent += 1
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
while done < total:
    for key, _ in sel.select():
        s = key.fileobj
        data = s.recv(65536)
        if not data:
            sys.exit("server closed a connection")
        buf = pending[s] + data
        while body in buf:
            buf = buf[buf.index(body) + len(body):]
            done += 1
            if sent < total:
                s.sendall(req)
                sent += 1
        pending[s] = buf
for s in socks:
    s.close()
PY

# Instructions (L1 data misses with MISSES=1) of one server run that
# answers `$2` requests.
count() {
    local kind=$1 n=$2 file="$out/$1-$2.out"
    local tool=(--tool=callgrind --callgrind-out-file="$file")
    [ "$misses" = 1 ] && tool=(--tool=cachegrind --cache-sim=yes --cachegrind-out-file="$file")
    valgrind "${tool[@]}" "$bin" --serve "$kind" \
        >"$work/port" 2>"$work/vg.log" &
    local pid=$!
    for _ in $(seq 600); do
        grep -q '^PORT' "$work/port" 2>/dev/null && break
        sleep 0.1
    done
    python3 "$work/drive.py" "$(awk '/^PORT/{print $2}' "$work/port")" "$n" "$CONNS"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null || true
    if [ "$misses" = 1 ]; then
        # "D1  misses:   1,234 ( ... rd + ... wr)": the total.
        awk '/D1  misses:/ { gsub(",", "", $4); print $4 }' "$work/vg.log"
    else
        grep -o 'Collected : [0-9]*' "$work/vg.log" | grep -o '[0-9]*'
    fi
}

echo "N=$N requests on CONNS=$CONNS keep-alive connections"
what="instr/req"
[ "$misses" = 1 ] && what="D1miss/req"
printf '%-8s %12s %10s\n' server "$what" "vs first"
first=""
for kind in "${servers[@]}"; do
    lo=$(count "$kind" "$CONNS")
    hi=$(count "$kind" "$N")
    per=$(awk "BEGIN{printf \"%.1f\", ($hi - $lo) / ($N - $CONNS)}")
    first=${first:-$per}
    printf '%-8s %12s %10s\n' "$kind" "$per" "$(awk "BEGIN{printf \"%.3f\", $per/$first}")"
done
