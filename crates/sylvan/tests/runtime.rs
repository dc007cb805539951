//! `Runtime`: N OS threads, one hub each, running one closure; channels
//! between the hubs; panics; what is left running is unwound.

mod util;

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sylvan::Runtime;
use sylvan::sync::{bounded, channel};

#[test]
fn runs_the_closure_once_per_thread_each_with_its_own_hub() {
    let rt = Runtime::builder().threads(4).build().unwrap();
    assert_eq!(rt.threads(), 4);
    let out = rt.run(|| {
        let index = Runtime::current_index().unwrap();
        // Green threads see the index of the thread they run on.
        let seen_in_green = sylvan::spawn(Runtime::current_index).join().unwrap();
        (
            index,
            seen_in_green,
            std::thread::current().name().unwrap().to_owned(),
            sylvan::debug::stats().hub_id,
        )
    });
    let indexes: Vec<usize> = out.iter().map(|o| o.0).collect();
    assert_eq!(indexes, vec![0, 1, 2, 3], "results in thread-index order");
    assert!(out.iter().all(|o| Some(o.0) == o.1));
    let names: Vec<&str> = out.iter().map(|o| o.2.as_str()).collect();
    assert_eq!(names, vec!["sylvan-0", "sylvan-1", "sylvan-2", "sylvan-3"]);
    let hubs: HashSet<u64> = out.iter().map(|o| o.3).collect();
    assert_eq!(hubs.len(), 4, "one hub per thread");
    assert_eq!(Runtime::current_index(), None, "not a runtime thread");
}

#[test]
fn zero_threads_is_a_clear_error() {
    let e = Runtime::builder().threads(0).build().unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("at least one thread"));
}

#[test]
fn hubs_talk_through_channels() {
    // Hub 0 asks, every other hub answers through its own reply channel.
    const N: usize = 4;
    const ROUNDS: u64 = 2_000;
    let (req_tx, req_rx) = bounded::<(u64, sylvan::sync::Sender<u64>)>(16);
    let req_tx = Mutex::new(Some(req_tx));
    let rt = Runtime::builder().threads(N).build().unwrap();
    let answered = rt.run(|| {
        let i = Runtime::current_index().unwrap();
        if i == 0 {
            let tx = req_tx.lock().unwrap().take().unwrap();
            let (reply_tx, reply_rx) = channel();
            // Several green threads of hub 0 ask concurrently.
            let askers: Vec<_> = (0..4)
                .map(|_| {
                    let (tx, reply_tx) = (tx.clone(), reply_tx.clone());
                    sylvan::spawn(move || {
                        for r in 0..ROUNDS / 4 {
                            tx.send((r, reply_tx.clone())).unwrap();
                        }
                    })
                })
                .collect();
            drop((tx, reply_tx));
            for a in askers {
                a.join().unwrap();
            }
            let mut sum = 0;
            while let Ok(v) = reply_rx.recv() {
                sum += v;
            }
            sum
        } else {
            let mut n = 0;
            while let Ok((r, reply)) = req_rx.recv() {
                reply.send(r + 1).unwrap();
                n += 1;
            }
            n
        }
    });
    let per_asker: u64 = (1..=ROUNDS / 4).sum();
    assert_eq!(answered[0], 4 * per_asker);
    assert_eq!(answered[1..].iter().sum::<u64>(), ROUNDS);
}

#[test]
fn the_first_panic_is_resumed_after_every_thread_returned() {
    let finished = AtomicUsize::new(0);
    let rt = Runtime::builder().threads(3).build().unwrap();
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        rt.run(|| {
            if Runtime::current_index() == Some(1) {
                panic!("hub one failed");
            }
            sylvan::sleep(Duration::from_millis(1)).unwrap();
            finished.fetch_add(1, Ordering::SeqCst);
        })
    }));
    let payload = r.unwrap_err();
    assert_eq!(*payload.downcast::<&str>().unwrap(), "hub one failed");
    assert_eq!(
        finished.load(Ordering::SeqCst),
        2,
        "the others ran to the end"
    );
}

#[test]
fn green_threads_left_running_are_unwound_when_run_returns() {
    let drops = util::SyncDropCounter::default();
    let rt = Runtime::builder().threads(2).build().unwrap();
    rt.run(|| {
        for _ in 0..10 {
            let t = drops.track();
            drop(sylvan::spawn(move || {
                let _t = t;
                let _ = sylvan::sleep(Duration::from_secs(3600));
            }));
        }
        sylvan::yield_now();
    });
    assert_eq!(drops.dropped(), 20);
}

#[test]
fn builder_settings_apply() {
    let rt = Runtime::builder()
        .threads(2)
        .thread_name("edge")
        .thread_stack_size(512 * 1024)
        .build()
        .unwrap();
    let names = rt.run(|| std::thread::current().name().unwrap().to_owned());
    assert_eq!(names, vec!["edge-0", "edge-1"]);
    // A runtime can run again: new threads, new hubs.
    assert_eq!(rt.run(|| 1).len(), 2);
}

/// Each hub binds its own `SO_REUSEPORT` listener on one port and accepts
/// its own connections; together they serve every client.
#[test]
fn each_hub_accepts_on_its_own_reuseport_listener() {
    use std::io::{Read, Write};
    use sylvan::net::TcpListener;

    const HUBS: usize = 2;
    const CONNS: usize = 40;
    let (addr_tx, addr_rx) = channel::<std::net::SocketAddr>();
    let (bound_tx, bound_rx) = channel::<()>();
    let (stop_tx, stop_rx) = channel::<()>();
    let client = std::thread::spawn(move || {
        let addr = addr_rx.recv().unwrap();
        for _ in 0..HUBS {
            bound_rx.recv().unwrap();
        }
        for i in 0..CONNS {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(&[i as u8]).unwrap();
            let mut b = [0u8];
            c.read_exact(&mut b).unwrap();
            assert_eq!(b[0], i as u8);
        }
        for _ in 0..HUBS {
            stop_tx.send(()).unwrap();
        }
    });
    // Hub 0 picks the port and tells the others (and the client).
    let (port_tx, port_rx) = channel::<std::net::SocketAddr>();
    let txs = Mutex::new(Some((addr_tx, port_tx)));
    let rt = Runtime::builder().threads(HUBS).build().unwrap();
    let accepted = rt.run(|| {
        let listener = if Runtime::current_index() == Some(0) {
            let l = TcpListener::bind_reuseport("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap();
            let (addr_tx, port_tx) = txs.lock().unwrap().take().unwrap();
            addr_tx.send(addr).unwrap();
            for _ in 1..HUBS {
                port_tx.send(addr).unwrap();
            }
            l
        } else {
            TcpListener::bind_reuseport(port_rx.recv().unwrap()).unwrap()
        };
        bound_tx.send(()).unwrap();
        let count = std::rc::Rc::new(std::cell::Cell::new(0usize));
        let c = count.clone();
        let acceptor = sylvan::spawn(move || {
            loop {
                let Ok((mut conn, _)) = listener.accept() else {
                    return;
                };
                c.set(c.get() + 1);
                sylvan::spawn(move || {
                    let mut b = [0u8];
                    if conn.read_exact(&mut b).is_ok() {
                        let _ = conn.write_all(&b);
                    }
                });
            }
        });
        stop_rx.recv().unwrap();
        acceptor.kill();
        acceptor.join().unwrap();
        count.get()
    });
    client.join().unwrap();
    assert_eq!(accepted.iter().sum::<usize>(), CONNS);
}
