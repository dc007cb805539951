//! Connection tests that need the engine's insides: an in-memory
//! transport whose writes park, and counts of head parses.

use std::collections::VecDeque;

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::super::parse;
use super::super::request::Request;
use super::super::response::Response;
use super::super::upgrade::UpgradedIo;
use super::{Config, Shared, Transport, serve};
use crate::sync::{Event, Queue};

/// Reads return `input` in turn, then (once) wait for `more` to bring
/// more bytes, then end of stream; the first write parks until `gate`
/// is set, as a write to a full socket would.
struct GatedIo {
    input: RefCell<VecDeque<Vec<u8>>>,
    more: RefCell<Option<Rc<Event<Vec<u8>>>>>,
    output: Rc<RefCell<Vec<u8>>>,
    gate: Rc<Event<()>>,
    wrote: Cell<bool>,
}

impl GatedIo {
    fn new(input: &[&[u8]], output: &Rc<RefCell<Vec<u8>>>, gate: &Rc<Event<()>>) -> GatedIo {
        GatedIo {
            input: RefCell::new(input.iter().map(|c| c.to_vec()).collect()),
            more: RefCell::new(None),
            output: output.clone(),
            gate: gate.clone(),
            wrote: Cell::new(false),
        }
    }
}

impl Transport for GatedIo {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.borrow().is_empty() {
            let more = self.more.borrow_mut().take();
            if let Some(more) = more {
                let bytes = more.wait()?;
                self.input.borrow_mut().push_back(bytes);
            }
        }
        let Some(mut chunk) = self.input.borrow_mut().pop_front() else {
            return Ok(0);
        };
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        if n < chunk.len() {
            chunk.drain(..n);
            self.input.borrow_mut().push_front(chunk);
        }
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        if !self.wrote.replace(true) {
            self.gate.wait()?;
        }
        self.output.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn set_read_timeout(&self, _: Option<Duration>) {}

    fn shutdown(&self, _: Shutdown) {}

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn into_upgraded(self) -> Option<UpgradedIo> {
        None
    }
}

/// A response body fed by a queue (an empty chunk ends it); its second
/// read opens `gate`.
struct QueueReader {
    q: Queue<Vec<u8>>,
    pending: Vec<u8>,
    calls: usize,
    gate: Rc<Event<()>>,
}

impl Read for QueueReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls == 2 {
            let _ = self.gate.send(());
        }
        if self.pending.is_empty() {
            self.pending = self.q.get()?;
            if self.pending.is_empty() {
                return Ok(0);
            }
        }
        let n = self.pending.len().min(buf.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

/// Decodes a chunked body that follows a response head.
fn dechunk(out: &[u8]) -> Vec<u8> {
    let at = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let mut rest = &out[at..];
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        rest = &rest[eol + 2..];
        if size == 0 {
            assert_eq!(rest, b"\r\n");
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        assert_eq!(&rest[size..size + 2], b"\r\n");
        rest = &rest[size + 2..];
    }
}

/// Issue item 8: the handler reads the body in a second green thread,
/// which flushes pending response bytes before it blocks to read; that
/// write parks (full socket) while the connection's green thread keeps
/// streaming the response — and then has to flush too. Every byte goes
/// out once, in order, and the body is read whole.
#[test]
fn body_read_in_another_green_thread_while_the_response_is_flushed() {
    let gate = Rc::new(Event::new());
    let output = Rc::new(RefCell::new(Vec::new()));
    let io = GatedIo::new(
        &[
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234",
            b"56789",
        ],
        &output,
        &gate,
    );
    let filler = vec![b'f'; 70 * 1024];
    let read_result = Rc::new(RefCell::new(None));
    let result = read_result.clone();
    let handler = move |req: Request| {
        let q = Queue::unbounded();
        let feed = q.clone();
        let filler = filler.clone();
        let result = result.clone();
        let mut body = req.into_body();
        crate::spawn(move || {
            let mut seen = Vec::new();
            let r = loop {
                let mut buf = [0u8; 64];
                match body.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        seen.extend_from_slice(&buf[..n]);
                        feed.put(buf[..n].to_vec()).unwrap();
                        if seen.len() == n {
                            feed.put(filler.clone()).unwrap();
                        }
                    }
                    Err(e) => break Err(e.to_string()),
                }
            };
            *result.borrow_mut() = Some(r.map(|()| seen));
            feed.put(Vec::new()).unwrap();
        });
        Response::from_reader(QueueReader {
            q,
            pending: Vec::new(),
            calls: 0,
            gate: gate.clone(),
        })
    };
    let sh = Rc::new(Shared::new(io, Rc::new(Config::default())));
    serve(sh, &handler, SocketAddr::from(([192, 0, 2, 1], 1)), None);
    assert_eq!(
        read_result.take(),
        Some(Ok(b"0123456789".to_vec())),
        "the second green thread read the whole body"
    );
    let out = output.borrow();
    assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let mut want = b"01234".to_vec();
    want.extend_from_slice(&[b'f'; 70 * 1024]);
    want.extend_from_slice(b"56789");
    assert!(dechunk(&out) == want, "response body out of order");
}

