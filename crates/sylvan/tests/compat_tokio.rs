//! `sylvan::compat::tokio`: tokio futures from green threads, on the shared
//! background runtime; real async clients against sylvan servers.
#![cfg(feature = "tokio")]

mod util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use sylvan::Cancelled;
use sylvan::compat::HubHandle;
use sylvan::compat::tokio::{self as ctokio, RunError};
use sylvan::http::{Response, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(30);

fn bounded<R>(f: impl FnOnce() -> R) -> R {
    sylvan::timeout(LIMIT, f).expect("the test took too long")
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One request with hyper's HTTP/1 client over a tokio `TcpStream`.
async fn hyper_request(
    addr: SocketAddr,
    method: &'static str,
    path: String,
    body: &'static str,
) -> Result<(u16, String), BoxError> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::from_static(body.as_bytes())))?;
    let res = sender.send_request(req).await?;
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8(bytes.to_vec())?))
}

/// Sends a message when dropped: tells the test a future was dropped on
/// whatever thread dropped it.
struct Tell(sylvan::sync::Sender<&'static str>, &'static str);

impl Drop for Tell {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

#[test]
fn run_returns_the_output_of_a_tokio_future() {
    bounded(|| {
        let v = ctokio::run(async {
            tokio::time::sleep(Duration::from_millis(2)).await;
            std::thread::current().name().map(str::to_owned)
        });
        assert_eq!(v.unwrap().as_deref(), Some("sylvan-tokio"));
        // From a green thread too, while another keeps running.
        let ticker = sylvan::spawn(|| {
            for _ in 0..5 {
                sylvan::sleep(Duration::from_millis(1)).unwrap();
            }
        });
        let g = sylvan::spawn(|| {
            ctokio::run(async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                7
            })
        });
        assert_eq!(g.join().unwrap().unwrap(), 7);
        ticker.join().unwrap();
    });
}

#[test]
fn kill_while_pending_aborts_the_tokio_task() {
    bounded(|| {
        let (tx, rx) = sylvan::sync::channel();
        let g = sylvan::spawn(move || {
            ctokio::run(async move {
                let _tell = Tell(tx.clone(), "dropped");
                tx.send("started").unwrap();
                tokio::time::sleep(Duration::from_secs(3600)).await;
            })
        });
        assert_eq!(rx.recv(), Ok("started"));
        g.kill();
        let r = g.join().unwrap();
        assert!(
            matches!(r, Err(RunError::Cancelled(Cancelled::Killed))),
            "{r:?}"
        );
        // The task was aborted: tokio dropped the future (bounded wait).
        assert_eq!(rx.recv(), Ok("dropped"));
    });
}

#[test]
fn timeout_while_pending_aborts_the_tokio_task() {
    bounded(|| {
        let (tx, rx) = sylvan::sync::channel();
        let r = sylvan::timeout(Duration::from_millis(20), move || {
            ctokio::run(async move {
                let _tell = Tell(tx, "dropped");
                std::future::pending::<()>().await;
            })
        });
        assert!(r.is_err(), "the scope's deadline fired: {r:?}");
        assert_eq!(rx.recv(), Ok("dropped"));

        // The error inside, seen from an inner scope's point of view.
        let r = sylvan::timeout(Duration::from_millis(5), || {
            let err = ctokio::run(std::future::pending::<()>()).unwrap_err();
            assert!(err.cancelled().unwrap().is_timed_out());
            let io: std::io::Error = err.into();
            assert_eq!(io.kind(), std::io::ErrorKind::TimedOut);
        });
        assert!(r.is_err());
    });
}

#[test]
fn a_paused_clock_does_not_skip_ahead_while_a_task_runs() {
    sylvan::time::pause();
    // Virtual time would jump to the 50 ms deadline at once if nothing held
    // it back; the tokio task (real time, 20 ms) finishes first.
    let r = sylvan::timeout(Duration::from_millis(50), || {
        ctokio::run(async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            5
        })
    });
    assert_eq!(r.unwrap().unwrap(), 5);
    sylvan::time::resume();
}

