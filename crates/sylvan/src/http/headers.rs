//! The types a request head is made of and that both the parser and
//! [`Request`](super::Request) use: the [`Version`], the [`Headers`] (one
//! owned buffer plus offsets into it), and the comma-separated list rule of
//! header values. The parser builds them, the request exposes them; neither
//! depends on the other's module for them.

use std::cell::Cell;
use std::fmt;

/// The HTTP version of a request.
///
/// # Examples
///
/// ```
/// use sylvan::http::Version;
///
/// assert_eq!(Version::Http11.to_string(), "HTTP/1.1");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Version {
    /// HTTP/1.0: the connection closes after the response unless the client
    /// asked for `Connection: keep-alive`; no chunked bodies.
    Http10,
    /// HTTP/1.1: persistent connections, chunked bodies.
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(sylvan::http::Version::Http10.as_str(), "HTTP/1.0");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Byte offsets of one header's name and value in the head buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderIdx {
    pub(crate) ns: u32,
    pub(crate) ne: u32,
    pub(crate) vs: u32,
    pub(crate) ve: u32,
}

/// Bytes of one [`HeaderIdx`] in a [`Headers`] buffer.
const IDX_LEN: usize = 16;

impl HeaderIdx {
    fn encode(self) -> [u8; IDX_LEN] {
        let mut b = [0; IDX_LEN];
        for (k, n) in [self.ns, self.ne, self.vs, self.ve].into_iter().enumerate() {
            b[4 * k..4 * k + 4].copy_from_slice(&n.to_ne_bytes());
        }
        b
    }

    fn decode(b: &[u8]) -> HeaderIdx {
        let n = |k: usize| u32::from_ne_bytes(b[4 * k..4 * k + 4].try_into().expect("4 bytes"));
        HeaderIdx {
            ns: n(0),
            ne: n(1),
            vs: n(2),
            ve: n(3),
        }
    }
}

/// The header fields of a request, in the order received; names compare
/// case-insensitively.
///
/// The bytes are those the client sent (the head is copied once out of the
/// connection's buffer; names and values are slices of that copy).
///
/// # Examples
///
/// ```
/// # use std::io::{Read, Write};
/// use sylvan::http::{Response, Server};
///
/// let server = Server::bind("127.0.0.1:0").unwrap().serve(|req| {
///     let h = req.headers();
///     assert_eq!(h.get("ACCEPT"), Some("text/plain"));
///     assert_eq!(h.get_all("x-tag").collect::<Vec<_>>(), ["a", "b"]);
///     assert!(h.contains("host"));
///     Response::text(format!("{} fields", h.len()))
/// });
/// # let mut c = sylvan::connect(server.local_addr()).unwrap();
/// # c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\nX-Tag: a\r\nX-Tag: b\r\nConnection: close\r\n\r\n").unwrap();
/// # let mut out = String::new();
/// # c.read_to_string(&mut out).unwrap();
/// # assert!(out.ends_with("5 fields"), "{out}");
/// ```
pub struct Headers {
    /// The head's bytes, then the index of its fields: one [`HeaderIdx`]
    /// each, `IDX_LEN` bytes. One allocation per request holds both; it
    /// goes back to the thread's [`SPARE`] when the headers are dropped.
    buf: Vec<u8>,
    /// Where the index starts in `buf`.
    head_len: usize,
}

/// Largest buffer [`SPARE`] keeps: a typical head and its index fit
/// several times over, and a thread holds no more than this for it.
const SPARE_MAX: usize = 4096;

thread_local! {
    /// One spare [`Headers`] buffer per thread. Dropped headers leave their
    /// buffer here and the next head parsed on the thread takes it, so a
    /// keep-alive connection's requests cost no `malloc` and `free` each
    /// (about 125 instructions with glibc's), as Go's `net/http` keeps its
    /// readers in a pool. Only a plain `Vec` lives here: taking and putting
    /// back run no user code.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The thread's spare buffer if it suits a head of `need` bytes: room for
/// it, and not more than about twice that, so headers a handler keeps
/// hold little more than their own bytes. Otherwise a new buffer of that
/// size, and the spare stays for a head it suits.
fn take_spare(need: usize) -> Vec<u8> {
    SPARE
        .try_with(|s| {
            let spare = s.take();
            if (need..=2 * need + 256).contains(&spare.capacity()) {
                spare
            } else {
                s.set(spare);
                Vec::with_capacity(need)
            }
        })
        .unwrap_or_else(|_| Vec::with_capacity(need))
}

impl Drop for Headers {
    fn drop(&mut self) {
        let cap = self.buf.capacity();
        if cap != 0 && cap <= SPARE_MAX {
            let buf = std::mem::take(&mut self.buf);
            // After the thread's locals are gone the buffer is just freed.
            let _old = SPARE.try_with(|s| s.replace(buf));
        }
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter_bytes()
                    .map(|(n, v)| (n, String::from_utf8_lossy(v))),
            )
            .finish()
    }
}