/// Issue item 8: a body read still parked in another green thread
/// when the response has been written. The connection does not drain
/// the body behind the reader's back (it closes instead), and the
/// reader's read completes.
#[test]
fn a_body_read_parked_past_the_response_closes_the_connection() {
    let gate = Rc::new(Event::new());
    gate.send(()).unwrap(); // writes never park here
    let more = Rc::new(Event::new());
    let output = Rc::new(RefCell::new(Vec::new()));
    let io = GatedIo::new(
        &[b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n"],
        &output,
        &gate,
    );
    *io.more.borrow_mut() = Some(more.clone());
    let reader = Rc::new(RefCell::new(None));
    let r = reader.clone();
    let handler = move |req: Request| {
        let mut body = req.into_body();
        let started = Rc::new(Event::new());
        let s = started.clone();
        *r.borrow_mut() = Some(crate::spawn(move || {
            s.send(()).unwrap();
            let mut text = String::new();
            body.read_to_string(&mut text).map(|_| text)
        }));
        started.wait().unwrap(); // the reader runs until its read parks
        Response::text("ok")
    };
    let sh = Rc::new(Shared::new(io, Rc::new(Config::default())));
    serve(sh, &handler, SocketAddr::from(([192, 0, 2, 1], 1)), None);
    let out = String::from_utf8(output.borrow().clone()).unwrap();
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nok"), "{out}");
    more.send(b"abc".to_vec()).unwrap();
    let read = reader.take().unwrap().join().unwrap();
    assert_eq!(read.unwrap(), "abc");
}

/// Serves `chunks` as successive reads (see `serve_chunks`) and
/// returns the transcript and how many times a head was parsed.
fn parses(chunks: &[&[u8]]) -> (String, usize) {
    parse::PARSE_CALLS.with(|c| c.set(0));
    let t = crate::http::__private::serve_chunks(chunks);
    (t, parse::PARSE_CALLS.with(Cell::get))
}

/// Issue item 12: a head arriving a byte at a time is parsed when its
/// request line is complete (to refuse a bad one early) and when its
/// end has arrived — not once per line.
#[test]
fn a_head_is_parsed_at_most_twice_however_it_is_split() {
    let mut head = b"GET /a HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..12 {
        head.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let (t, n) = parses(&head.chunks(1).collect::<Vec<_>>());
    assert!(t.contains("HTTP/1.1 200 OK\r\n"), "{t}");
    assert!(n <= 2, "{n} parses of one head");
}

/// Issue item 12: empty lines before a request line are ignored, a
/// few of them (RFC 9112 §2.2); a client that keeps sending them gets
/// a 400 without any parse of its growing buffer.
#[test]
fn leading_empty_lines_are_bounded() {
    let few: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r",
        b"\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ];
    let (t, n) = parses(few);
    assert!(t.contains("HTTP/1.1 200 OK\r\n"), "{t}");
    assert!(n <= 2, "{n}");

    let (t, n) = parses(&[b"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"]);
    assert!(t.contains("HTTP/1.1 400 Bad Request\r\n"), "{t}");
    assert!(t.contains("empty lines"), "{t}");
    assert_eq!(n, 0);

    let flood = vec![&b"\r\n"[..]; 65_536];
    let (t, n) = parses(&flood);
    assert!(t.contains("HTTP/1.1 400 Bad Request\r\n"), "{t}");
    assert_eq!(n, 0, "parsed a buffer of empty lines");
}

/// Yields until `cond` holds; a hang guard, not a timing assumption:
/// each yield lets the hub poll the loopback socket.
fn yield_until(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..1_000_000 {
        if cond() {
            return;
        }
        crate::yield_now();
    }
    panic!("never happened: {what}");
}

/// Reads one `Hello`-sized response (`Content-Length` framed) from `c`.
fn read_response(c: &mut crate::net::TcpStream, pending: &mut Vec<u8>) -> String {
    loop {
        if let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(pending[..at].to_vec()).unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .expect("a Content-Length")
                .parse()
                .unwrap();
            if pending.len() >= at + 4 + len {
                let body = String::from_utf8(pending[at + 4..at + 4 + len].to_vec()).unwrap();
                pending.drain(..at + 4 + len);
                assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
                return body;
            }
        }
        let mut buf = [0u8; 1024];
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "connection closed early");
        pending.extend_from_slice(&buf[..n]);
    }
}

