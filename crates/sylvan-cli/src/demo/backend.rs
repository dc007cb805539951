//! The demo's backends: a line protocol that records every request id it
//! executes, so lost and duplicated requests can be counted afterwards.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use sylvan::net::ServerHandle;

/// Request id → how many times a backend executed it (shared by all).
pub type Receipts = Rc<RefCell<HashMap<u64, u32>>>;

/// One backend: `"REQ <id>\n"` → `"OK <id> <backend>\n"`.
pub struct Backend {
    pub index: usize,
    pub addr: SocketAddr,
    receipts: Receipts,
    server: Option<ServerHandle>,
}

impl Backend {
    /// Starts a backend on a free loopback port.
    pub fn start(index: usize, receipts: Receipts) -> io::Result<Backend> {
        let listener = sylvan::listen("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let mut b = Backend {
            index,
            addr,
            receipts,
            server: None,
        };
        b.serve(listener);
        Ok(b)
    }

    fn serve(&mut self, listener: sylvan::net::TcpListener) {
        let receipts = self.receipts.clone();
        let index = self.index;
        self.server = Some(sylvan::serve(listener, move |conn, _| -> io::Result<()> {
            let mut lines = BufReader::new(&conn);
            let mut line = String::new();
            while lines.read_line(&mut line)? > 0 {
                let id: u64 = line
                    .trim()
                    .strip_prefix("REQ ")
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad request"))?;
                *receipts.borrow_mut().entry(id).or_default() += 1;
                (&conn).write_all(format!("OK {id} {index}\n").as_bytes())?;
                line.clear();
            }
            Ok(())
        }));
    }

    /// Kills the backend: stops accepting and drops every connection.
    pub fn kill(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop(Duration::ZERO);
        }
    }

    /// Restarts it on the same port.
    pub fn restart(&mut self) -> io::Result<()> {
        if self.server.is_none() {
            let l = sylvan::listen(self.addr)?;
            self.serve(l);
        }
        Ok(())
    }
}
