//! The watchdog reports a stall after releasing its lock, so a `tracing`
//! subscriber that blocks cannot stall every hub created meanwhile. (Its own
//! test binary: it installs the process-wide subscriber.)

use std::io;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A flag others can wait on.
#[derive(Clone, Default)]
struct Flag(Arc<(Mutex<bool>, Condvar)>);

impl Flag {
    fn set(&self) {
        *self.0.0.lock().unwrap() = true;
        self.0.1.notify_all();
    }
    fn get(&self) -> bool {
        *self.0.0.lock().unwrap()
    }
    /// Waits until set; `false` if `bound` passed first (a hang, not a
    /// speed check: it is set within microseconds when all is well).
    fn wait(&self, bound: Duration) -> bool {
        let (lock, cv) = &*self.0;
        let r = cv
            .wait_timeout_while(lock.lock().unwrap(), bound, |set| !*set)
            .unwrap();
        *r.0
    }
}

/// Blocks the thread that writes the watchdog's warning until released.
#[derive(Clone)]
struct BlockingWriter {
    entered: Flag,
    release: Flag,
}

impl io::Write for BlockingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if String::from_utf8_lossy(buf).contains("without yielding") {
            self.entered.set();
            self.release.wait(Duration::from_secs(120));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BlockingWriter {
    type Writer = BlockingWriter;
    fn make_writer(&'a self) -> BlockingWriter {
        self.clone()
    }
}

#[test]
fn a_blocking_subscriber_does_not_stall_new_hubs() {
    let entered = Flag::default();
    let release = Flag::default();
    tracing_subscriber::fmt()
        .with_writer(BlockingWriter {
            entered: entered.clone(),
            release: release.clone(),
        })
        .with_ansi(false)
        .init();

    let e = entered.clone();
    let hog = thread::spawn(move || {
        sylvan::debug::set_blocking_threshold(Some(Duration::from_millis(20)));
        let g = sylvan::spawn(move || {
            sylvan::sleep(Duration::from_millis(1)).unwrap();
            // Spin without yielding until the watchdog is inside the
            // subscriber (bounded).
            let give_up = Instant::now() + Duration::from_secs(60);
            while !e.get() && Instant::now() < give_up {
                std::hint::spin_loop();
            }
        });
        g.join().unwrap();
    });
    assert!(
        entered.wait(Duration::from_secs(60)),
        "the watchdog never reported the spinning green thread"
    );

    // The watchdog thread is now blocked in the subscriber. A new hub
    // registers with the watchdog: it must not wait for it.
    let (tx, rx) = mpsc::channel();
    let newcomer = thread::spawn(move || {
        sylvan::yield_now(); // creates this thread's hub
        tx.send(()).unwrap();
    });
    let created = rx.recv_timeout(Duration::from_secs(60));
    release.set();
    newcomer.join().unwrap();
    hog.join().unwrap();
    assert!(
        created.is_ok(),
        "creating a hub waited for the watchdog's blocked subscriber"
    );
}