/// Issue 17: a keep-alive connection waiting for its next request holds
/// no read or write buffer, and takes them again when bytes come: for a
/// plain request, for two pipelined in one write, and for one whose head
/// arrives in two pieces (the buffer is kept while part of a head is
/// unread).
#[test]
fn an_idle_connection_holds_no_buffers_and_serves_what_follows() {
    use std::io::Write;
    let l = crate::listen("127.0.0.1:0").unwrap();
    let mut c = crate::connect(l.local_addr().unwrap()).unwrap();
    let (s, peer) = l.accept().unwrap();
    let sh = Rc::new(Shared::new(s, Rc::new(Config::default())));
    let server = {
        let sh = sh.clone();
        crate::spawn(move || {
            let handler = |req: Request| Response::text(req.path().to_owned());
            serve(sh, &handler, peer, None)
        })
    };
    let idle =
        || !sh.rbuf.borrow().has_storage() && sh.wbuf.borrow().capacity() == 0 && sh.reading.get();
    let mut pending = Vec::new();

    c.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, &mut pending), "/one");
    yield_until("buffers released after /one", idle);

    c.write_all(b"GET /two HTTP/1.1\r\nHost: x\r\n\r\nGET /three HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, &mut pending), "/two");
    assert_eq!(read_response(&mut c, &mut pending), "/three");
    yield_until("buffers released after the pipelined pair", idle);

    c.write_all(b"GET /fo").unwrap();
    // The part of a head read so far stays buffered (its storage lent to
    // the read that waits for the rest).
    yield_until("the first piece read", || sh.rbuf.borrow().unread() == 7);
    c.write_all(b"ur HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(read_response(&mut c, &mut pending), "/four");
    yield_until("buffers released after /four", idle);

    drop(c);
    server.join().unwrap();
    assert!(pending.is_empty());
}

/// Records the read timeouts set on it; nothing to read or write.
#[derive(Default)]
struct TimeoutLog(RefCell<Vec<Option<Duration>>>);

impl Transport for Rc<TimeoutLog> {
    fn read(&self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn set_read_timeout(&self, t: Option<Duration>) {
        self.0.borrow_mut().push(t);
    }

    fn shutdown(&self, _: Shutdown) {}

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn into_upgraded(self) -> Option<UpgradedIo> {
        None
    }
}

/// The idle and the handler's read timeouts alternate at every request:
/// the transport hears of a change only.
#[test]
fn a_read_timeout_is_set_only_when_it_changes() {
    let log = Rc::new(TimeoutLog::default());
    let sh = Shared::new(log.clone(), Rc::new(Config::default()));
    let (a, b) = (Some(Duration::from_secs(60)), Some(Duration::from_secs(5)));
    for t in [a, a, a, b, b, a, None, None] {
        sh.set_read_timeout(t);
    }
    assert_eq!(*log.0.borrow(), [a, b, a, None]);
}
