//! Every "tell me when the state changes" API — `Reconnecting::watch`,
//! `Session::watch`, `zk::Client::states`, `zk::Discovery::watch` — hands
//! out a subscription whose cost goes with it: subscribing and dropping
//! many leaves nothing allocated behind.
//!
//! Memory is measured with a counting allocator (bytes live on this
//! thread), so the tests don't depend on the subscription's type.

mod util;

use std::io;
use std::time::Duration;

use sylvan::resilience::{Reconnecting, Session};

#[global_allocator]
static ALLOC: util::Counting = util::Counting;

/// Subscriptions made and dropped per test.
const N: usize = 10_000;
/// What N dropped subscriptions may leave behind: far below one byte each
/// (a queue per subscriber is ~100 bytes).
const SLACK: isize = 4096;

#[test]
fn dropped_reconnecting_watchers_leave_nothing_behind() {
    sylvan::time::pause();
    let r = Reconnecting::builder(|| Ok::<_, io::Error>(())).build();
    r.call(|_| Ok(())).unwrap();
    let grown = util::growth_over(N, || drop(r.watch()));
    assert!(grown < SLACK, "{N} dropped watchers left {grown} bytes");
    r.shutdown();
}

#[test]
fn dropped_session_watchers_leave_nothing_behind() {
    sylvan::time::pause();
    let r = Reconnecting::builder(|| Ok::<_, io::Error>(())).build();
    let session = Session::builder(Duration::from_secs(10)).start(r.watch());
    r.call(|_| Ok(())).unwrap();
    let grown = util::growth_over(N, || drop(session.watch()));
    assert!(grown < SLACK, "{N} dropped watchers left {grown} bytes");
    r.shutdown();
}

#[cfg(feature = "zookeeper")]
mod zk {
    use std::io::{Read, Write};
    use std::rc::Rc;
    use std::time::Duration;

    use sylvan::net::{TcpListener, TcpStream};
    use sylvan::zk::{Client, discover};

    use super::{N, SLACK, util};

    fn read_frame(s: &TcpStream) -> std::io::Result<Vec<u8>> {
        let mut len = [0; 4];
        (&*s).read_exact(&mut len)?;
        let mut buf = vec![0; i32::from_be_bytes(len) as usize];
        (&*s).read_exact(&mut buf)?;
        Ok(buf)
    }

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        f
    }

    fn reply(xid: i32, err: i32, body: &[u8]) -> Vec<u8> {
        let mut b = xid.to_be_bytes().to_vec();
        b.extend_from_slice(&1i64.to_be_bytes());
        b.extend_from_slice(&err.to_be_bytes());
        b.extend_from_slice(body);
        frame(&b)
    }

    /// A fake ZooKeeper: a session, pings, and an empty child list for
    /// every getChildren (anything else: "no node").
    fn fake_zk() -> (String, sylvan::GreenThread<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let t = sylvan::spawn(move || {
            while let Ok((s, _)) = l.accept() {
                sylvan::spawn(move || {
                    if read_frame(&s).is_err() {
                        return;
                    }
                    let mut resp = Vec::new();
                    resp.extend_from_slice(&0i32.to_be_bytes());
                    resp.extend_from_slice(&10_000i32.to_be_bytes());
                    resp.extend_from_slice(&0x5e55i64.to_be_bytes());
                    resp.extend_from_slice(&16i32.to_be_bytes());
                    resp.extend_from_slice(&[7; 16]);
                    resp.push(0);
                    if (&s).write_all(&frame(&resp)).is_err() {
                        return;
                    }
                    while let Ok(req) = read_frame(&s) {
                        let xid = i32::from_be_bytes(req[0..4].try_into().unwrap());
                        let op = i32::from_be_bytes(req[4..8].try_into().unwrap());
                        let out = match op {
                            11 => reply(-2, 0, &[]),
                            8 => reply(xid, 0, &0i32.to_be_bytes()),
                            _ => reply(xid, -101, &[]),
                        };
                        if (&s).write_all(&out).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, t)
    }

    fn client(addr: &str) -> Client {
        Client::builder(addr)
            .session_timeout(Duration::from_secs(10))
            .connect()
            .unwrap()
    }

    #[test]
    fn dropped_zk_state_watchers_leave_nothing_behind() {
        let (addr, srv) = fake_zk();
        let zk = Rc::new(client(&addr));
        let grown = util::growth_over(N, || drop(zk.states()));
        assert!(grown < SLACK, "{N} dropped watchers left {grown} bytes");
        srv.kill();
    }

    #[test]
    fn dropped_discovery_watchers_leave_nothing_behind() {
        let (addr, srv) = fake_zk();
        let zk = client(&addr);
        let d = discover(&zk, "/services/x").unwrap();
        let grown = util::growth_over(N, || drop(d.watch()));
        assert!(grown < SLACK, "{N} dropped watchers left {grown} bytes");
        srv.kill();
    }
}
