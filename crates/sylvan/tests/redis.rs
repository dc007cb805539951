//! A real server nobody here wrote: Redis, killed with SIGKILL and restarted
//! several times under load. Every acknowledged SET must be readable
//! afterwards, and messages published after each re-subscribe must arrive.
//!
//! Needs `redis-server` on PATH (`.ci/run` installs it).

#[path = "../examples/redis_reconnect/resp.rs"]
mod resp;
mod util;

use std::cell::{Cell, RefCell};
use std::io;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::Duration;

use resp::{RespConn, Value};
use sylvan::resilience::{Backoff, Jitter, Reconnecting, Retry};

const IO: Duration = Duration::from_secs(2);

struct Redis {
    child: Option<Child>,
    port: u16,
    dir: std::path::PathBuf,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("sylvan-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = Redis {
            child: None,
            port,
            dir,
        };
        r.spawn();
        r
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        util::require(
            util::have_program("redis-server"),
            "redis-server",
            "apt-get install -y redis-server",
        );
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--protected-mode",
                "no",
            ])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        // Wait until it answers PING (bounded).
        let addr = self.addr();
        let up = sylvan::timeout(Duration::from_secs(20), || {
            loop {
                if let Ok(mut c) = RespConn::connect(&addr, IO) {
                    if c.command(&[b"PING"]).is_ok() {
                        return;
                    }
                }
                if sylvan::sleep(Duration::from_millis(20)).is_err() {
                    return;
                }
            }
        });
        assert!(up.is_ok(), "redis-server did not start on {addr}");
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn backoff() -> Backoff {
    Backoff::new()
        .initial(Duration::from_millis(20))
        .max(Duration::from_millis(200))
        .jitter(Jitter::Full)
        .unwrap()
}

#[test]
fn acknowledged_writes_and_resubscribed_messages_survive_kill_and_restart() {
    let mut redis = Redis::start();
    let addr = redis.addr();

    // Writer: SET key:i = i, retried; remember what was acknowledged.
    let a = addr.clone();
    let commands = Reconnecting::builder(move || RespConn::connect(&a, IO))
        .backoff(backoff())
        .wait_for_ready(true)
        .build();
    let acked: Rc<RefCell<Vec<u64>>> = Rc::default();
    let stop = Rc::new(Cell::new(false));
    let writer = {
        let (commands, acked, stop) = (commands.clone(), acked.clone(), stop.clone());
        sylvan::spawn(move || {
            let policy = Retry::<io::Error>::new()
                .max_attempts(50)
                .unwrap()
                .deadline(Duration::from_secs(20))
                .backoff(backoff())
                .idempotent(true);
            let mut failed = 0;
            let mut i = 0u64;
            while !stop.get() {
                let key = format!("key:{i}");
                let r = policy.run(|attempt| {
                    commands
                        .call(|c| {
                            attempt.mark_sent();
                            c.command(&[b"SET", key.as_bytes(), i.to_string().as_bytes()])
                        })
                        .map_err(io::Error::from)
                });
                match r {
                    Ok(Value::Simple(ok)) if ok == "OK" => acked.borrow_mut().push(i),
                    Ok(other) => panic!("unexpected reply {other:?}"),
                    Err(_) => failed += 1,
                }
                i += 1;
            }
            failed
        })
    };

    // Subscriber: on_connect re-subscribes; count subscriptions and messages.
    let subscriptions = Rc::new(Cell::new(0u32));
    let received: Rc<RefCell<Vec<String>>> = Rc::default();
    let a = addr.clone();
    let s2 = subscriptions.clone();
    let subscriber = Reconnecting::builder(move || RespConn::connect(&a, IO))
        .on_connect(move |c| {
            c.command(&[b"SUBSCRIBE", b"news"])?;
            c.set_read_timeout(None)?;
            s2.set(s2.get() + 1);
            Ok(())
        })
        .backoff(backoff())
        .wait_for_ready(true)
        .eager(true)
        .build();
    let reader = {
        let (subscriber, received) = (subscriber.clone(), received.clone());
        sylvan::spawn(move || {
            loop {
                match subscriber.call(|c| c.read_value()) {
                    Ok(Value::Array(Some(m))) if m.len() == 3 => {
                        received.borrow_mut().push(m[2].text().unwrap_or_default())
                    }
                    Ok(_) => {}
                    Err(sylvan::resilience::CallError::Shutdown) => return,
                    Err(_) => {}
                }
            }
        })
    };

    let publish = |msg: &str| -> io::Result<()> {
        let mut c = RespConn::connect(&addr, IO)?;
        c.command(&[b"PUBLISH", b"news", msg.as_bytes()])
            .map(|_| ())
    };

    let outcome = sylvan::timeout(Duration::from_secs(120), || {
        for round in 1..=3u32 {
            // Load runs for a while...
            let target = acked.borrow().len() + 30;
            while acked.borrow().len() < target {
                sylvan::sleep(Duration::from_millis(5))?;
            }
            // ...then the server dies hard and comes back.
            redis.kill();
            sylvan::sleep(Duration::from_millis(50))?;
            redis.spawn();
            // Once re-subscribed, a message published now must arrive.
            while subscriptions.get() < round + 1 {
                sylvan::sleep(Duration::from_millis(5))?;
            }
            let msg = format!("after-restart-{round}");
            publish(&msg).expect("publish");
            while !received.borrow().contains(&msg) {
                sylvan::sleep(Duration::from_millis(5))?;
            }
        }
        Ok::<_, sylvan::Cancelled>(())
    });
    stop.set(true);
    let failed = writer.join().unwrap();
    assert!(
        outcome.is_ok(),
        "timed out; acked {}, subscriptions {}, received {:?}",
        acked.borrow().len(),
        subscriptions.get(),
        received.borrow()
    );

    // Every acknowledged SET is readable with its value.
    let mut c = RespConn::connect(&addr, IO).unwrap();
    for &i in acked.borrow().iter() {
        let v = c.command(&[b"GET", format!("key:{i}").as_bytes()]).unwrap();
        assert_eq!(v.text(), Some(i.to_string()), "acknowledged key:{i} lost");
    }
    assert!(acked.borrow().len() >= 90);
    println!(
        "acked {} writes, {failed} gave up, {} reconnects",
        acked.borrow().len(),
        commands.reconnects()
    );
    subscriber.shutdown();
    commands.shutdown();
    reader.kill();
    let _ = reader.join();
}
