//! Green TCP: echo, std semantics, conversions, many streams on one hub.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;

use sylvan::net::{TcpListener, TcpStream};

fn echo_server(listener: TcpListener) -> sylvan::GreenThread<()> {
    sylvan::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            drop(sylvan::spawn(move || {
                let mut buf = [0; 4096];
                loop {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if conn.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            }));
        }
    })
}

#[test]
fn echo_round_trip_from_many_green_clients() {
    let listener = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = echo_server(listener);
    let clients: Vec<_> = (0..50)
        .map(|i| {
            sylvan::spawn(move || -> std::io::Result<()> {
                let mut s = sylvan::connect(addr)?;
                for round in 0..10 {
                    let msg = format!("client {i} round {round}");
                    s.write_all(msg.as_bytes())?;
                    let mut back = vec![0; msg.len()];
                    s.read_exact(&mut back)?;
                    assert_eq!(back, msg.as_bytes());
                }
                Ok(())
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap().unwrap();
    }
    server.kill();
    let _ = server.join();
}

#[test]
fn large_transfer_both_ways_at_once() {
    let listener = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = echo_server(listener);
    let s = sylvan::connect(addr).unwrap();
    let data: Vec<u8> = (0..8 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let expect = data.clone();
    let writer = {
        let s = s.try_clone().unwrap();
        sylvan::spawn(move || {
            (&s).write_all(&data)?;
            s.shutdown(Shutdown::Write)
        })
    };
    let mut got = Vec::new();
    (&s).read_to_end(&mut got).unwrap();
    writer.join().unwrap().unwrap();
    assert!(got == expect, "echoed bytes differ");
    server.kill();
}

#[test]
fn read_and_write_from_two_green_threads_through_shared_reference() {
    let listener = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = echo_server(listener);
    let s = std::rc::Rc::new(sylvan::connect(addr).unwrap());
    let reader = {
        let s = s.clone();
        sylvan::spawn(move || {
            let mut buf = [0; 3];
            (&*s).read_exact(&mut buf).map(|()| buf)
        })
    };
    sylvan::yield_now();
    (&*s).write_all(b"abc").unwrap();
    assert_eq!(&reader.join().unwrap().unwrap(), b"abc");
    server.kill();
}

#[test]
fn connection_refused_is_a_clear_error() {
    // Bind then drop to find a port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = sylvan::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn bind_in_use_names_the_address() {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = a.local_addr().unwrap();
    let err = sylvan::net::ListenOptions::new()
        .reuse_addr(false)
        .bind(addr)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

#[test]
fn bad_addresses_are_clear_errors() {
    for bad in ["no-port-here", "host:notaport", ":80"] {
        let err = sylvan::connect(bad).unwrap_err();
        assert!(
            err.kind() == std::io::ErrorKind::InvalidInput || err.to_string().contains("resolve"),
            "{bad}: {err}"
        );
    }
    let err = sylvan::connect("name.invalid:80").unwrap_err();
    assert!(err.to_string().contains("name.invalid"), "{err}");
}

#[test]
fn std_conversions_round_trip() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let l = TcpListener::from_std(l).unwrap();
    let c = TcpStream::from_std(std::net::TcpStream::connect(addr).unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    let mut std_s = s.into_std().unwrap();
    // The std stream is blocking again and works on a plain thread.
    let t = std::thread::spawn(move || {
        let mut b = [0; 2];
        std_s.read_exact(&mut b).map(|()| b)
    });
    (&c).write_all(b"ok").unwrap();
    assert_eq!(&t.join().unwrap().unwrap(), b"ok");
    assert!(l.into_std().is_ok());
}

#[test]
fn sockets_unregister_when_dropped() {
    let before = sylvan::debug::stats().io_sources;
    {
        let l = sylvan::listen("127.0.0.1:0").unwrap();
        let _c = sylvan::connect(l.local_addr().unwrap()).unwrap();
        let _s = l.accept().unwrap();
        assert_eq!(sylvan::debug::stats().io_sources, before + 3);
    }
    assert_eq!(sylvan::debug::stats().io_sources, before);
}

#[test]
fn udp_and_unix_sockets() {
    let a = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = sylvan::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let b_addr = b.local_addr().unwrap();
    let receiver = sylvan::spawn(move || {
        let mut buf = [0; 32];
        b.recv_from(&mut buf)
            .map(|(n, from)| (buf[..n].to_vec(), from))
    });
    sylvan::yield_now();
    a.send_to(b"datagram", b_addr).unwrap();
    let (data, from) = receiver.join().unwrap().unwrap();
    assert_eq!(
        (data.as_slice(), from),
        (&b"datagram"[..], a.local_addr().unwrap())
    );

    let (x, y) = sylvan::net::UnixStream::pair().unwrap();
    let reader = sylvan::spawn(move || {
        let mut s = String::new();
        (&y).read_to_string(&mut s).map(|_| s)
    });
    (&x).write_all(b"over unix").unwrap();
    drop(x);
    assert_eq!(reader.join().unwrap().unwrap(), "over unix");
}

#[test]
fn wait_readable_on_a_foreign_descriptor() {
    let (a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let waiter = sylvan::spawn(move || sylvan::net::wait_readable(&a).map(|()| a));
    sylvan::yield_now();
    assert!(!waiter.is_finished());
    b.write_all(b"x").unwrap();
    let mut a = waiter.join().unwrap().unwrap();
    let mut buf = [0; 1];
    assert_eq!(a.read(&mut buf).unwrap(), 1);

    // A sylvan socket can't be waited on this way: clear error.
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let err = sylvan::net::wait_readable(&l).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
}

#[test]
fn kill_interrupts_accept_read_and_wait_readable() {
    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let acceptor = sylvan::spawn(move || l.accept());
    let c = sylvan::connect(addr).unwrap();
    let _server_side = acceptor.join().unwrap().unwrap(); // kept open: the read really waits
    let reader = sylvan::spawn(move || {
        let mut buf = [0; 1];
        (&c).read(&mut buf)
    });
    let (p, _q) = std::os::unix::net::UnixStream::pair().unwrap();
    p.set_nonblocking(true).unwrap();
    let waiter = sylvan::spawn(move || sylvan::net::wait_readable(&p));
    let l2 = sylvan::listen("127.0.0.1:0").unwrap();
    let acceptor = sylvan::spawn(move || l2.accept().map(|_| ()));
    sylvan::yield_now();
    for (name, killed) in [
        ("read", {
            reader.kill();
            reader.join().unwrap().map(|_| ())
        }),
        ("wait_readable", {
            waiter.kill();
            waiter.join().unwrap()
        }),
        ("accept", {
            acceptor.kill();
            acceptor.join().unwrap()
        }),
    ] {
        let err = killed.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::Other, "{name}");
        assert_eq!(
            sylvan::Cancelled::from_io(&err),
            Some(sylvan::Cancelled::Killed),
            "{name}"
        );
    }
}

#[test]
fn vectored_reads_and_writes_keep_every_slice_in_order() {
    use std::io::{IoSlice, IoSliceMut};

    fn check(w: &mut dyn Write, r: &mut dyn Read) {
        let sent = w
            .write_vectored(&[
                IoSlice::new(b"one "),
                IoSlice::new(b""),
                IoSlice::new(b"two "),
                IoSlice::new(b"three"),
            ])
            .unwrap();
        assert_eq!(sent, 13, "a small gathered write goes out whole");
        let (mut a, mut b) = ([0; 6], [0; 16]);
        let mut got = 0;
        let mut bytes = Vec::new();
        while got < 13 {
            let n = r
                .read_vectored(&mut [IoSliceMut::new(&mut a), IoSliceMut::new(&mut b)])
                .unwrap();
            assert!(n > 0, "end of stream before all 13 bytes");
            let all: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
            bytes.extend_from_slice(&all[..n]);
            got += n;
        }
        assert_eq!(bytes, b"one two three");
    }

    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let mut c = sylvan::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    check(&mut c, &mut s);
    check(&mut s, &mut c);
    drop(c);
    let mut a = [0; 4];
    assert_eq!(
        s.read_vectored(&mut [IoSliceMut::new(&mut a)]).unwrap(),
        0,
        "end of stream reads 0"
    );

    let (mut x, mut y) = sylvan::net::UnixStream::pair().unwrap();
    check(&mut x, &mut y);
    check(&mut y, &mut x);
}

/// Writes to a connection whose peer has gone fail with an error and raise
/// no `SIGPIPE`, whatever the process's disposition of it (a program that
/// embeds sylvan need not ignore it as Rust's `main` does). The test
/// listens for `SIGPIPE`, which replaces the ignored disposition with a
/// handler that counts deliveries, so a write that raised it would be seen.
#[test]
fn writes_to_a_closed_peer_are_errors_and_raise_no_sigpipe() {
    use std::io::{ErrorKind, IoSlice};
    use sylvan::signal::{SIGALRM, SIGPIPE, Signals};

    let signals = Signals::new(&[SIGPIPE, SIGALRM]).unwrap();

    // Writes until one fails: the first after the peer closed may be
    // buffered, and the peer's reset turns the next ones into errors.
    fn first_error(mut write: impl FnMut() -> std::io::Result<usize>) -> std::io::Error {
        for _ in 0..100_000 {
            if let Err(e) = write() {
                return e;
            }
        }
        panic!("100,000 writes to a closed peer all succeeded");
    }
    let gone = [ErrorKind::BrokenPipe, ErrorKind::ConnectionReset];

    for vectored in [false, true] {
        let l = sylvan::listen("127.0.0.1:0").unwrap();
        let mut c = sylvan::connect(l.local_addr().unwrap()).unwrap();
        drop(l.accept().unwrap());
        assert_eq!(c.read(&mut [0; 1]).unwrap(), 0, "the peer's FIN");
        let e = first_error(|| {
            if vectored {
                c.write_vectored(&[IoSlice::new(b"x"), IoSlice::new(b"y")])
            } else {
                c.write(b"x")
            }
        });
        assert!(gone.contains(&e.kind()), "TCP, vectored {vectored}: {e}");
        // Once reset, every further write is EPIPE, the error that comes
        // with SIGPIPE unless the write asks for none.
        let e = c.write(b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe, "TCP: {e}");
        let e = c.write_vectored(&[IoSlice::new(b"x")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe, "TCP: {e}");
    }

    for vectored in [false, true] {
        let (mut x, y) = sylvan::net::UnixStream::pair().unwrap();
        drop(y);
        let e = first_error(|| {
            if vectored {
                x.write_vectored(&[IoSlice::new(b"x")])
            } else {
                x.write(b"x")
            }
        });
        assert_eq!(
            e.kind(),
            ErrorKind::BrokenPipe,
            "Unix, vectored {vectored}: {e}"
        );
    }

    // A SIGPIPE is raised on the writing thread before its write returns;
    // the SIGALRM sent after all of them arrives later, and is delivered
    // no earlier (sylvan hands signals to listeners in order of number
    // within one reading of its pipe, 13 before 14). So the first signal
    // received is SIGALRM exactly when no write raised SIGPIPE.
    // The shell's own `kill`: no package needed beyond `sh`.
    let status = sylvan::process::Command::new("sh")
        .args(["-c", &format!("kill -ALRM {}", std::process::id())])
        .status()
        .unwrap();
    assert!(status.success());
    let first = sylvan::timeout(std::time::Duration::from_secs(30), || signals.recv());
    assert_eq!(first, Ok(Ok(SIGALRM)), "a write raised SIGPIPE");
    assert_eq!(signals.try_recv(), None);
}

/// The kernel takes at most 1024 slices per vectored call (`UIO_MAXIOV`)
/// and fails with `EINVAL` beyond; a call with more passes the first 1024
/// and leaves the rest to the next, as std does.
#[test]
fn vectored_calls_with_more_slices_than_the_kernel_takes_move_part() {
    use std::io::{IoSlice, IoSliceMut};

    let data: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let slices: Vec<IoSlice<'_>> = data.chunks(1).map(IoSlice::new).collect();
    let check = |w: &mut dyn Write, r: &mut dyn Read| {
        let n = w.write_vectored(&slices).unwrap();
        assert!(
            n > 0 && n <= 1024,
            "one call moves at most 1024 slices: {n}"
        );
        w.write_all(&data[n..]).unwrap();
        let mut back = vec![0u8; data.len()];
        let mut got = 0;
        while got < back.len() {
            let mut outs: Vec<IoSliceMut<'_>> =
                back[got..].chunks_mut(1).map(IoSliceMut::new).collect();
            let n = r.read_vectored(&mut outs).unwrap();
            assert!(n > 0 && n <= 1024, "a read takes at most 1024 slices: {n}");
            got += n;
        }
        assert_eq!(back, data);
    };

    let l = sylvan::listen("127.0.0.1:0").unwrap();
    let mut c = sylvan::connect(l.local_addr().unwrap()).unwrap();
    let (mut s, _) = l.accept().unwrap();
    check(&mut c, &mut s);
    let (mut x, mut y) = sylvan::net::UnixStream::pair().unwrap();
    check(&mut x, &mut y);
    let (mut pr, mut pw) = sylvan::io::pipe().unwrap();
    check(&mut pw, &mut pr);
}

/// Every green thread parked reading one stream wakes at its end, not only
/// the first to park (the others would wait out the time limit).
#[test]
fn every_reader_parked_on_one_stream_wakes_at_its_end() {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    let (x, y) = sylvan::net::UnixStream::pair().unwrap();
    let x = Rc::new(x);
    let started = Rc::new(Cell::new(0));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (x, started) = (x.clone(), started.clone());
            sylvan::spawn(move || {
                started.set(started.get() + 1);
                sylvan::timeout(Duration::from_secs(30), || (&*x).read(&mut [0; 8]))
            })
        })
        .collect();
    // A reader runs until it parks, so once all three have started, all
    // three are parked on the stream.
    while started.get() < 3 {
        sylvan::yield_now();
    }
    drop(y);
    for r in readers {
        let n = r.join().unwrap();
        assert!(matches!(n, Ok(Ok(0))), "every reader sees the end: {n:?}");
    }
}