impl Headers {
    /// A copy of `head` and of the `index` of its fields.
    pub(crate) fn new(head: &[u8], index: impl ExactSizeIterator<Item = HeaderIdx>) -> Headers {
        let need = head.len() + index.len() * IDX_LEN;
        let mut buf = take_spare(need);
        buf.clear();
        buf.extend_from_slice(head);
        for i in index {
            buf.extend_from_slice(&i.encode());
        }
        Headers {
            buf,
            head_len: head.len(),
        }
    }

    fn index(&self) -> impl Iterator<Item = HeaderIdx> + '_ {
        self.buf[self.head_len..]
            .chunks_exact(IDX_LEN)
            .map(HeaderIdx::decode)
    }

    /// A str of the head buffer; the parser checked it is ASCII.
    pub(crate) fn str_at(&self, (s, e): (u32, u32)) -> &str {
        std::str::from_utf8(&self.buf[s as usize..e as usize]).unwrap_or("")
    }

    /// Bytes of the head buffer.
    pub(crate) fn bytes_at(&self, (s, e): (u32, u32)) -> &[u8] {
        &self.buf[s as usize..e as usize]
    }

    fn name(&self, i: &HeaderIdx) -> &str {
        self.str_at((i.ns, i.ne))
    }

    fn is_named(&self, i: &HeaderIdx, name: &str) -> bool {
        self.bytes_at((i.ns, i.ne))
            .eq_ignore_ascii_case(name.as_bytes())
    }

    fn value(&self, i: &HeaderIdx) -> &[u8] {
        &self.buf[i.vs as usize..i.ve as usize]
    }

    /// The value of the first field named `name` (any case), if there is
    /// one and it is valid UTF-8 (see [`get_bytes`](Self::get_bytes)).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_bytes(name)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The raw value of the first field named `name` (any case).
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.index()
            .find(|i| self.is_named(i, name))
            .map(|i| self.value(&i))
    }

    /// The values of every field named `name` (any case) that are valid
    /// UTF-8, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.index()
            .filter(move |i| self.is_named(i, name))
            .filter_map(|i| std::str::from_utf8(self.value(&i)).ok())
    }

    /// Whether a field named `name` (any case) is present.
    pub fn contains(&self, name: &str) -> bool {
        self.get_bytes(name).is_some()
    }

    /// Every field as `(name, raw value)`, in the order received.
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.index().map(|i| (self.name(&i), self.value(&i)))
    }

    /// Every field as `(raw name, raw value)`, in the order received.
    pub(crate) fn iter_raw(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.index()
            .map(|i| (self.bytes_at((i.ns, i.ne)), self.value(&i)))
    }

    /// Every field whose value is valid UTF-8 as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.iter_bytes()
            .filter_map(|(n, v)| Some((n, std::str::from_utf8(v).ok()?)))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        (self.buf.len() - self.head_len) / IDX_LEN
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the comma-separated list in the fields named `name`
    /// contains `token` (any case), e.g. `Connection: keep-alive, Upgrade`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.index()
            .filter(|i| self.is_named(i, name))
            .any(|i| list(self.value(&i)).any(|t| t.eq_ignore_ascii_case(token.as_bytes())))
    }
}

/// The bytes of `v` without leading and trailing ASCII whitespace.
fn trim(v: &[u8]) -> &[u8] {
    let s = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let e = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(s, |i| i + 1);
    &v[s..e]
}

