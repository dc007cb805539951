//! sylvan's `http::Client` against ureq, reqwest's blocking client and
//! hyper's client on tokio's `current_thread` runtime, in one run.
//!
//! ```text
//! cargo build --release -p sylvan-bench
//! target/release/client            # 3 rounds of 20,000 requests per cell
//! target/release/client --quick    # 1 round of 4,000
//! # one client alone, e.g. to count instructions per request:
//! valgrind --tool=callgrind target/release/client --only sylvan --requests 2000
//! ```
//!
//! The server is this binary re-executed as a child (`--serve`): hyper on
//! tokio `current_thread`, a keep-alive hello world (13 bytes), pinned to
//! CPU 0 with `taskset`; the clients run in this process, pinned to CPU 1.
//! Each client fetches `GET /` over keep-alive connections at 1 and 64
//! concurrent requests: sylvan with 1 or 64 green threads on one hub
//! sharing a `Client`; ureq and reqwest with 1 or 64 OS threads sharing an
//! agent/client (reqwest's blocking client runs its own tokio thread too);
//! hyper with 1 or 64 tasks on a `current_thread` runtime sharing a
//! `hyper_util` legacy client. After a warm-up of 500 requests, each cell
//! reports requests/s, the client process's CPU time per request
//! (`getrusage(RUSAGE_SELF)`, user + system, every thread), and p50/p99
//! latency of single requests. Rounds are interleaved and the median
//! round is reported; ratios are sylvan's figure over the peer's. Nothing
//! asserts speed.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const BODY: &str = "Hello, World!";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        serve_hyper();
        return ExitCode::SUCCESS;
    }
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    if let Some(name) = arg("--only") {
        // One client alone, for callgrind: `--only sylvan --requests 2000`.
        let n = arg("--requests")
            .and_then(|n| n.parse().ok())
            .unwrap_or(2000);
        let conc = arg("--concurrency")
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        return match run_one(&name, conc, n) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("client bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (rounds, total) = if quick { (1, 4_000) } else { (3, 20_000) };
    match run(rounds, total) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("client bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve_hyper() {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        println!("PORT {}", listener.local_addr().unwrap().port());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .header("Content-Type", "text/plain; charset=utf-8")
                            .body(Full::new(Bytes::from_static(BODY.as_bytes())))
                            .unwrap(),
                    )
                });
                let _ = http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

