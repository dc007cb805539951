//! `sylvan::chaos::api`: Toxiproxy's HTTP API, every endpoint, its status
//! codes and error bodies, populate and reset, driven over real sockets by
//! a raw HTTP/1.1 client.
#![cfg(feature = "chaos-api")]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use sylvan::chaos::Registry;
use sylvan::chaos::api::ApiServer;
use sylvan::net::ServerHandle;

/// A reply: status, headers (lower-case names), JSON body (`Null` when
/// empty or not JSON).
struct Reply {
    status: u16,
    head: String,
    body: Value,
    raw: String,
}

impl Reply {
    fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }
}

fn call_with(addr: SocketAddr, method: &str, path: &str, body: &str, extra: &str) -> Reply {
    let mut c = sylvan::connect(addr).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).unwrap();
    let (head, raw) = out.split_once("\r\n\r\n").expect("a complete reply");
    let status = head[9..12].parse().unwrap();
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: serde_json::from_str(raw).unwrap_or(Value::Null),
        raw: raw.to_owned(),
    }
}

fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> Reply {
    call_with(addr, method, path, body, "")
}

fn api() -> ApiServer {
    ApiServer::bind("127.0.0.1:0", Registry::new()).unwrap()
}

fn shut(api: ApiServer) {
    api.stop(Duration::from_secs(1));
    api.registry().clear();
}

fn echo_server() -> ServerHandle {
    sylvan::serve(sylvan::listen("127.0.0.1:0").unwrap(), |c, _| {
        std::io::copy(&mut &c, &mut &c).map(|_| ())
    })
}

fn round_trip(addr: &str, msg: &[u8]) -> std::io::Result<Duration> {
    let mut c = sylvan::connect(addr)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let t0 = sylvan::time::now();
    c.write_all(msg)?;
    let mut back = vec![0; msg.len()];
    c.read_exact(&mut back)?;
    assert_eq!(back, msg);
    Ok(sylvan::time::now() - t0)
}

fn create(addr: SocketAddr, name: &str, upstream: &str) -> Value {
    let r = call(
        addr,
        "POST",
        "/proxies",
        &json!({"name": name, "listen": "127.0.0.1:0", "upstream": upstream}).to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.raw);
    r.body
}

#[test]
fn version_is_toxiproxys() {
    let api = api();
    let r = call(api.local_addr(), "GET", "/version", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"version": "2.12.0"}));
    assert!(
        r.head
            .contains("content-type: application/json;charset=utf-8")
    );
    shut(api);
}