#[test]
fn panics_come_back_as_errors() {
    bounded(|| {
        let g = sylvan::spawn(|| ctokio::run(async { panic!("tokio boom") }));
        let err = g.join().unwrap().unwrap_err();
        assert!(matches!(err, RunError::Panicked(_)));
        assert_eq!(err.panic_message(), Some("tokio boom"));
        assert_eq!(err.to_string(), "tokio task panicked: tokio boom");
        let io: std::io::Error = err.into();
        assert_eq!(io.kind(), std::io::ErrorKind::Other);
        // The runtime is fine.
        assert_eq!(ctokio::run(async { 1 }).unwrap(), 1);
    });
}

#[test]
fn many_green_threads_on_many_hubs_at_once() {
    let rt = sylvan::Runtime::builder().threads(4).build().unwrap();
    let sums = rt.run(|| {
        bounded(|| {
            let greens: Vec<_> = (0..50u64)
                .map(|i| {
                    sylvan::spawn(move || {
                        ctokio::run(async move {
                            tokio::time::sleep(Duration::from_millis(i % 3)).await;
                            i
                        })
                        .unwrap()
                    })
                })
                .collect();
            greens.into_iter().map(|g| g.join().unwrap()).sum::<u64>()
        })
    });
    assert_eq!(sums, vec![49 * 50 / 2; 4]);
}

