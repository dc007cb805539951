//! One side of a session over its stream: the codec, the bytes received
//! but not yet decoded, and the close handshake's state. The methods keep
//! the shape of tungstenite's `WebSocket` (which sylvan used before it
//! needed permessage-deflate): `read` returns `WouldBlock` when it needs
//! more bytes, pongs and the close reply are queued and go out on
//! `flush` or with the next write.

use std::io::{self, Read};

use super::codec::{Codec, CodecError};
use super::stream::WsIo;
use super::{CloseFrame, Message};

/// Why a call on [`Conn`] failed.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// The close handshake is over (the reply to a close went out, or
    /// both sides' close frames were seen).
    Closed,
    /// The peer closed the connection without a close frame.
    Reset,
    Io(io::Error),
    Codec(CodecError),
}

pub(crate) struct Conn {
    io: WsIo,
    codec: Codec,
    rbuf: Vec<u8>,
    read_size: usize,
    /// Frames to send before anything else (pongs, the close reply).
    pending: Vec<u8>,
    out: Vec<u8>,
    close_sent: bool,
    close_received: bool,
}

impl Conn {
    pub(crate) fn new(io: WsIo, codec: Codec, early: Vec<u8>, read_size: usize) -> Conn {
        let mut rbuf = early;
        rbuf.reserve(read_size);
        Conn {
            io,
            codec,
            rbuf,
            read_size: read_size.max(1),
            pending: Vec::new(),
            out: Vec::new(),
            close_sent: false,
            close_received: false,
        }
    }

    /// Whether permessage-deflate is in use.
    pub(crate) fn compresses(&self) -> bool {
        self.codec.compresses()
    }

    /// The next message (control ones included), `WouldBlock` as
    /// `ConnError::Io` when the socket has nothing more yet.
    pub(crate) fn read(&mut self) -> Result<Message, ConnError> {
        loop {
            if self.close_received && self.close_sent && self.pending.is_empty() {
                return Err(ConnError::Closed);
            }
            let (n, msg) = self.codec.decode(&self.rbuf).map_err(ConnError::Codec)?;
            if n > 0 {
                self.rbuf.drain(..n);
                // Keep no large buffer after a large frame.
                if self.rbuf.capacity() > 2 * self.read_size && self.rbuf.len() <= self.read_size {
                    self.rbuf.shrink_to(self.read_size);
                }
            }
            if let Some(msg) = msg {
                match &msg {
                    Message::Ping(p) if !self.close_sent => {
                        let pong = Message::Pong(p.clone());
                        self.codec
                            .encode(&pong, &mut self.pending)
                            .map_err(ConnError::Codec)?;
                    }
                    Message::Close(f) => {
                        self.close_received = true;
                        if !self.close_sent {
                            // Echo the code (RFC 6455 §5.5.1).
                            let reply = Message::Close(f.as_ref().map(|f| CloseFrame {
                                code: f.code,
                                reason: "".into(),
                            }));
                            self.codec
                                .encode(&reply, &mut self.pending)
                                .map_err(ConnError::Codec)?;
                            self.close_sent = true;
                        }
                    }
                    _ => {}
                }
                return Ok(msg);
            }
            if n > 0 {
                continue;
            }
            if self.close_received {
                return Err(ConnError::Closed);
            }
            let start = self.rbuf.len();
            self.rbuf.resize(start + self.read_size, 0);
            let r = self.io.read(&mut self.rbuf[start..]);
            self.rbuf.truncate(start + *r.as_ref().unwrap_or(&0));
            match r {
                Ok(0) if self.close_sent => return Err(ConnError::Closed),
                Ok(0) => return Err(ConnError::Reset),
                Ok(_) => {}
                Err(e) => return Err(ConnError::Io(e)),
            }
        }
    }

    /// Sends the queued pongs and close reply.
    pub(crate) fn flush(&mut self) -> Result<(), ConnError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let r = self.io.write_all(&self.pending);
        self.pending.clear();
        r.map_err(ConnError::Io)
    }

    /// Sends a message (a close frame starts the close handshake).
    pub(crate) fn send(&mut self, msg: Message) -> Result<(), ConnError> {
        if self.close_sent {
            return Err(ConnError::Closed);
        }
        self.flush()?;
        if matches!(msg, Message::Close(_)) {
            self.close_sent = true;
        }
        self.out.clear();
        self.codec
            .encode(&msg, &mut self.out)
            .map_err(ConnError::Codec)?;
        let r = self.io.write_all(&self.out);
        if self.out.capacity() > 64 * 1024 {
            self.out = Vec::new(); // keep no large buffer between sends
        }
        r.map_err(ConnError::Io)
    }

    /// Starts the close handshake (a no-op once our close frame went out).
    pub(crate) fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), ConnError> {
        if self.close_sent {
            return self.flush();
        }
        self.send(Message::Close(frame))
    }
}
