//! Real ZooKeeper servers for the `zk*` tests: standalone or a 3-node
//! ensemble on free loopback ports, each with a temporary data directory.
//!
//! Needs Debian's `zookeeper` package and a JRE (`.ci/run` installs them).
//!
//! Each server runs under a small `sh` wrapper that starts `java` in the
//! background and kills it with SIGKILL as soon as its stdin closes, so a
//! server can never outlive the test process (even one that panics or is
//! killed), and `kill()` is a crash, not a clean shutdown.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The tick of every test server: sessions may be as short as 2 ticks.
pub const TICK_MS: u64 = 100;

const JAR: &str = "/usr/share/java/zookeeper.jar";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes the data directories of test processes that are gone (a
/// shared server's directory outlives its process: statics never drop).
fn sweep_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("sylvan-zk-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(sweep_stale_dirs);
    let d = std::env::temp_dir().join(format!(
        "sylvan-zk-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("data")).unwrap();
    d
}

struct Running {
    wrapper: Child,
    stdin: Option<ChildStdin>,
}

/// One ZooKeeper server process (standalone or an ensemble member).
pub struct ZkServer {
    pub port: u16,
    /// The address it listens on (loopback unless in a namespace).
    host: String,
    /// The network namespace it runs in (`ip netns exec`), if any.
    netns: Option<String>,
    dir: PathBuf,
    running: Option<Running>,
}

impl ZkServer {
    /// A standalone server, started and serving.
    pub fn standalone() -> ZkServer {
        let port = free_port();
        let dir = temp_dir("standalone");
        write_cfg(&dir, "127.0.0.1", port, "");
        let mut s = ZkServer {
            port,
            host: "127.0.0.1".into(),
            netns: None,
            dir,
            running: None,
        };
        s.start();
        s.wait_serving();
        s
    }

    /// A standalone server inside the network namespace `netns`, listening
    /// on `ip:2181` there, started and serving.
    pub fn standalone_in_netns(netns: &str, ip: &str) -> ZkServer {
        let port = 2181;
        let dir = temp_dir("netns");
        write_cfg(&dir, ip, port, "");
        let mut s = ZkServer {
            port,
            host: ip.into(),
            netns: Some(netns.into()),
            dir,
            running: None,
        };
        s.start();
        s.wait_serving();
        s
    }

    /// `host:port` of its client port.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Starts the process (not waiting for it to serve).
    pub fn start(&mut self) {
        assert!(self.running.is_none(), "server already running");
        assert!(
            Path::new(JAR).exists() && Command::new("java").arg("-version").output().is_ok(),
            "this test needs ZooKeeper and Java ({JAR}, java), which are missing: install them \
             with `apt-get install -y zookeeper` (scripts/test.sh installs everything the tests need)"
        );
        let log = std::fs::File::create(self.dir.join("server.log")).unwrap();
        let cfg = self.dir.join("zoo.cfg");
        let script = "java -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
             -Dzookeeper.jmx.log4j.disable=true \
             -cp \"$1\" org.apache.zookeeper.server.quorum.QuorumPeerMain \"$2\" & \
             pid=$!; read _ignored; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0";
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "sh"]);
                c
            }
            None => Command::new("sh"),
        };
        let mut wrapper = cmd
            .args(["-c", script, "zk-wrapper", JAR])
            .arg(&cfg)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start sh");
        let stdin = wrapper.stdin.take();
        self.running = Some(Running { wrapper, stdin });
    }

    /// Crashes it (SIGKILL) and waits until the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut r) = self.running.take() {
            drop(r.stdin.take()); // the wrapper kills java -9 on EOF
            let _ = r.wrapper.wait();
        }
    }

    /// Starts it again on the same port and data, and waits until it serves.
    pub fn restart(&mut self) {
        self.start();
        self.wait_serving();
    }

    /// The `srvr` four-letter word's answer, if the server answers.
    pub fn srvr(&self) -> Option<String> {
        four_letter(&self.addr(), "srvr")
    }

    /// Waits (bounded, polling) until the server serves clients.
    pub fn wait_serving(&self) {
        let addr = self.addr();
        let r = sylvan::timeout(Duration::from_secs(40), || {
            loop {
                if self.srvr().is_some_and(|s| s.contains("Mode:")) {
                    return true;
                }
                if sylvan::sleep(Duration::from_millis(50)).is_err() {
                    return false;
                }
            }
        });
        if r != Ok(true) {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            let tail: String = log.lines().rev().take(30).collect::<Vec<_>>().join("\n");
            panic!("ZooKeeper on {addr} did not start serving; log tail (reversed):\n{tail}");
        }
    }

    /// Whether it is the ensemble's leader (or standalone).
    pub fn mode(&self) -> Option<String> {
        let s = self.srvr()?;
        s.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_string())
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_cfg(dir: &Path, host: &str, port: u16, extra: &str) {
    let cfg = format!(
        "tickTime={TICK_MS}\n\
         initLimit=50\n\
         syncLimit=20\n\
         dataDir={}\n\
         clientPort={port}\n\
         clientPortAddress={host}\n\
         minSessionTimeout={}\n\
         maxSessionTimeout=60000\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=srvr,ruok\n\
         {extra}",
        dir.join("data").display(),
        2 * TICK_MS,
    );
    std::fs::write(dir.join("zoo.cfg"), cfg).unwrap();
}