/// The list elements of a header value (`a, b ,c`), trimmed, empty ones
/// skipped (RFC 9110 §5.6.1).
pub(crate) fn list(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.split(|&b| b == b',').map(trim).filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Headers over `head`, whose fields are `name: value` lines after
    /// the first line.
    fn headers(head: &str) -> Headers {
        let mut index = Vec::new();
        let mut at = head.find('\n').unwrap() + 1;
        for line in head[at..].split_inclusive('\n') {
            if let Some(colon) = line.find(':') {
                let value = line[colon + 1..].trim();
                let vs = at + colon + 1 + line[colon + 1..].find(value).unwrap();
                let idx = |n: usize| n as u32;
                index.push(HeaderIdx {
                    ns: idx(at),
                    ne: idx(at + colon),
                    vs: idx(vs),
                    ve: idx(vs + value.len()),
                });
            }
            at += line.len();
        }
        Headers::new(head.as_bytes(), index.into_iter())
    }

    #[test]
    fn one_buffer_holds_the_head_and_its_index() {
        let h = headers("GET / HTTP/1.1\r\nHost: x\r\nX-Tag: a\r\nx-tag: b, c\r\n\r\n");
        assert_eq!(h.len(), 3);
        assert!(!h.is_empty());
        assert_eq!(h.get("HOST"), Some("x"));
        assert_eq!(h.get_all("X-TAG").collect::<Vec<_>>(), ["a", "b, c"]);
        assert!(h.has_token("x-tag", "C"));
        assert!(!h.contains("accept"));
        let all: Vec<_> = h.iter().collect();
        assert_eq!(all, [("Host", "x"), ("X-Tag", "a"), ("x-tag", "b, c")]);
        assert_eq!(h.str_at((0, 3)), "GET");
        assert!(headers("GET / HTTP/1.1\r\n\r\n").is_empty());
    }

    /// Empties this thread's spare, so a test starts from none.
    fn no_spare() {
        SPARE.with(|s| drop(s.take()));
    }

    /// The spare buffer's capacity on this thread, if any is kept.
    fn spare_capacity() -> usize {
        SPARE.with(|s| {
            let v = s.take();
            let cap = v.capacity();
            s.set(v);
            cap
        })
    }

    #[test]
    fn a_reused_buffer_holds_only_the_new_head() {
        no_spare();
        let long = format!(
            "GET /first HTTP/1.1\r\nHost: one\r\nX-Long: {}\r\nAccept: a\r\n\r\n",
            "v".repeat(100)
        );
        let first = headers(&long);
        let kept = first.buf.as_ptr();
        drop(first);
        assert!(spare_capacity() >= long.len(), "the buffer is kept");
        // Smaller, but not so much smaller that the spare is refused.
        let second = headers("GET /second HTTP/1.1\r\nHost: two\r\n\r\n");
        assert_eq!(second.buf.as_ptr(), kept, "the next head takes it");
        assert_eq!(spare_capacity(), 0);
        assert_eq!(second.len(), 1);
        assert_eq!(second.iter().collect::<Vec<_>>(), [("Host", "two")]);
        assert!(!second.contains("x-long") && !second.contains("accept"));
        assert_eq!(second.str_at((0, 3)), "GET");
    }

    #[test]
    fn the_spare_is_bounded_and_never_lent_to_a_much_smaller_head() {
        no_spare();
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(SPARE_MAX));
        drop(headers(&huge));
        assert_eq!(spare_capacity(), 0, "a buffer over SPARE_MAX is freed");

        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(2000));
        drop(headers(&big));
        let spare = spare_capacity();
        assert!(spare >= big.len());
        let small = headers("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            small.buf.capacity() < spare,
            "a small head gets a buffer of its size, not the {spare}-byte spare"
        );
        assert_eq!(
            spare_capacity(),
            spare,
            "the spare waits for a head it suits"
        );
        assert_eq!(small.get("host"), Some("x"));
    }

    #[test]
    fn a_spare_too_small_for_the_head_stays_for_a_later_one() {
        no_spare();
        drop(headers("GET / HTTP/1.1\r\nA: b\r\n\r\n"));
        let small = spare_capacity();
        assert!(small > 0);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(500));
        let h = headers(&big);
        assert_eq!(spare_capacity(), small, "not taken to be regrown");
        assert_eq!(h.get("x").map(str::len), Some(500));
    }

    /// Headers dropped by another thread-local's destructor after the
    /// spare's own has run are freed without touching it: no panic, no
    /// abort. (std registers a thread-local's destructor at its first use
    /// and glibc runs them in reverse order of registration, so the spare,
    /// first used after `HELD`, goes first; the test checks that it did.)
    #[test]
    fn headers_dropped_at_thread_exit_after_the_spare_are_freed() {
        use std::cell::RefCell;
        use std::sync::atomic::{AtomicBool, Ordering};

        static SPARE_WAS_GONE: AtomicBool = AtomicBool::new(false);
        struct Held(Option<Headers>);
        impl Drop for Held {
            fn drop(&mut self) {
                SPARE_WAS_GONE.store(SPARE.try_with(|_| ()).is_err(), Ordering::SeqCst);
                drop(self.0.take());
            }
        }
        thread_local! {
            static HELD: RefCell<Held> = const { RefCell::new(Held(None)) };
        }
        let t = std::thread::spawn(|| {
            HELD.with(|h| h.borrow_mut().0 = Some(headers("GET / HTTP/1.1\r\nA: b\r\n\r\n")));
            drop(headers("GET / HTTP/1.1\r\nC: d\r\n\r\n"));
            assert!(spare_capacity() > 0);
        });
        t.join().expect("the thread exits cleanly");
        assert!(
            SPARE_WAS_GONE.load(Ordering::SeqCst),
            "the held headers were dropped after the spare was destroyed"
        );
    }
}
