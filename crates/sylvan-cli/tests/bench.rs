//! `sylvan bench` as a process: echo and HTTP load with JSON and SVG
//! reports, constant rate, bad input.

mod util;

use util::{Proc, dead_addr, echo_server, sylvan, temp_path};

fn read_json(path: &std::path::Path) -> serde_json::Value {
    let v = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let _ = std::fs::remove_file(path);
    v
}

#[test]
fn bench_echo_writes_a_json_report_and_a_plot() {
    let (_e, addr) = echo_server();
    let (json, svg) = (temp_path("echo.json"), temp_path("echo.svg"));
    let out = sylvan()
        .args([
            "bench",
            "echo",
            &addr.to_string(),
            "-c",
            "4",
            "-d",
            "1s",
            "--size",
            "100",
        ])
        .arg("--json")
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("p99"), "{stdout}");
    let r = read_json(&json);
    assert_eq!(r["mode"], "echo");
    assert_eq!(r["connections"], 4);
    assert_eq!(r["size"], 100);
    assert_eq!(r["errors"], 0, "{r}");
    let requests = r["requests"].as_u64().unwrap();
    assert!(requests > 0);
    assert!(r["requests_per_sec"].as_f64().unwrap() > 0.0);
    let l = &r["latency_us"];
    for (a, b) in [
        ("p50", "p90"),
        ("p90", "p99"),
        ("p99", "p999"),
        ("p999", "max"),
    ] {
        assert!(l[a].as_f64().unwrap() <= l[b].as_f64().unwrap(), "{l}");
    }
    let timeline = r["timeline"].as_array().unwrap();
    let in_timeline: u64 = timeline
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(in_timeline, requests);
    let plot = std::fs::read_to_string(&svg).unwrap();
    let _ = std::fs::remove_file(&svg);
    assert!(
        plot.contains("<svg") && plot.contains("requests/s"),
        "{plot:.200}"
    );
}

#[test]
fn bench_echo_at_a_constant_rate() {
    let (_e, addr) = echo_server();
    let json = temp_path("rate.json");
    let out = sylvan()
        .args([
            "bench",
            "echo",
            &addr.to_string(),
            "-c",
            "4",
            "-d",
            "1s",
            "--rate",
            "200",
            "--threads",
            "2",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = read_json(&json);
    let n = r["requests"].as_u64().unwrap();
    assert!((150..=210).contains(&n), "{n} requests at 200/s for 1 s");
    assert_eq!(r["rate"], 200.0);
    assert_eq!(r["threads"], 2);
}

#[test]
fn bench_http_against_the_proxy_admin_endpoint() {
    // The proxy's admin endpoint is a sylvan::http::Server: a handy target.
    let mut p = Proc::spawn(&[
        "proxy",
        "--upstream",
        "127.0.0.1:1",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
    ]);
    let admin = p.addr_after("admin on ");
    let json = temp_path("http.json");
    let out = sylvan()
        .args([
            "bench",
            "http",
            &format!("http://{admin}/health"),
            "-c",
            "4",
            "-d",
            "1s",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = read_json(&json);
    assert_eq!(r["mode"], "http");
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["non_2xx"], 0, "{r}");
    assert!(r["requests"].as_u64().unwrap() > 0);
    // A 404 counts as a non-2xx response, not an error.
    let out = sylvan()
        .args([
            "bench",
            "http",
            &format!("http://{admin}/nope"),
            "-c",
            "1",
            "-d",
            "200ms",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(out.status.success());
    let r = read_json(&json);
    assert_eq!(r["non_2xx"], r["requests"]);
}

#[test]
fn bad_input_and_unreachable_targets() {
    let dead = dead_addr().to_string();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["bench", "echo", "nowhere"],
            2,
            "ADDR \"nowhere\" is not HOST:PORT",
        ),
        (
            vec!["bench", "echo", "127.0.0.1:7", "-d", "3 fortnights"],
            2,
            "unknown unit",
        ),
        (
            vec!["bench", "echo", "127.0.0.1:7", "-c", "0"],
            2,
            "at least 1",
        ),
        (
            vec!["bench", "echo", "127.0.0.1:7", "--rate=0"],
            2,
            "--rate",
        ),
        (vec!["bench", "http", "localhost:80/"], 2, "not a valid URL"),
        (
            vec!["bench", "http", "https://localhost/"],
            2,
            "https is not supported",
        ),
        (vec!["bench", "http", "http://:80/"], 2, "not a valid URL"),
        (vec!["bench", "echo", &dead], 1, "cannot connect to"),
    ];
    let http_dead = format!("http://{dead}/");
    let mut cases = cases;
    cases.push((vec!["bench", "http", &http_dead], 1, "cannot connect to"));
    for (args, code, want) in cases {
        let out = sylvan().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        // One clear line (clap adds a "for more information" hint below
        // its own errors).
        let first = err.lines().next().unwrap_or_default();
        assert!(first.contains(want), "{args:?}: want {want:?} in {err}");
        if !err.contains("For more information") {
            assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        }
    }
}
