//! A minimal RESP2 (Redis protocol) client connection: enough for GET, SET,
//! PUBLISH and SUBSCRIBE. Shared by the example and its integration test.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::Duration;

/// A RESP2 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The value as text, for bulk and simple strings.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Simple(s) => Some(s.clone()),
            Value::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// One connection to a Redis server.
pub struct RespConn {
    stream: BufReader<sylvan::net::TcpStream>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl RespConn {
    /// Connects with a 2 s connect timeout and per-I/O timeouts of `io`.
    pub fn connect(addr: &str, io: Duration) -> io::Result<RespConn> {
        let s = sylvan::net::Connector::new()
            .connect_timeout(Duration::from_secs(2))
            .nodelay(true)
            .connect(addr)?;
        s.set_read_timeout(Some(io))?;
        s.set_write_timeout(Some(io))?;
        Ok(RespConn {
            stream: BufReader::new(s),
        })
    }

    /// Changes the read timeout (`None` to wait for pushed messages).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.stream.get_ref().set_read_timeout(t)
    }

    /// Sends one command.
    pub fn send(&mut self, args: &[&[u8]]) -> io::Result<()> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.get_ref().write_all(&out)
    }

    /// Sends one command and reads its reply; an error reply is an error.
    pub fn command(&mut self, args: &[&[u8]]) -> io::Result<Value> {
        self.send(args)?;
        match self.read_value()? {
            Value::Error(e) => Err(io::Error::other(format!("redis: {e}"))),
            v => Ok(v),
        }
    }

    /// Reads one value (a reply, or a pushed pub/sub message).
    pub fn read_value(&mut self) -> io::Result<Value> {
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "redis closed the connection",
            ));
        }
        let line = line
            .strip_suffix("\r\n")
            .ok_or_else(|| bad("line without CRLF"))?;
        let (kind, rest) = line.split_at_checked(1).ok_or_else(|| bad("empty line"))?;
        let num = || {
            rest.parse::<i64>()
                .map_err(|_| bad(format!("bad number {rest:?}")))
        };
        Ok(match kind {
            "+" => Value::Simple(rest.to_string()),
            "-" => Value::Error(rest.to_string()),
            ":" => Value::Int(num()?),
            "$" => match num()? {
                -1 => Value::Bulk(None),
                n if n >= 0 => {
                    let mut buf = vec![0; n as usize + 2];
                    self.stream.read_exact(&mut buf)?;
                    buf.truncate(n as usize);
                    Value::Bulk(Some(buf))
                }
                n => return Err(bad(format!("bad bulk length {n}"))),
            },
            "*" => match num()? {
                -1 => Value::Array(None),
                n if n >= 0 => Value::Array(Some(
                    (0..n)
                        .map(|_| self.read_value())
                        .collect::<io::Result<_>>()?,
                )),
                n => return Err(bad(format!("bad array length {n}"))),
            },
            other => return Err(bad(format!("unknown RESP type {other:?}"))),
        })
    }
}
