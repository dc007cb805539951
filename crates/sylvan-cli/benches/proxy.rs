//! Side-by-side benchmarks of the `sylvan` command, in one run:
//!
//! 1. `sylvan proxy` forwarding echo load, against a direct connection and
//!    against HAProxy in TCP mode (one core each: the proxy under test on
//!    core 0; the echo upstream and the load generator on core 1), at 1
//!    connection (added latency), 64 connections, and 256 connections
//!    (enough to saturate the proxy's core: the throughput comparison),
//!    with each proxy's own CPU time per request.
//! 2. `sylvan bench http` against `wrk` on the same HTTP server (a
//!    `sylvan::http::Server` on core 0; the load generators on core 1, one
//!    thread each), at 64 and 1000 connections.
//!
//! Run with `cargo bench -p sylvan-cli --bench proxy`; prints Markdown
//! tables. Each measurement runs `SYLVAN_BENCH_SECS` (default 3) and is
//! repeated `SYLVAN_BENCH_REPS` times (default 2), the contenders taking
//! turns, and the best run of each is shown — on a shared machine the
//! worst runs measure the neighbours. The whole run takes about 20
//! measurements plus start-up (~70 s by default). Nothing is asserted: the
//! numbers are for people. A tool that is missing (`haproxy`,
//! `wrk`, `taskset`) is reported and its rows are skipped.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The HTTP server mode of this same binary: `SYLVAN_BENCH_HTTP_SERVER=ADDR`.
const SERVER_ENV: &str = "SYLVAN_BENCH_HTTP_SERVER";

/// Runs both benchmarks (or, in the child, the HTTP server).
fn main() {
    if let Ok(addr) = std::env::var(SERVER_ENV) {
        http_server(&addr);
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists; nothing to list here
    }
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let b = Bench::new(
        Duration::from_secs(env("SYLVAN_BENCH_SECS", 3).max(1)),
        env("SYLVAN_BENCH_REPS", 2).max(1) as usize,
    );
    let started = Instant::now();
    b.proxy_tables();
    b.http_tables();
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
}

/// Serves `hello, world` over HTTP/1.1 keep-alive until killed.
fn http_server(addr: &str) {
    let server = sylvan::http::Server::bind(addr)
        .expect("bind the HTTP server")
        .max_connections(20_000)
        .expect("20000 connections")
        .serve(|_req| sylvan::http::Response::text("hello, world\n"));
    eprintln!("listening on {}", server.local_addr());
    let _ = server.wait();
}

/// What a run needs: the tools and where to pin.
struct Bench {
    secs: Duration,
    reps: usize,
    sylvan: &'static str,
    pin: bool,
    haproxy: bool,
    wrk: bool,
}

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One load measurement.
#[derive(Debug, Clone, Copy, Default)]
struct Measure {
    rps: f64,
    /// CPU time the process under test spent per request, µs (0 if
    /// unknown).
    cpu_us: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    /// Seconds the run took.
    elapsed_s: f64,
}

/// Clock ticks per second of `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// User plus system CPU time of process `pid`, in clock ticks (0 if it
/// cannot be read).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<&str> = after.split_whitespace().collect();
    let get = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    get(11) + get(12) // utime, stime (fields 14 and 15 of stat)
}

/// Whether `tool` is on the `PATH`.
fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("its address").port()
}