#[test]
fn hyper_client_against_sylvan_http_server() {
    bounded(|| {
        let server = Server::bind("127.0.0.1:0").unwrap().serve(|mut req| {
            let mut body = String::new();
            match req.read_to_string(&mut body) {
                Ok(_) => Response::text(format!("{} {} [{body}]", req.method(), req.path())),
                Err(e) => Response::text(e.to_string()).with_status(400),
            }
        });
        let addr = server.local_addr();
        // Green threads, each making requests with hyper on the shared
        // runtime, while this hub serves them.
        let clients: Vec<_> = (0..10)
            .map(|i| {
                sylvan::spawn(move || {
                    (0..5)
                        .map(|j| {
                            let path = format!("/c{i}/r{j}");
                            ctokio::run(hyper_request(addr, "POST", path, "payload"))
                                .unwrap()
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for (i, c) in clients.into_iter().enumerate() {
            for (j, (status, body)) in c.join().unwrap().into_iter().enumerate() {
                assert_eq!(status, 200);
                assert_eq!(body, format!("POST /c{i}/r{j} [payload]"));
            }
        }
        let report = server.stop(Duration::from_secs(5));
        assert_eq!(report.killed, 0);
    });
}

#[test]
fn green_gateway_handler_calls_hyper_against_an_upstream() {
    bounded(|| {
        let upstream = Server::bind("127.0.0.1:0")
            .unwrap()
            .serve(|req| Response::text(format!("upstream saw {}", req.path())));
        let up = upstream.local_addr();
        // The worked example: a green server whose handler is blocking code
        // calling an async client under a deadline.
        let gateway = Server::bind("127.0.0.1:0").unwrap().serve(move |req| {
            let path = req.path().to_owned();
            let r = sylvan::timeout(Duration::from_secs(5), || {
                ctokio::run(hyper_request(up, "GET", path, ""))
            });
            match r {
                Ok(Ok(Ok((200, body)))) => Response::text(format!("gateway: {body}")),
                _ => Response::status_page(502),
            }
        });
        let mut c = sylvan::connect(gateway.local_addr()).unwrap();
        c.write_all(b"GET /abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert!(out.ends_with("gateway: upstream saw /abc"), "{out}");
        gateway.stop(Duration::from_secs(5));
        upstream.stop(Duration::from_secs(5));
    });
}

#[test]
fn tokio_tcp_stream_against_a_sylvan_echo_server() {
    bounded(|| {
        let listener = sylvan::listen("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = sylvan::spawn(move || -> std::io::Result<()> {
            loop {
                let (conn, _) = listener.accept()?;
                sylvan::spawn(move || {
                    let (mut r, mut w) = (&conn, &conn);
                    let _ = std::io::copy(&mut r, &mut w);
                });
            }
        });
        let clients: Vec<_> = (0..20u32)
            .map(|i| {
                sylvan::spawn(move || {
                    ctokio::run(async move {
                        let mut s = tokio::net::TcpStream::connect(addr).await?;
                        let msg = format!("hello {i}").repeat(1000);
                        s.write_all(msg.as_bytes()).await?;
                        s.shutdown().await?;
                        let mut back = String::new();
                        s.read_to_string(&mut back).await?;
                        std::io::Result::Ok(back == msg)
                    })
                })
            })
            .collect();
        for c in clients {
            assert!(c.join().unwrap().unwrap().unwrap());
        }
        server.kill();
    });
}

/// tokio task → green closure → tokio task → green closure, `depth` times.
fn chain(hub: HubHandle, depth: u32) -> u32 {
    if depth == 0 {
        sylvan::sleep(Duration::from_millis(1)).unwrap();
        return 0;
    }
    ctokio::run(async move {
        let h = hub.clone();
        hub.spawn(move || chain(h, depth - 1) + 1).await.unwrap() + 1
    })
    .unwrap()
}

#[test]
fn no_deadlock_when_a_tokio_task_waits_on_a_green_thread() {
    bounded(|| {
        let hub = HubHandle::current();
        // From the root, and from many green threads at once.
        assert_eq!(chain(hub.clone(), 3), 6);
        let greens: Vec<_> = (0..50)
            .map(|_| {
                let hub = hub.clone();
                sylvan::spawn(move || chain(hub, 3))
            })
            .collect();
        for g in greens {
            assert_eq!(g.join().unwrap(), 6);
        }
    });
}

#[test]
fn no_deadlock_with_a_single_tokio_worker() {
    const NAME: &str = "no_deadlock_with_a_single_tokio_worker";
    if !util::is_child() {
        let out = util::run_child(NAME, &[("SYLVAN_TOKIO_THREADS", "1")]);
        assert!(
            out.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    assert_eq!(ctokio::handle().metrics().num_workers(), 1);
    bounded(|| {
        let hub = HubHandle::current();
        let greens: Vec<_> = (0..20)
            .map(|_| {
                let hub = hub.clone();
                sylvan::spawn(move || chain(hub, 4))
            })
            .collect();
        for g in greens {
            assert_eq!(g.join().unwrap(), 8);
        }
    });
}

#[test]
fn tokio_tasks_hand_work_to_green_threads_on_background_hubs() {
    let rt = sylvan::Runtime::builder().threads(2).build().unwrap();
    let hubs = sylvan::compat::start_hubs(&rt).unwrap();
    let server_hub = hubs[0].clone();
    // A green echo server on hub 0, started from async code.
    let handle = ctokio::handle();
    let addr = handle
        .block_on(server_hub.spawn(|| {
            let listener = sylvan::listen("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            sylvan::spawn(move || {
                while let Ok((conn, _)) = listener.accept() {
                    sylvan::spawn(move || {
                        let (mut r, mut w) = (&conn, &conn);
                        let _ = std::io::copy(&mut r, &mut w);
                    });
                }
            });
            addr
        }))
        .unwrap();
    // tokio tasks on the shared runtime, each handing a blocking-style
    // exchange to hub 1.
    let tasks: Vec<_> = (0..20u32)
        .map(|i| {
            let hub = hubs[1].clone();
            handle.spawn(async move {
                hub.spawn(move || -> std::io::Result<String> {
                    sylvan::timeout(LIMIT, || {
                        let mut c = sylvan::connect(addr)?;
                        c.write_all(format!("ping {i}").as_bytes())?;
                        c.shutdown(std::net::Shutdown::Write)?;
                        let mut back = String::new();
                        c.read_to_string(&mut back)?;
                        Ok(back)
                    })?
                })
                .await
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let back = handle
            .block_on(async { tokio::time::timeout(LIMIT, t).await })
            .expect("the test took too long")
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(back, format!("ping {i}"));
    }
}

#[test]
fn set_worker_threads_fails_once_the_runtime_runs() {
    let _ = ctokio::handle();
    let err = ctokio::set_worker_threads(3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the shared tokio runtime has already started"
    );
}
