//! Helpers of the HTTP and WebSocket tests: a tiny HTTP/1.1 response reader
//! over a green socket, and running external clients on the thread pool.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::Duration;

use sylvan::net::TcpStream;

/// One parsed response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub head: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client connection with its own read buffer.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = sylvan::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(600)))
            .unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write request");
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut tmp = [0u8; 8192];
        let n = self.stream.read(&mut tmp)?;
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    fn exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads one response; `head_request` for a response to HEAD.
    pub fn response_to(&mut self, head_request: bool) -> io::Result<Resp> {
        let status_line = self.line()?;
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("bad status line {status_line:?}")))?;
        let mut head = status_line.clone() + "\r\n";
        let mut headers = Vec::new();
        loop {
            let l = self.line()?;
            head.push_str(&l);
            head.push_str("\r\n");
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').expect("header line");
            headers.push((n.to_string(), v.trim().to_string()));
        }
        let mut r = Resp {
            status,
            headers,
            body: Vec::new(),
            head,
        };
        if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(r);
        }
        if r.header("transfer-encoding").is_some() {
            loop {
                let size =
                    usize::from_str_radix(self.line()?.split(';').next().unwrap().trim(), 16)
                        .map_err(io::Error::other)?;
                if size == 0 {
                    while !self.line()?.is_empty() {}
                    break;
                }
                let data = self.exact(size)?;
                r.body.extend_from_slice(&data);
                assert_eq!(self.line()?, "");
            }
        } else if let Some(n) = r.header("content-length") {
            let n: usize = n.parse().unwrap();
            r.body = self.exact(n)?;
        } else {
            loop {
                if self.fill()? == 0 {
                    break;
                }
            }
            r.body = std::mem::take(&mut self.buf);
        }
        Ok(r)
    }

    pub fn response(&mut self) -> Resp {
        self.response_to(false).expect("read response")
    }

    /// Bytes already buffered, or else the next read from the socket.
    pub fn read_some(&mut self) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() {
            self.fill()?;
        }
        Ok(std::mem::take(&mut self.buf))
    }

    /// Reads everything up to end of stream.
    pub fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// Whether the server closed the connection (after any buffered bytes).
    pub fn closed(&mut self) -> bool {
        self.buf.is_empty() && matches!(self.fill(), Ok(0) | Err(_))
    }
}

/// Sends `req` on a fresh connection and reads one response.
pub fn roundtrip(addr: SocketAddr, req: &[u8]) -> Resp {
    let mut c = Client::connect(addr);
    c.send(req);
    c.response()
}

/// Runs an external command on the thread pool, so this hub keeps serving.
pub fn run(cmd: &mut Command) -> Output {
    let mut cmd = std::mem::replace(cmd, Command::new("true"));
    sylvan::tpool::execute(move || cmd.output())
        .expect("tpool")
        .expect("spawn external command")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