/// Sends a four-letter word with green I/O (so the hub keeps running other
/// green threads meanwhile); `None` if nothing answers.
pub fn four_letter(addr: &str, word: &str) -> Option<String> {
    let s = sylvan::net::Connector::new()
        .connect_timeout(Duration::from_millis(500))
        .connect(addr)
        .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    (&s).write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    (&s).read_to_string(&mut out).ok()?;
    Some(out)
}

/// Three servers forming one ensemble.
pub struct Ensemble {
    pub servers: Vec<ZkServer>,
}

impl Ensemble {
    /// Starts a 3-node ensemble and waits until every member serves.
    pub fn start() -> Ensemble {
        let ports: Vec<(u16, u16, u16)> = (0..3)
            .map(|_| (free_port(), free_port(), free_port()))
            .collect();
        let members: String = ports
            .iter()
            .enumerate()
            .map(|(i, (_, q, e))| format!("server.{}=127.0.0.1:{q}:{e}\n", i + 1))
            .collect();
        let mut servers = Vec::new();
        for (i, (client, _, _)) in ports.iter().enumerate() {
            let dir = temp_dir(&format!("ens{}", i + 1));
            std::fs::write(dir.join("data").join("myid"), format!("{}\n", i + 1)).unwrap();
            write_cfg(&dir, "127.0.0.1", *client, &members);
            let mut s = ZkServer {
                port: *client,
                host: "127.0.0.1".into(),
                netns: None,
                dir,
                running: None,
            };
            s.start();
            servers.push(s);
        }
        for s in &servers {
            s.wait_serving();
        }
        Ensemble { servers }
    }

    /// The connect string of every member.
    pub fn hosts(&self) -> String {
        self.servers
            .iter()
            .map(|s| s.addr())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The member whose client port is `port`.
    pub fn by_port(&mut self, port: u16) -> &mut ZkServer {
        self.servers
            .iter_mut()
            .find(|s| s.port == port)
            .expect("no member on that port")
    }
}

/// Polls `f` every 20 ms until it returns `Some`, up to `limit`.
pub fn eventually<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let r = sylvan::timeout(limit, || {
        loop {
            if let Some(v) = f() {
                return Some(v);
            }
            if sylvan::sleep(Duration::from_millis(20)).is_err() {
                return None;
            }
        }
    });
    match r {
        Ok(Some(v)) => v,
        _ => panic!("timed out after {limit:?} waiting for {what}"),
    }
}
