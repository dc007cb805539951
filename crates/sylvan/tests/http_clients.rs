//! The HTTP server against real clients nobody here wrote: curl, Python's
//! http.client and urllib, and wrk. Each runs on the thread pool, so this
//! hub keeps serving meanwhile.

mod http_util;
mod util;

use std::io::Read;
use std::process::Command;

use http_util::{run, stderr, stdout};
use sylvan::http::{Response, RunningServer, Server};

/// Echoes facts about each request: method, path, body length and a
/// checksum, and whether it was chunked.
fn start() -> RunningServer {
    Server::bind("127.0.0.1:0")
        .unwrap()
        .max_body_size(64 << 20)
        .serve(|mut req| {
            if req.path() == "/refuse" {
                return Response::status_page(413);
            }
            if req.path() == "/stream" {
                return Response::from_reader(std::io::repeat(b's').take(300_000));
            }
            let chunked = req.is_chunked();
            let mut body = Vec::new();
            if let Err(e) = req.read_to_end(&mut body) {
                return Response::text(format!("body error: {e}\n")).with_status(400);
            }
            let sum = body
                .iter()
                .fold(0u64, |a, &b| a.wrapping_mul(31).wrapping_add(u64::from(b)));
            Response::text(format!(
                "{} {} len={} sum={sum} chunked={chunked}\n",
                req.method(),
                req.path(),
                body.len()
            ))
        })
}

fn checksum(data: &[u8]) -> u64 {
    data.iter()
        .fold(0u64, |a, &b| a.wrapping_mul(31).wrapping_add(u64::from(b)))
}

fn temp_file(name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("sylvan-http-{}-{name}", std::process::id()));
    std::fs::write(&p, data).unwrap();
    p
}

/// Fails in one line, naming the Debian package, when `tool` is missing.
fn require(tool: &str) {
    util::require(
        util::have_program(tool),
        tool,
        &format!("apt-get install -y {tool}"),
    );
}

#[test]
fn curl_reuses_one_keep_alive_connection() {
    require("curl");
    let server = start();
    let base = format!("http://{}", server.local_addr());
    let out = run(Command::new("curl").args([
        "-sS",
        &format!("{base}/a"),
        &format!("{base}/b"),
        &format!("{base}/c"),
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "GET /a len=0 sum=0 chunked=false\nGET /b len=0 sum=0 chunked=false\nGET /c len=0 sum=0 chunked=false\n"
    );
    assert_eq!(server.accepted(), 1, "curl opened more than one connection");
}

#[test]
fn curl_chunked_upload_from_stdin() {
    require("curl");
    let server = start();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let file = temp_file("upload", &data);
    let out = run(Command::new("sh").arg("-c").arg(format!(
        "curl -sS -T - http://{}/up < {}",
        server.local_addr(),
        file.display()
    )));
    std::fs::remove_file(&file).ok();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "PUT /up len={} sum={} chunked=true\n",
            data.len(),
            checksum(&data)
        )
    );
}

#[test]
fn curl_expect_100_continue() {
    require("curl");
    let server = start();
    let data = vec![b'e'; 200_000];
    let file = temp_file("expect", &data);
    let url = format!("http://{}", server.local_addr());
    let out = run(Command::new("curl").args([
        "-sS",
        "-v",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{url}/post"),
    ]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("HTTP/1.1 100 Continue"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stdout(&out),
        format!(
            "POST /post len=200000 sum={} chunked=false\n",
            checksum(&data)
        )
    );
    // Refused before reading: no 100 Continue, the body is never sent.
    let out = run(Command::new("curl").args([
        "-sS",
        "-v",
        "-H",
        "Expect: 100-continue",
        "--data-binary",
        &format!("@{}", file.display()),
        &format!("{url}/refuse"),
    ]));
    std::fs::remove_file(&file).ok();
    let err = stderr(&out);
    assert!(err.contains("HTTP/1.1 413"), "{err}");
    assert!(!err.contains("100 Continue"), "{err}");
    assert!(stdout(&out).starts_with("413 Content Too Large"));
}

#[test]
fn curl_streamed_response_and_head() {
    require("curl");
    let server = start();
    let url = format!("http://{}/stream", server.local_addr());
    let out = run(Command::new("curl").args(["-sS", "--raw", "-D", "/dev/stderr", &url]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
    );
    let out = run(Command::new("curl").args(["-sS", &url]));
    assert_eq!(out.stdout.len(), 300_000);
    let out = run(Command::new("curl").args(["-sS", "-I", &url]));
    assert!(
        stdout(&out).starts_with("HTTP/1.1 200 OK"),
        "{}",
        stdout(&out)
    );
}

const PY_HTTP_CLIENT: &str = r#"
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port), timeout=20)
for i in range(5):
    c.request("GET", "/k%d" % i)
    r = c.getresponse()
    assert r.status == 200, r.status
    body = r.read().decode()
    assert body == "GET /k%d len=0 sum=0 chunked=false\n" % i, body
c.request("POST", "/form", body=b"a=1&b=2", headers={"Content-Type": "application/x-www-form-urlencoded"})
r = c.getresponse()
assert r.read().decode().startswith("POST /form len=7"), "post"
def gen():
    for i in range(10):
        yield b"x" * 1000
c.request("PUT", "/chunks", body=gen(), encode_chunked=True)
r = c.getresponse()
body = r.read().decode()
assert body.startswith("PUT /chunks len=10000") and "chunked=True".lower() in body.lower(), body
c.request("HEAD", "/k0")
r = c.getresponse()
assert r.status == 200 and r.read() == b""
c.request("GET", "/stream")
r = c.getresponse()
assert r.getheader("Transfer-Encoding") == "chunked"
assert len(r.read()) == 300000
c.close()
print("ok")
"#;

#[test]
fn python_http_client_keep_alive_chunked_head() {
    require("python3");
    let server = start();
    let out =
        run(Command::new("python3").args(["-c", PY_HTTP_CLIENT, &server.local_addr().to_string()]));
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), "ok");
    assert_eq!(server.accepted(), 1);
}

const PY_URLLIB: &str = r#"
import sys, urllib.request, urllib.error
base = "http://" + sys.argv[1]
body = urllib.request.urlopen(base + "/u", timeout=20).read().decode()
assert body == "GET /u len=0 sum=0 chunked=false\n", body
req = urllib.request.Request(base + "/p", data=b"hello", method="POST")
body = urllib.request.urlopen(req, timeout=20).read().decode()
assert body.startswith("POST /p len=5"), body
try:
    urllib.request.urlopen(base + "/refuse", timeout=20)
    raise SystemExit("expected an HTTPError")
except urllib.error.HTTPError as e:
    assert e.code == 413, e.code
print("ok")
"#;

#[test]
fn python_urllib_get_post_and_error_status() {
    require("python3");
    let server = start();
    let out =
        run(Command::new("python3").args(["-c", PY_URLLIB, &server.local_addr().to_string()]));
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert_eq!(stdout(&out).trim(), "ok");
}

#[test]
fn wrk_load_has_no_errors() {
    require("wrk");
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .serve(|_| Response::text("Hello, World!"));
    let url = format!("http://{}/", server.local_addr());
    let out = run(Command::new("wrk").args(["-t1", "-c32", "-d2s", "--latency", &url]));
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    println!("{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
    assert!(!text.contains("Socket errors"), "{text}");
    let requests: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no request count in {text}"));
    assert!(requests > 0);
    assert!(server.accepted() >= 32);
}
