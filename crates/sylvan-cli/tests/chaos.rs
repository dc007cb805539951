//! `sylvan chaos`: driven by the real `toxiproxy-python` client (PyPI),
//! populated from a Toxiproxy config file, stopped by SIGTERM; bad input
//! gets one line and exit code 2.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sylvan() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin!("sylvan"))
}

/// Starts `sylvan chaos` on a port of its own choosing (`--port 0`: a port
/// picked here and freed first could be taken by another test's server
/// meanwhile) and reads it from the "API listening on" line.
fn start_chaos(extra: &[&str]) -> (Child, u16) {
    use std::io::BufRead;
    let mut child = sylvan()
        .args(["chaos", "--port", "0"])
        .args(extra)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let port = line
        .split("listening on http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("sylvan chaos did not say where it listens: {line:?}"));
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, port)
}

/// SIGTERM, then the exit status must be success.
fn stop(mut child: Child) {
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// A plain-threads echo server, for the proxies to forward to.
fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let mut buf = [0; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// One raw HTTP request with `Connection: close`; returns the reply.
fn http(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    out
}

fn python_has_toxiproxy() -> bool {
    Command::new("python3")
        .args(["-c", "import toxiproxy"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The client session: create a proxy to the echo server, add a latency
/// toxic and see it, remove it, disable and enable, the client's error
/// types, populate, reset, destroy.
const CLIENT_SCRIPT: &str = r#"
import os, socket, time
import toxiproxy
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

api_port = int(os.environ["API_PORT"])
echo = os.environ["ECHO_ADDR"]
server = toxiproxy.Toxiproxy()
server.update_api_consumer("127.0.0.1", api_port)
assert server.running()
assert b'"version"' in server.version(), server.version()

proxy = server.create(upstream=echo, name="echo")
host, port = proxy.listen.rsplit(":", 1)
port = int(port)
assert port != 0 and proxy.enabled is True

def round_trip():
    s = socket.create_connection((host, port), timeout=10)
    t0 = time.monotonic()
    s.sendall(b"x" * 64)
    got = b""
    while len(got) < 64:
        chunk = s.recv(64 - len(got))
        assert chunk, "closed early"
        got += chunk
    dt = time.monotonic() - t0
    s.close()
    assert got == b"x" * 64
    return dt

round_trip()
proxy.add_toxic(type="latency", attributes={"latency": 300})
toxics = proxy.toxics()
assert list(toxics) == ["latency_downstream"], toxics
t = toxics["latency_downstream"]
assert (t.type, t.stream, t.toxicity, t.attributes["latency"]) == ("latency", "downstream", 1.0, 300), vars(t)
slow = round_trip()
assert slow >= 0.3, slow
proxy.destroy_toxic("latency_downstream")
assert proxy.toxics() == {}
assert proxy.get_toxic("latency_downstream") is None

proxy.disable()
assert server.get_proxy("echo").enabled is False
try:
    socket.create_connection((host, port), timeout=5)
    raise SystemExit("connected to a disabled proxy")
except ConnectionRefusedError:
    pass
proxy.enable()
assert server.get_proxy("echo").enabled is True
round_trip()
with proxy.down():
    try:
        socket.create_connection((host, port), timeout=5)
        raise SystemExit("connected inside down()")
    except ConnectionRefusedError:
        pass
round_trip()

for call, err in [
    (lambda: server.create(upstream=echo, name="echo"), ProxyExists),
    (lambda: APIConsumer.post("/proxies", json={"name": "echo", "upstream": echo}), ProxyExists),
    (lambda: proxy.add_toxic(type="no_such_toxic"), InvalidToxic),
    (lambda: proxy.add_toxic(type="latency", stream="sideways"), InvalidToxic),
    (lambda: APIConsumer.get("/proxies/missing"), NotFound),
    (lambda: proxy.destroy_toxic("missing"), NotFound),
]:
    try:
        call()
        raise SystemExit("no %s" % err.__name__)
    except err:
        pass

made = server.populate([
    {"name": "extra", "upstream": echo, "listen": "127.0.0.1:0"},
])
assert [p.name for p in made] == ["extra"]
assert sorted(server.proxies()) == ["echo", "extra"]

proxy.add_toxic(type="timeout", stream="upstream", name="hang", toxicity=0.5,
                attributes={"timeout": 0})
proxy.disable()
assert server.reset()
p = server.get_proxy("echo")
assert p.enabled is True and p.toxics() == {}
round_trip()

server.destroy_all()
assert server.proxies() == {}
print("toxiproxy-python: all good")
"#;

#[test]
fn the_toxiproxy_python_client_drives_it() {
    assert!(
        python_has_toxiproxy(),
        "this test needs python3 with the toxiproxy-python package, which is missing: install it \
         with `python3 -m pip install toxiproxy-python` (scripts/test.sh installs everything the \
         tests need)"
    );
    let echo = echo_server();
    let (child, port) = start_chaos(&[]);
    let out = Command::new("python3")
        .args(["-c", CLIENT_SCRIPT])
        .env("API_PORT", port.to_string())
        .env("ECHO_ADDR", format!("127.0.0.1:{echo}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("all good"), "{stdout}");
    stop(child);
}

#[test]
fn a_config_file_populates_it_at_start() {
    let echo = echo_server();
    let listen = free_port();
    let dir = std::env::temp_dir().join(format!("sylvan-chaos-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("toxiproxy.json");
    std::fs::write(
        &path,
        format!(
            r#"[
              {{"name": "echo", "listen": "127.0.0.1:{listen}", "upstream": "127.0.0.1:{echo}", "enabled": true}},
              {{"name": "later", "listen": "127.0.0.1:0", "upstream": "db.invalid:5432", "enabled": false}}
            ]"#
        ),
    )
    .unwrap();
    let (child, port) = start_chaos(&["--config", path.to_str().unwrap()]);
    let reply = http(port, "GET", "/proxies", "");
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(
        reply.contains(&format!(r#""listen":"127.0.0.1:{listen}""#)),
        "{reply}"
    );
    assert!(reply.contains(r#""name":"later""#), "{reply}");
    let mut c = TcpStream::connect(("127.0.0.1", listen)).unwrap();
    c.write_all(b"ping").unwrap();
    let mut back = [0; 4];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ping");
    drop(c);
    stop(child);
    // The proxies went with it.
    assert!(TcpStream::connect(("127.0.0.1", listen)).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

fn run(args: &[&str]) -> Output {
    sylvan().args(args).output().unwrap()
}

fn assert_usage(out: &Output, expect: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(expect), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    assert_usage(
        &run(&["chaos", "--port", "http"]),
        "--port \"http\" is not a port number",
    );
    assert_usage(&run(&["chaos", "--port", "70000"]), "is not a port number");
    assert_usage(&run(&["chaos", "--host", ""]), "--host is empty");
    // clap reports a bad --grace itself (with a hint line), exit code 2.
    let out = run(&["chaos", "--grace", "5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no unit"));

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    assert_usage(
        &run(&["chaos", "--port", &port]),
        "cannot listen on 127.0.0.1:",
    );

    let dir = std::env::temp_dir().join(format!("sylvan-chaos-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.json");
    assert_usage(
        &run(&[
            "chaos",
            "--port",
            "0",
            "--config",
            missing.to_str().unwrap(),
        ]),
        "cannot read --config",
    );
    let taken_addr = taken.local_addr().unwrap().to_string();
    for (name, text, expect) in [
        ("notjson.json", "[{".to_owned(), "bad request body: "),
        ("object.json", "{}".to_owned(), "bad request body: "),
        (
            "noupstream.json",
            r#"[{"name": "a", "listen": "127.0.0.1:0"}]"#.to_owned(),
            "missing required field: upstream at proxy 1",
        ),
        (
            "badlisten.json",
            r#"[{"name": "a", "listen": "nowhere", "upstream": "127.0.0.1:1"}]"#.to_owned(),
            "invalid listen address",
        ),
        (
            "inuse.json",
            format!(r#"[{{"name": "a", "listen": "{taken_addr}", "upstream": "127.0.0.1:1"}}]"#),
            "cannot listen on",
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        let out = run(&["chaos", "--port", "0", "--config", path.to_str().unwrap()]);
        assert_usage(&out, expect);
        assert!(String::from_utf8_lossy(&out.stderr).contains(name));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