struct ServerProc {
    child: Child,
    port: u16,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Result<ServerProc, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let taskset = Command::new("sh")
        .args(["-c", "command -v taskset"])
        .output()
        .is_ok_and(|o| o.status.success());
    let mut cmd = if taskset {
        let mut c = Command::new("taskset");
        c.args(["-c", "0"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let mut child = cmd
        .arg("--serve")
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start the server: {e}"))?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let port = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("the server said {line:?}"))?;
    Ok(ServerProc { child, port })
}

/// This process's CPU time, user + system, every thread.
fn cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a rusage into the pointer it is given.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr());
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[derive(Debug, Clone)]
struct Cell {
    rps: f64,
    cpu_us: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `body` (which makes `total` requests and returns their
/// latencies), measuring wall and CPU time around it.
fn measure(
    total: usize,
    body: impl FnOnce() -> Result<Vec<Duration>, String>,
) -> Result<Cell, String> {
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let mut lat = body()?;
    let wall = t0.elapsed();
    let cpu = cpu_time() - cpu0;
    if lat.len() != total {
        return Err(format!("{} of {total} requests done", lat.len()));
    }
    lat.sort_unstable();
    Ok(Cell {
        rps: total as f64 / wall.as_secs_f64(),
        cpu_us: cpu.as_secs_f64() * 1e6 / total as f64,
        p50: lat[total / 2],
        p99: lat[total * 99 / 100],
    })
}

fn check(status: u16, body: &[u8]) -> Result<(), String> {
    if status != 200 || body != BODY.as_bytes() {
        return Err(format!(
            "bad response {status} {:?}",
            String::from_utf8_lossy(body)
        ));
    }
    Ok(())
}

fn sylvan_run(url: &str, conc: usize, total: usize) -> Result<Vec<Duration>, String> {
    let client = sylvan::http::Client::builder()
        .max_idle_per_host(conc.max(1))
        .build();
    let left = std::rc::Rc::new(std::cell::Cell::new(total));
    let handles: Vec<_> = (0..conc)
        .map(|_| {
            let (client, left, url) = (client.clone(), left.clone(), url.to_string());
            sylvan::spawn(move || -> Result<Vec<Duration>, String> {
                let mut lat = Vec::with_capacity(total / conc + 1);
                let mut buf = Vec::with_capacity(64);
                while left.get() > 0 {
                    left.set(left.get() - 1);
                    let t = Instant::now();
                    let mut resp = client.get(&url).send().map_err(|e| e.to_string())?;
                    buf.clear();
                    resp.read_to_end(&mut buf).map_err(|e| e.to_string())?;
                    lat.push(t.elapsed());
                    check(resp.status(), &buf)?;
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total);
    for h in handles {
        all.extend(h.join().map_err(|e| format!("{e:?}"))??);
    }
    Ok(all)
}

/// `conc` OS threads sharing a counter, each running `one` per request.
fn threads_run(
    conc: usize,
    total: usize,
    one: impl Fn() -> Result<(), String> + Send + Sync + 'static,
) -> Result<Vec<Duration>, String> {
    let left = Arc::new(AtomicU64::new(total as u64));
    let one = Arc::new(one);
    let handles: Vec<_> = (0..conc)
        .map(|_| {
            let (left, one) = (left.clone(), one.clone());
            std::thread::spawn(move || -> Result<Vec<Duration>, String> {
                let mut lat = Vec::new();
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let t = Instant::now();
                    one()?;
                    lat.push(t.elapsed());
                }
                Ok(lat)
            })
        })
        .collect();
    let mut all = Vec::with_capacity(total);
    for h in handles {
        all.extend(
            h.join()
                .map_err(|_| "a client thread panicked".to_string())??,
        );
    }
    Ok(all)
}

fn ureq_agent(conc: usize) -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_idle_connections_per_host(conc.max(1))
        .max_idle_connections(conc.max(1) * 2)
        .build()
        .into()
}

fn ureq_run(
    agent: &ureq::Agent,
    url: &str,
    conc: usize,
    total: usize,
) -> Result<Vec<Duration>, String> {
    let (agent, url) = (agent.clone(), url.to_string());
    threads_run(conc, total, move || {
        let mut resp = agent.get(&url).call().map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_vec().map_err(|e| e.to_string())?;
        check(status, &body)
    })
}

fn reqwest_run(
    client: &reqwest::blocking::Client,
    url: &str,
    conc: usize,
    total: usize,
) -> Result<Vec<Duration>, String> {
    let (client, url) = (client.clone(), url.to_string());
    threads_run(conc, total, move || {
        let resp = client.get(&url).send().map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.bytes().map_err(|e| e.to_string())?;
        check(status, &body)
    })
}

type HyperClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Empty<hyper::body::Bytes>,
>;

fn hyper_run(
    rt: &tokio::runtime::Runtime,
    client: &HyperClient,
    url: &str,
    conc: usize,
    total: usize,
) -> Result<Vec<Duration>, String> {
    use http_body_util::BodyExt;
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    rt.block_on(async {
        let left = std::rc::Rc::new(std::cell::Cell::new(total));
        let local = tokio::task::LocalSet::new();
        let mut handles = Vec::new();
        for _ in 0..conc {
            let (client, left, uri) = (client.clone(), left.clone(), uri.clone());
            handles.push(local.spawn_local(async move {
                let mut lat = Vec::new();
                while left.get() > 0 {
                    left.set(left.get() - 1);
                    let t = Instant::now();
                    let resp = client.get(uri.clone()).await.map_err(|e| e.to_string())?;
                    let status = resp.status().as_u16();
                    let body = resp
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string())?
                        .to_bytes();
                    lat.push(t.elapsed());
                    check(status, &body)?;
                }
                Ok::<_, String>(lat)
            }));
        }
        local
            .run_until(async {
                let mut all = Vec::with_capacity(total);
                for h in handles {
                    all.extend(h.await.map_err(|e| e.to_string())??);
                }
                Ok(all)
            })
            .await
    })
}

fn pin_self_to(cpu: usize) {
    if let Some(ids) = core_affinity::get_core_ids()
        && let Some(id) = ids.into_iter().find(|c| c.id == cpu)
    {
        core_affinity::set_for_current(id);
    }
}

const NAMES: [&str; 4] = ["sylvan", "ureq", "reqwest", "hyper"];

/// `n` requests (after a warm-up of 100) by one client, nothing measured.
fn run_one(name: &str, conc: usize, n: usize) -> Result<(), String> {
    let server = start_server()?;
    let url = format!("http://127.0.0.1:{}/", server.port);
    for n in [100, n] {
        let lat = match name {
            "sylvan" => sylvan_run(&url, conc, n)?,
            "ureq" => ureq_run(&ureq_agent(conc), &url, conc, n)?,
            other => return Err(format!("--only sylvan|ureq, not {other}")),
        };
        if lat.len() != n {
            return Err(format!("{} of {n} requests done", lat.len()));
        }
    }
    Ok(())
}

fn run(rounds: usize, total: usize) -> Result<(), String> {
    let server = start_server()?;
    // Threads spawned from here on inherit the pinning.
    pin_self_to(1);
    let url = format!("http://127.0.0.1:{}/", server.port);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    println!(
        "client bench: {total} GET requests per cell, {rounds} round(s), server: hyper on pid {}",
        server.child.id()
    );
    println!("| concurrency | client | requests/s | client CPU/request | p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    let mut summary = Vec::new();
    for conc in [1usize, 64] {
        let ureq = ureq_agent(conc);
        let reqwest = reqwest::blocking::Client::builder()
            .pool_max_idle_per_host(conc)
            .build()
            .map_err(|e| e.to_string())?;
        let hyper: HyperClient = {
            let _guard = rt.enter();
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(conc)
                .build_http()
        };
        let sylvan_cell = |n: usize| measure(n, || sylvan_run(&url, conc, n));
        let cell = |name: &str, n: usize| -> Result<Cell, String> {
            match name {
                "sylvan" => sylvan_cell(n),
                "ureq" => measure(n, || ureq_run(&ureq, &url, conc, n)),
                "reqwest" => measure(n, || reqwest_run(&reqwest, &url, conc, n)),
                _ => measure(n, || hyper_run(&rt, &hyper, &url, conc, n)),
            }
        };
        let mut cells: Vec<Vec<Cell>> = vec![Vec::new(); NAMES.len()];
        for name in NAMES {
            cell(name, 500)?; // warm-up: connections, allocator
        }
        for _ in 0..rounds {
            for (i, name) in NAMES.iter().enumerate() {
                cells[i].push(cell(name, total)?);
            }
        }
        let med = |v: &Vec<Cell>, f: fn(&Cell) -> f64| {
            let mut x: Vec<f64> = v.iter().map(f).collect();
            x.sort_by(f64::total_cmp);
            x[x.len() / 2]
        };
        let mut row = Vec::new();
        for (i, name) in NAMES.iter().enumerate() {
            let c = &cells[i];
            let (rps, cpu) = (med(c, |c| c.rps), med(c, |c| c.cpu_us));
            let p50 = med(c, |c| c.p50.as_secs_f64() * 1e6);
            let p99 = med(c, |c| c.p99.as_secs_f64() * 1e6);
            println!("| {conc} | {name} | {rps:.0} | {cpu:.1} µs | {p50:.0} µs | {p99:.0} µs |");
            row.push((rps, cpu, p50, p99));
        }
        summary.push((conc, row));
    }
    println!();
    println!("sylvan / peer (CPU per request and p99: lower is better; requests/s: higher)");
    println!("| concurrency | peer | requests/s | CPU/request | p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    for (conc, row) in &summary {
        let s = row[0];
        for (i, name) in NAMES.iter().enumerate().skip(1) {
            let p = row[i];
            println!(
                "| {conc} | {name} | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
                s.0 / p.0,
                s.1 / p.1,
                s.2 / p.2,
                s.3 / p.3
            );
        }
    }
    Ok(())
}
