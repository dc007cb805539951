#!/usr/bin/env bash
# The README's test command: installs what the tests need that Rust does
# not bring (real programs the integration tests drive), then runs every
# test. `.ci/run` calls it after the format and lint checks.
#
# Programs: curl and wrk (tests/http_clients.rs), nginx
# (tests/http_client_peers.rs), redis-server
# (tests/redis.rs), PostgreSQL's initdb and postgres (the sylvan-postgres
# tests start private servers), ZooKeeper and a JRE (tests/zk*.rs, the
# CLI's discovery tests), Python 3 with websocket-client (tests/websocket.rs),
# websockets (tests/websocket_client.rs), toxiproxy-python (sylvan-cli
# tests/chaos.rs) and prometheus-client (tests/introspect.rs parses /metrics
# with its parser), chromium, node and playwright-core from npm (sylvan-cli
# tests/admin_page.rs loads the admin page in a real browser), tmux (sylvan-cli
# tests/top.rs drives `sylvan top` in it), iproute2 and nftables
# (tests/netns.rs: network namespaces, run as root). A test whose program is
# missing fails with one line naming it and the command that installs it.
set -euo pipefail
cd "$(dirname "$0")/.."

# Some suites open many sockets; use the whole hard limit.
ulimit -n "$(ulimit -Hn)" || true

apt_pkgs=()
command -v curl >/dev/null || apt_pkgs+=(curl)
command -v wrk >/dev/null || apt_pkgs+=(wrk)
{ command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; } || apt_pkgs+=(nginx)
command -v redis-server >/dev/null || apt_pkgs+=(redis-server)
{ compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null; } || apt_pkgs+=(postgresql)
{ command -v java >/dev/null && [ -e /usr/share/java/zookeeper.jar ]; } || apt_pkgs+=(zookeeper)
command -v python3 >/dev/null || apt_pkgs+=(python3 python3-pip)
command -v ip >/dev/null || apt_pkgs+=(iproute2)
command -v nft >/dev/null || apt_pkgs+=(nftables)
command -v tmux >/dev/null || apt_pkgs+=(tmux)
{ [ -x /usr/bin/chromium ] || [ -n "${CHROMIUM:-}" ]; } || apt_pkgs+=(chromium)
command -v npm >/dev/null || apt_pkgs+=(nodejs npm)
if ((${#apt_pkgs[@]})); then
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null && sudo=(sudo)
    fi
    echo "scripts/test.sh: installing ${apt_pkgs[*]} with apt-get" >&2
    if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq "${apt_pkgs[@]}"; }; then
        echo "scripts/test.sh: could not install ${apt_pkgs[*]}; the tests that need them will fail" \
            "and say so (run: apt-get install ${apt_pkgs[*]})" >&2
    fi
fi

pip_install() { # module package
    python3 -c "import $1" 2>/dev/null && return 0
    echo "scripts/test.sh: installing the Python package $2 with pip" >&2
    python3 -m pip install -q "$2" 2>/dev/null ||
        python3 -m pip install -q --break-system-packages "$2" ||
        echo "scripts/test.sh: could not install $2 (run: python3 -m pip install $2)" >&2
}
if command -v python3 >/dev/null; then
    pip_install websocket websocket-client
    pip_install websockets websockets
    pip_install toxiproxy toxiproxy-python
    pip_install prometheus_client prometheus-client
fi

# Playwright's library (no browser download: the test drives Debian's
# chromium) for sylvan-cli tests/admin_page.rs.
if command -v npm >/dev/null && [ ! -d crates/sylvan-cli/tests/browser/node_modules/playwright-core ]; then
    echo "scripts/test.sh: installing playwright-core with npm" >&2
    npm install --prefix crates/sylvan-cli/tests/browser --no-audit --no-fund -q ||
        echo "scripts/test.sh: could not install playwright-core (run: npm install --prefix crates/sylvan-cli/tests/browser)" >&2
fi

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
rc=0
cargo test --workspace --all-features --no-fail-fast "$@" || rc=$?
# Some paths exist only in an optimized build: corosensei's suspend is
# inlined into the caller of `yield_now` (so a forced unwind at shutdown
# starts in the caller's own frame) only when optimizing. Run the suites
# that drive them optimized too (not when a test filter was given).
if [ $# -eq 0 ]; then
    cargo test --release -p sylvan --test shutdown --test direct_switch --no-fail-fast || rc=$?
fi
exit "$rc"