#[test]
fn proxies_are_created_shown_listed_and_deleted() {
    let api = api();
    let a = api.local_addr();
    let echo = echo_server();
    let up = echo.local_addr().unwrap().to_string();

    let created = create(a, "echo", &up);
    let listen = created["listen"].as_str().unwrap().to_owned();
    assert!(listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"));
    assert_eq!(
        created,
        json!({"name": "echo", "listen": listen, "upstream": up, "enabled": true, "toxics": []})
    );
    round_trip(&listen, b"through").unwrap();

    let shown = call(a, "GET", "/proxies/echo", "");
    assert_eq!((shown.status, &shown.body), (200, &created));
    assert!(shown.head.contains("content-type: application/json"));
    let all = call(a, "GET", "/proxies", "");
    assert_eq!((all.status, all.body), (200, json!({ "echo": created })));

    let dup = call(
        a,
        "POST",
        "/proxies",
        &json!({"name": "echo", "upstream": up}).to_string(),
    );
    assert_eq!(dup.status, 409);
    assert_eq!(
        dup.body,
        json!({"error": "proxy already exists", "status": 409})
    );

    let gone = call(a, "DELETE", "/proxies/echo", "");
    assert_eq!((gone.status, gone.raw.as_str()), (204, ""));
    assert!(sylvan::connect(listen.as_str()).is_err());
    let again = call(a, "DELETE", "/proxies/echo", "");
    assert_eq!(again.status, 404);
    assert_eq!(
        again.body,
        json!({"error": "proxy not found", "status": 404})
    );
    assert_eq!(call(a, "GET", "/proxies/echo", "").status, 404);
    assert_eq!(call(a, "GET", "/proxies", "").body, json!({}));
    shut(api);
    echo.stop(Duration::from_secs(1));
}

#[test]
fn bad_proxy_bodies_are_400_with_toxiproxys_messages() {
    let api = api();
    let a = api.local_addr();
    for (body, msg) in [
        (
            r#"{"upstream": "127.0.0.1:1"}"#,
            "missing required field: name",
        ),
        (r#"{"name": "x"}"#, "missing required field: upstream"),
        ("", "bad request body: EOF"),
        ("{nope", "bad request body: "),
        (
            r#"{"name": "x", "upstream": "127.0.0.1:1", "enabled": "yes"}"#,
            "bad request body: ",
        ),
        ("[]", "bad request body: "),
        (
            r#"{"name": "x", "upstream": "no-port"}"#,
            "invalid upstream address",
        ),
        (
            r#"{"name": "x", "upstream": "127.0.0.1:1", "listen": "nowhere"}"#,
            "invalid listen address",
        ),
    ] {
        let r = call(a, "POST", "/proxies", body);
        assert_eq!(r.status, 400, "{body}: {}", r.raw);
        assert!(r.error().starts_with(msg), "{body}: {}", r.raw);
        assert_eq!(r.body["status"], 400);
    }
    assert!(api.registry().proxies().is_empty());
    shut(api);
}

#[test]
fn a_port_in_use_is_a_500() {
    let api = api();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let r = call(
        api.local_addr(),
        "POST",
        "/proxies",
        &json!({"name": "x", "listen": addr, "upstream": "127.0.0.1:1"}).to_string(),
    );
    assert_eq!(r.status, 500, "{}", r.raw);
    assert!(
        r.error().starts_with(&format!("cannot listen on {addr}")),
        "{}",
        r.raw
    );
    assert!(api.registry().get("x").is_none());
    shut(api);
}

#[test]
fn update_takes_a_proxy_down_and_up_and_moves_it() {
    let api = api();
    let a = api.local_addr();
    let echo = echo_server();
    let echo2 = echo_server();
    let up = echo.local_addr().unwrap().to_string();
    let listen = create(a, "p", &up)["listen"].as_str().unwrap().to_owned();

    // Down: refused; the fields stay.
    let down = call(a, "POST", "/proxies/p", r#"{"enabled": false}"#);
    assert_eq!(down.status, 200, "{}", down.raw);
    assert_eq!(down.body["enabled"], false);
    assert_eq!(down.body["listen"], listen.as_str());
    assert!(sylvan::connect(listen.as_str()).is_err());
    // Up again, on the same port (PATCH works too).
    let upr = call(a, "PATCH", "/proxies/p", r#"{"enabled": true}"#);
    assert_eq!((upr.status, &upr.body["enabled"]), (200, &json!(true)));
    round_trip(&listen, b"again").unwrap();

    // A new upstream: connections now reach the other server.
    let up2 = echo2.local_addr().unwrap().to_string();
    let moved = call(
        a,
        "POST",
        "/proxies/p",
        &json!({ "upstream": up2 }).to_string(),
    );
    assert_eq!(moved.body["upstream"], up2.as_str());
    round_trip(&listen, b"to two").unwrap();
    assert_eq!(echo2.accepted(), 1);

    // A new listen address: the old one is closed.
    let relisten = call(a, "POST", "/proxies/p", r#"{"listen": "127.0.0.1:0"}"#);
    let listen2 = relisten.body["listen"].as_str().unwrap().to_owned();
    assert_ne!(listen2, listen);
    assert!(sylvan::connect(listen.as_str()).is_err());
    round_trip(&listen2, b"moved").unwrap();

    assert_eq!(
        call(a, "POST", "/proxies/p", "").error(),
        "bad request body: EOF"
    );
    let missing = call(a, "POST", "/proxies/q", r#"{"enabled": false}"#);
    assert_eq!((missing.status, missing.error()), (404, "proxy not found"));
    shut(api);
    echo.stop(Duration::from_secs(1));
    echo2.stop(Duration::from_secs(1));
}

#[test]
fn a_proxy_created_disabled_binds_when_enabled_with_its_toxics() {
    let api = api();
    let a = api.local_addr();
    let echo = echo_server();
    let up = echo.local_addr().unwrap().to_string();
    let body = json!({"name": "p", "listen": "127.0.0.1:0", "upstream": up, "enabled": false});
    let r = call(a, "POST", "/proxies", &body.to_string());
    assert_eq!(r.status, 201);
    assert_eq!(
        (&r.body["listen"], &r.body["enabled"]),
        (&json!("127.0.0.1:0"), &json!(false))
    );
    let t = call(
        a,
        "POST",
        "/proxies/p/toxics",
        r#"{"type": "limit_data", "attributes": {"bytes": 3}}"#,
    );
    assert_eq!(t.status, 200, "{}", t.raw);
    let on = call(a, "POST", "/proxies/p", r#"{"enabled": true}"#);
    let listen = on.body["listen"].as_str().unwrap().to_owned();
    assert_ne!(listen, "127.0.0.1:0");
    assert_eq!(on.body["toxics"][0]["name"], "limit_data_downstream");
    let mut c = sylvan::connect(listen.as_str()).unwrap();
    c.write_all(b"hello").unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hel");
    shut(api);
    echo.stop(Duration::from_secs(1));
}

#[test]
fn toxics_are_added_shown_updated_and_removed() {
    let api = api();
    let a = api.local_addr();
    let echo = echo_server();
    let up = echo.local_addr().unwrap().to_string();
    let listen = create(a, "p", &up)["listen"].as_str().unwrap().to_owned();

    // Defaults: downstream, toxicity 1, name <type>_<stream>; attributes
    // not given are 0.
    let r = call(
        a,
        "POST",
        "/proxies/p/toxics",
        r#"{"type": "latency", "attributes": {"latency": 150}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.raw);
    let lag = json!({
        "attributes": {"jitter": 0, "latency": 150},
        "name": "latency_downstream",
        "type": "latency",
        "stream": "downstream",
        "toxicity": 1.0,
    });
    assert_eq!(r.body, lag);
    assert!(round_trip(&listen, b"slow").unwrap() >= Duration::from_millis(150));

    let up_t = call(
        a,
        "POST",
        "/proxies/p/toxics",
        r#"{"name": "cut", "type": "limit_data", "stream": "Upstream", "toxicity": 0.1,
            "attributes": {"bytes": 1000000, "colour": 3}}"#,
    );
    assert_eq!(up_t.status, 200, "{}", up_t.raw);
    assert_eq!(up_t.body["toxicity"], json!(0.1));
    assert_eq!(up_t.body["attributes"], json!({"bytes": 1000000}));
    assert_eq!(up_t.body["stream"], "upstream");

    // Listed upstream first, as Toxiproxy does.
    let list = call(a, "GET", "/proxies/p/toxics", "");
    assert_eq!(list.status, 200);
    let names: Vec<&str> = list
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cut", "latency_downstream"]);
    assert_eq!(call(a, "GET", "/proxies/p", "").body["toxics"], list.body);
    let one = call(a, "GET", "/proxies/p/toxics/latency_downstream", "");
    assert_eq!((one.status, &one.body), (200, &lag));

    // An update changes only the attributes given and the toxicity.
    let upd = call(
        a,
        "POST",
        "/proxies/p/toxics/latency_downstream",
        r#"{"attributes": {"jitter": 5}, "toxicity": 0.5, "type": "timeout", "stream": "upstream"}"#,
    );
    assert_eq!(upd.status, 200, "{}", upd.raw);
    assert_eq!(upd.body["attributes"], json!({"jitter": 5, "latency": 150}));
    assert_eq!(
        (&upd.body["toxicity"], &upd.body["type"]),
        (&json!(0.5), &json!("latency"))
    );
    let patch = call(
        a,
        "PATCH",
        "/proxies/p/toxics/latency_downstream",
        r#"{"attributes": {"latency": 0}}"#,
    );
    assert_eq!(patch.body["attributes"], json!({"jitter": 5, "latency": 0}));
    assert_eq!(patch.body["toxicity"], json!(0.5));

    let del = call(a, "DELETE", "/proxies/p/toxics/latency_downstream", "");
    assert_eq!((del.status, del.raw.as_str()), (204, ""));
    let del2 = call(a, "DELETE", "/proxies/p/toxics/latency_downstream", "");
    assert_eq!(
        del2.body,
        json!({"error": "toxic not found", "status": 404})
    );
    let show = call(a, "GET", "/proxies/p/toxics/latency_downstream", "");
    assert_eq!((show.status, show.error()), (404, "toxic not found"));
    let upd2 = call(a, "POST", "/proxies/p/toxics/nope", r#"{"toxicity": 1}"#);
    assert_eq!((upd2.status, upd2.error()), (404, "toxic not found"));
    let names: Vec<String> = api
        .registry()
        .toxics("p")
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["cut"]);
    shut(api);
    echo.stop(Duration::from_secs(1));
}

#[test]
fn bad_toxics_are_rejected_with_toxiproxys_codes() {
    let api = api();
    let a = api.local_addr();
    create(a, "p", "127.0.0.1:9");
    call(
        a,
        "POST",
        "/proxies/p/toxics",
        r#"{"name": "t", "type": "timeout"}"#,
    );
    for (body, status, msg) in [
        (
            r#"{"name": "t", "type": "timeout"}"#,
            409,
            "toxic already exists",
        ),
        (
            r#"{"type": "latency", "stream": "sideways"}"#,
            400,
            "stream was invalid, can be either upstream or downstream",
        ),
        (r#"{"type": "lag"}"#, 400, "invalid toxic type"),
        (r#"{"name": "x"}"#, 400, "invalid toxic type"),
        (
            r#"{"type": "latency", "attributes": {"latency": "100"}}"#,
            400,
            "bad request body: attribute \"latency\" must be an integer",
        ),
        (
            r#"{"type": "latency", "attributes": {"latency": -1}}"#,
            400,
            "invalid latency attribute \"latency\"",
        ),
        (
            r#"{"type": "bandwidth"}"#,
            400,
            "invalid bandwidth attribute \"rate\"",
        ),
        (
            r#"{"type": "latency", "toxicity": 2}"#,
            400,
            "invalid toxicity 2",
        ),
        (
            r#"{"type": "latency", "attributes": 5}"#,
            400,
            "bad request body: ",
        ),
        ("", 400, "bad request body: EOF"),
    ] {
        let r = call(a, "POST", "/proxies/p/toxics", body);
        assert_eq!(r.status, status, "{body}: {}", r.raw);
        assert!(r.error().starts_with(msg), "{body}: {}", r.raw);
        assert_eq!(r.body["status"], status);
    }
    let r = call(a, "POST", "/proxies/q/toxics", r#"{"type": "timeout"}"#);
    assert_eq!((r.status, r.error()), (404, "proxy not found"));
    assert_eq!(call(a, "GET", "/proxies/q/toxics", "").status, 404);
    let bad_update = call(a, "POST", "/proxies/p/toxics/t", r#"{"toxicity": -1}"#);
    assert_eq!(bad_update.status, 400, "{}", bad_update.raw);
    assert_eq!(api.registry().toxics("p").unwrap().len(), 1);
    shut(api);
}

#[test]
fn populate_creates_keeps_and_replaces() {
    let api = api();
    let a = api.local_addr();
    let list = json!([
        {"name": "one", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"},
        {"name": "two", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:2", "enabled": false},
    ]);
    let r = call(a, "POST", "/populate", &list.to_string());
    assert_eq!(r.status, 201, "{}", r.raw);
    let proxies = r.body["proxies"].as_array().unwrap().clone();
    assert_eq!(proxies.len(), 2);
    assert_eq!(
        (&proxies[0]["name"], &proxies[0]["enabled"]),
        (&json!("one"), &json!(true))
    );
    assert_eq!(
        (&proxies[1]["name"], &proxies[1]["enabled"]),
        (&json!("two"), &json!(false))
    );
    let one_listen = proxies[0]["listen"].as_str().unwrap().to_owned();
    call(a, "POST", "/proxies/one/toxics", r#"{"type": "timeout"}"#);
    create(a, "other", "127.0.0.1:3");

    // Same listen (as bound) and upstream: left as it is, toxics and all.
    // A different upstream: replaced. Proxies not listed: left alone.
    let again = json!([
        {"name": "one", "listen": one_listen, "upstream": "127.0.0.1:1"},
        {"name": "two", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:4"},
    ]);
    let r = call(a, "POST", "/populate", &again.to_string());
    assert_eq!(r.status, 201, "{}", r.raw);
    let p = &r.body["proxies"];
    assert_eq!(p[0]["toxics"][0]["type"], "timeout");
    assert_eq!(p[0]["listen"], one_listen.as_str());
    assert_eq!(
        (&p[1]["upstream"], &p[1]["enabled"]),
        (&json!("127.0.0.1:4"), &json!(true))
    );
    let names: Vec<String> = api
        .registry()
        .proxies()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["one", "other", "two"]);

    // A bad list changes nothing.
    let bad = json!([
        {"name": "three", "upstream": "127.0.0.1:5"},
        {"name": "four"},
    ]);
    let r = call(a, "POST", "/populate", &bad.to_string());
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!({"error": "missing required field: upstream at proxy 2", "status": 400, "proxies": []})
    );
    let dup =
        json!([{"name": "x", "upstream": "127.0.0.1:5"}, {"name": "x", "upstream": "127.0.0.1:6"}]);
    assert_eq!(call(a, "POST", "/populate", &dup.to_string()).status, 400);
    assert_eq!(call(a, "POST", "/populate", "{}").status, 400);
    assert!(api.registry().get("three").is_none());
    let empty = call(a, "POST", "/populate", "[]");
    assert_eq!((empty.status, empty.body), (201, json!({"proxies": []})));
    shut(api);
}

#[test]
fn reset_enables_everything_and_removes_every_toxic() {
    let api = api();
    let a = api.local_addr();
    let echo = echo_server();
    let up = echo.local_addr().unwrap().to_string();
    let l1 = create(a, "one", &up)["listen"].as_str().unwrap().to_owned();
    create(a, "two", &up);
    call(a, "POST", "/proxies/one/toxics", r#"{"type": "timeout"}"#);
    call(
        a,
        "POST",
        "/proxies/two/toxics",
        r#"{"type": "latency", "stream": "upstream"}"#,
    );
    call(a, "POST", "/proxies/one", r#"{"enabled": false}"#);
    let r = call(a, "POST", "/reset", "");
    assert_eq!((r.status, r.raw.as_str()), (204, ""));
    for p in api.registry().proxies() {
        assert!(p.enabled && p.toxics.is_empty(), "{p:?}");
    }
    round_trip(&l1, b"back").unwrap();
    shut(api);
    echo.stop(Duration::from_secs(1));
}

#[test]
fn routing_browsers_methods_and_names() {
    let api = api();
    let a = api.local_addr();
    // Browsers are turned away, as Toxiproxy does.
    let r = call_with(
        a,
        "GET",
        "/proxies",
        "",
        "User-Agent: Mozilla/5.0 (X11)\r\n",
    );
    assert_eq!(r.status, 403);
    assert_eq!(call(a, "GET", "/nope", "").status, 404);
    assert_eq!(call(a, "GET", "/proxies/", "").status, 404);
    assert_eq!(call(a, "GET", "/proxies/a/b/c/d", "").status, 404);
    assert_eq!(call(a, "DELETE", "/proxies", "").status, 405);
    assert_eq!(call(a, "GET", "/reset", "").status, 405);
    assert_eq!(call(a, "PUT", "/proxies/x", "").status, 405);
    // Names are percent-decoded.
    let body = json!({"name": "my proxy", "upstream": "127.0.0.1:9"}).to_string();
    assert_eq!(call(a, "POST", "/proxies", &body).status, 201);
    let r = call(a, "GET", "/proxies/my%20proxy", "");
    assert_eq!((r.status, &r.body["name"]), (200, &json!("my proxy")));
    assert_eq!(call(a, "GET", "/proxies/my%2", "").status, 400);
    // Unknown fields are ignored; trailing bytes after the JSON value too.
    let body = r#"{"name": "z", "upstream": "127.0.0.1:9", "colour": "red"} trailing"#;
    assert_eq!(call(a, "POST", "/proxies", body).status, 201);
    shut(api);
}

#[test]
fn api_and_registry_drive_the_same_proxies() {
    let reg = Registry::new();
    let api = ApiServer::bind("127.0.0.1:0", reg.clone()).unwrap();
    let a = api.local_addr();
    create(a, "p", "127.0.0.1:9");
    reg.add_toxic(
        "p",
        "mute",
        sylvan::chaos::Toxic::HalfOpen,
        sylvan::chaos::Direction::Upstream,
        1.0,
    )
    .unwrap();
    let t = call(a, "GET", "/proxies/p/toxics/mute", "");
    assert_eq!(t.body["type"], "half_open");
    assert_eq!(t.body["attributes"], json!({}));
    reg.remove("p").unwrap();
    assert_eq!(call(a, "GET", "/proxies", "").body, json!({}));
    shut(api);
}