/// Waits until something accepts connections on `addr` (10 s at most).
fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Bench {
    fn new(secs: Duration, reps: usize) -> Bench {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pin = cores >= 2 && have("taskset");
        let b = Bench {
            secs,
            reps,
            sylvan: env!("CARGO_BIN_EXE_sylvan"),
            pin,
            haproxy: have("haproxy"),
            wrk: have("wrk"),
        };
        if !b.pin {
            println!("note: fewer than 2 cores or no taskset: processes are not pinned");
        }
        if !b.haproxy {
            println!("note: haproxy not found (apt-get install haproxy): its rows are skipped");
        }
        if !b.wrk {
            println!("note: wrk not found (apt-get install wrk): its rows are skipped");
        }
        b
    }

    /// A command pinned to `core` (when pinning).
    fn on_core(&self, core: u32, program: &str) -> Command {
        if self.pin {
            let mut c = Command::new("taskset");
            c.args(["-c", &core.to_string(), program]);
            c
        } else {
            Command::new(program)
        }
    }

    fn spawn(mut cmd: Command) -> Proc {
        Proc(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start a process"),
        )
    }

    /// `sylvan bench echo|http TARGET -c C` on core 1; its JSON report.
    fn sylvan_bench(&self, mode: &str, target: &str, conns: usize) -> Measure {
        let json = std::env::temp_dir().join(format!("sylvan-bench-{}.json", std::process::id()));
        let out = self
            .on_core(1, self.sylvan)
            .args(["bench", mode, target, "-c", &conns.to_string()])
            .args(["-d", &format!("{}s", self.secs.as_secs())])
            .arg("--json")
            .arg(&json)
            .output()
            .expect("run sylvan bench");
        assert!(
            out.status.success(),
            "sylvan bench {mode} {target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).expect("read the report"))
                .expect("parse the report");
        let _ = std::fs::remove_file(&json);
        Measure {
            rps: v["requests_per_sec"].as_f64().unwrap_or(0.0),
            p50_us: v["latency_us"]["p50"].as_f64().unwrap_or(0.0),
            p99_us: v["latency_us"]["p99"].as_f64().unwrap_or(0.0),
            errors: v["errors"].as_u64().unwrap_or(0),
            elapsed_s: v["elapsed_s"].as_f64().unwrap_or(0.0),
            cpu_us: 0.0,
        }
    }

    /// `wrk -t1 -cC` on core 1; its requests/s and latency percentiles.
    fn wrk(&self, url: &str, conns: usize) -> Measure {
        let out = self
            .on_core(1, "wrk")
            .args([
                "-t1",
                &format!("-c{conns}"),
                &format!("-d{}s", self.secs.as_secs()),
            ])
            .args(["--latency", url])
            .output()
            .expect("run wrk");
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |prefix: &str| {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(prefix))
                .and_then(|v| v.split_whitespace().next())
                .map(str::to_owned)
        };
        let us = |v: Option<String>| {
            let v = v.unwrap_or_default();
            let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
            let n: f64 = num.parse().unwrap_or(0.0);
            match unit {
                "us" => n,
                "ms" => n * 1e3,
                "s" => n * 1e6,
                _ => n,
            }
        };
        let errors = text
            .lines()
            .find(|l| l.contains("Socket errors") || l.contains("Non-2xx"))
            .map_or(0, |_| 1);
        Measure {
            rps: field("Requests/sec:")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0),
            p50_us: us(field("50%")),
            p99_us: us(field("99%")),
            errors,
            elapsed_s: self.secs.as_secs_f64(),
            cpu_us: 0.0,
        }
    }

    fn proxy_tables(&self) {
        let up_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut echo = self.on_core(1, self.sylvan);
        echo.args(["echo", "--listen", &up_addr.to_string()]);
        let _echo = Bench::spawn(echo);
        wait_listening(up_addr);

        let proxy_addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut proxy = self.on_core(0, self.sylvan);
        proxy.args([
            "proxy",
            "--listen",
            &proxy_addr.to_string(),
            "--upstream",
            &up_addr.to_string(),
        ]);
        let proxy = Bench::spawn(proxy);
        wait_listening(proxy_addr);

        let mut targets = vec![
            ("direct", up_addr, None),
            ("sylvan proxy", proxy_addr, Some(proxy.0.id())),
        ];
        let mut _haproxy = None;
        if self.haproxy {
            let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
            let cfg = std::env::temp_dir()
                .join(format!("sylvan-bench-haproxy-{}.cfg", std::process::id()));
            std::fs::write(
                &cfg,
                format!(
                    "global\n  maxconn 4096\n  nbthread 1\ndefaults\n  mode tcp\n  timeout connect 5s\n  \
                     timeout client 60s\n  timeout server 60s\nfrontend f\n  bind {addr}\n  \
                     default_backend b\nbackend b\n  server s1 {up_addr}\n"
                ),
            )
            .expect("write the haproxy config");
            let mut h = self.on_core(0, "haproxy");
            h.arg("-f").arg(&cfg).arg("-db");
            let h = Bench::spawn(h);
            wait_listening(addr);
            targets.push(("haproxy (TCP mode)", addr, Some(h.0.id())));
            _haproxy = Some(h);
        }

        println!(
            "\n### `sylvan proxy` vs a direct connection vs HAProxy (echo, 64-byte requests)\n"
        );
        println!(
            "Proxies on core 0, one each; echo upstream and `sylvan bench echo` on core 1; \
             best of {} × {} s.\n",
            self.reps,
            self.secs.as_secs()
        );
        println!(
            "| connections | path | req/s | proxy CPU per request | p50 | p99 | added p50 | added p99 | errors |"
        );
        println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        let mut ratios = Vec::new();
        for conns in [1, 64, 256] {
            let mut results: Vec<(&str, Measure)> = targets
                .iter()
                .map(|(name, ..)| (*name, Measure::default()))
                .collect();
            for _ in 0..self.reps {
                for (i, (_, addr, pid)) in targets.iter().enumerate() {
                    let before = pid.map(cpu_ticks);
                    let mut m = self.sylvan_bench("echo", &addr.to_string(), conns);
                    if let (Some(pid), Some(before)) = (pid, before) {
                        let ticks = cpu_ticks(*pid).saturating_sub(before);
                        let requests = m.rps * m.elapsed_s;
                        m.cpu_us = ticks as f64 * 1e6 / TICKS_PER_SEC / requests.max(1.0);
                    }
                    if m.rps > results[i].1.rps {
                        results[i].1 = m;
                    }
                }
            }
            let direct = results[0].1;
            for (name, m) in &results {
                let added = |a: f64, b: f64| {
                    if *name == "direct" {
                        "—".to_owned()
                    } else {
                        format!("{:+.0} µs", a - b)
                    }
                };
                println!(
                    "| {conns} | {name} | {:.0} | {} | {:.0} µs | {:.0} µs | {} | {} | {} |",
                    m.rps,
                    if m.cpu_us > 0.0 {
                        format!("{:.1} µs", m.cpu_us)
                    } else {
                        "—".to_owned()
                    },
                    m.p50_us,
                    m.p99_us,
                    added(m.p50_us, direct.p50_us),
                    added(m.p99_us, direct.p99_us),
                    m.errors
                );
            }
            if let (Some((_, s)), Some((_, h))) = (results.get(1), results.get(2)) {
                ratios.push((
                    conns,
                    s.rps / h.rps.max(1e-9),
                    s.cpu_us / h.cpu_us.max(1e-9),
                ));
            }
        }
        println!();
        for (conns, rps, cpu) in ratios {
            println!(
                "sylvan proxy / haproxy at {conns} connection(s): **{rps:.2}×** requests/s, \
                 {cpu:.2}× the CPU per request"
            );
        }
        println!(
            "\n(Target ≥ 0.9× requests/s. With two cores the echo server and the load generator \
             share core 1; below ~256 connections a proxy's core is not saturated and req/s \
             measures cross-core wake-up latency more than the proxy; the CPU column is the \
             proxy's own cost either way.)"
        );
    }

    fn http_tables(&self) {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let exe = std::env::current_exe().expect("this benchmark's path");
        let mut server = self.on_core(0, exe.to_str().expect("a UTF-8 path"));
        server.env(SERVER_ENV, addr.to_string());
        let mut server = server
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the HTTP server");
        let stderr = server.stderr.take().expect("piped stderr");
        let _server = Proc(server);
        let _ = BufReader::new(stderr).lines().next();
        wait_listening(addr);
        let url = format!("http://{addr}/");

        println!(
            "\n### `sylvan bench http` vs `wrk` (same sylvan::http::Server, keep-alive GET)\n"
        );
        println!(
            "Server on core 0; each load generator on core 1 with one thread; best of {} × {} s.\n",
            self.reps,
            self.secs.as_secs()
        );
        println!(
            "| connections | wrk req/s | sylvan bench req/s | ratio | wrk p50 / p99 | sylvan p50 / p99 |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        for conns in [64, 1000] {
            let (mut w, mut s) = (Measure::default(), Measure::default());
            for _ in 0..self.reps {
                if self.wrk {
                    let m = self.wrk(&url, conns);
                    if m.rps > w.rps {
                        w = m;
                    }
                }
                let m = self.sylvan_bench("http", &url, conns);
                if m.rps > s.rps {
                    s = m;
                }
            }
            println!(
                "| {conns} | {:.0} | {:.0} | {:.2}× | {:.0} / {:.0} µs | {:.0} / {:.0} µs |",
                w.rps,
                s.rps,
                s.rps / w.rps.max(1e-9),
                w.p50_us,
                w.p99_us,
                s.p50_us,
                s.p99_us
            );
        }
        println!("\n(target: sylvan bench within 15 % of wrk's requests/s)");
    }
}
