//! Network namespaces for the tests of `tests/netns*.rs`: each [`NetNs`]
//! is a fresh namespace joined to the test's own by a veth pair, with an
//! address on each end, and the kernel's faults on demand: a true
//! blackhole (nftables DROP both ways inside the namespace, so no RST is
//! ever sent), random packet loss (nftables `numgen`), and the link set
//! down. Everything is removed when the `NetNs` drops, on every path.
//!
//! Needs root, iproute2 (`ip`) and nftables (`nft`); `scripts/test.sh`
//! installs both. A test run without them fails with one line naming what
//! is missing.
//!
//! `tc netem` (delay, reordering, duplication) is not used: kernels built
//! without `sch_netem` (this project's CI VMs) refuse it, so jitter comes
//! from a `sylvan::chaos` proxy inside the namespace instead.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Set in the environment of a test binary re-run inside a namespace.
pub const CHILD_ENV: &str = "SYLVAN_NETNS_CHILD";

/// The line a child prints (then its address) once it serves.
pub const READY: &str = "SYLVAN-NETNS-READY";

/// Whether this process is the in-namespace half of a test.
pub fn is_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// Runs `cmd`; its stderr, or `Ok` on success.
fn run(cmd: &mut Command) -> Result<(), String> {
    let what = format!("{cmd:?}");
    match cmd.stdin(Stdio::null()).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

/// Panics with one line naming what the namespace tests need, unless
/// this process is root and has `ip` and `nft`.
pub fn require() {
    const NEED: &str = "the network-namespace tests need root, iproute2 and nftables \
                        (apt-get install -y iproute2 nftables; scripts/test.sh installs them)";
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_default();
    assert!(uid == "0", "{NEED}: not running as root (euid {uid})");
    for tool in ["ip", "nft"] {
        let ok = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "{NEED}: `{tool}` is missing");
    }
}

/// A network namespace with a veth link to the test's namespace.
pub struct NetNs {
    pub name: String,
    host_if: String,
    ns_if: String,
    /// The address of the test's end of the link.
    pub host_ip: Ipv4Addr,
    /// The address of the namespace's end.
    pub ns_ip: Ipv4Addr,
}

impl NetNs {
    /// Creates the namespace, the link and its addresses, with an empty
    /// nftables table `inet sylvan` (chains `in` and `out`) for faults.
    pub fn new() -> NetNs {
        require();
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let base = format!("s{pid:x}n{n}");
        // A /24 of its own per namespace: 10.(100 + pid % 100).(n).0.
        let net = [10, 100 + (pid % 100) as u8, n as u8];
        let ns = NetNs {
            name: format!("sylvan-{base}"),
            host_if: format!("{base}h"),
            ns_if: format!("{base}i"),
            host_ip: Ipv4Addr::new(net[0], net[1], net[2], 1),
            ns_ip: Ipv4Addr::new(net[0], net[1], net[2], 2),
        };
        // From here on, Drop cleans up whatever was made.
        if let Err(e) = ns.setup() {
            panic!("cannot set up network namespace {}: {e}", ns.name);
        }
        ns
    }

    fn setup(&self) -> Result<(), String> {
        let (name, h, i) = (&self.name, &self.host_if, &self.ns_if);
        run(Command::new("ip").args(["netns", "add", name]))?;
        run(Command::new("ip").args(["link", "add", h, "type", "veth", "peer", "name", i]))?;
        run(Command::new("ip").args(["link", "set", i, "netns", name]))?;
        run(Command::new("ip").args(["addr", "add", &format!("{}/24", self.host_ip), "dev", h]))?;
        run(Command::new("ip").args(["link", "set", h, "up"]))?;
        run(self
            .exec("ip")
            .args(["addr", "add", &format!("{}/24", self.ns_ip), "dev", i]))?;
        run(self.exec("ip").args(["link", "set", i, "up"]))?;
        run(self.exec("ip").args(["link", "set", "lo", "up"]))?;
        self.nft(
            "add table inet sylvan\n\
             add chain inet sylvan in { type filter hook input priority 0; policy accept; }\n\
             add chain inet sylvan out { type filter hook output priority 0; policy accept; }",
        )
    }

    /// A command run inside the namespace (`ip netns exec NAME program`).
    pub fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// The namespace's end of the link, as a socket address's IP.
    pub fn ip(&self) -> IpAddr {
        IpAddr::V4(self.ns_ip)
    }

    /// Runs an nftables script (statements one a line) in the namespace.
    fn nft(&self, script: &str) -> Result<(), String> {
        run(self.exec("nft").arg(script))
    }

    /// Drops every packet on the link both ways, inside the namespace:
    /// nothing answers, not even with a reset (the real half-open).
    pub fn blackhole(&self) {
        let i = &self.ns_if;
        self.nft(&format!(
            "add rule inet sylvan in iifname \"{i}\" counter drop\n\
             add rule inet sylvan out oifname \"{i}\" counter drop"
        ))
        .expect("nftables blackhole");
    }

    /// Drops `percent` % of the packets each way, at random.
    pub fn loss(&self, percent: u32) {
        let i = &self.ns_if;
        self.nft(&format!(
            "add rule inet sylvan in iifname \"{i}\" numgen random mod 100 < {percent} counter drop\n\
             add rule inet sylvan out oifname \"{i}\" numgen random mod 100 < {percent} counter drop"
        ))
        .expect("nftables loss");
    }

    /// Packets the fault rules have dropped so far (both ways).
    pub fn dropped(&self) -> u64 {
        let out = self
            .exec("nft")
            .args(["list", "table", "inet", "sylvan"])
            .output()
            .expect("nft list");
        let text = String::from_utf8_lossy(&out.stdout);
        let words: Vec<&str> = text.split_whitespace().collect();
        words
            .windows(2)
            .filter(|w| w[0] == "packets")
            .filter_map(|w| w[1].parse::<u64>().ok())
            .sum()
    }

    /// Removes every fault rule (blackhole, loss).
    pub fn heal(&self) {
        self.nft("flush table inet sylvan").expect("nftables flush");
    }

    /// Sets the namespace's end of the link down (`up == false`) or up:
    /// the cable pulled at the far side. (The test's end stays up, so its
    /// route stays: with it gone, packets would take the default route.)
    pub fn link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        run(self.exec("ip").args(["link", "set", &self.ns_if, state])).expect("ip link set");
    }

    /// Re-runs the test `test` of this test binary inside the namespace
    /// with `CHILD_ENV` set, and waits until it prints its ready line
    /// ([`serve_child`]). The child is killed when the guard drops.
    pub fn spawn_child(&self, test: &str, envs: &[(&str, String)]) -> ChildGuard {
        let exe = std::env::current_exe().expect("test binary path");
        let mut cmd = self.exec(exe.to_str().expect("UTF-8 test binary path"));
        cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &self.name)
            .env("SYLVAN_NETNS_IP", self.ns_ip.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the child test process");
        let stdin = child.stdin.take();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut guard = ChildGuard {
            child,
            stdin,
            addr: String::new(),
        };
        let mut line = String::new();
        loop {
            line.clear();
            // A blocking read before any green thread runs: the child
            // either prints its line or exits (EOF).
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("the child test {test} exited before serving (its stderr is above)");
            }
            // libtest may have printed `test NAME ... ` on the same line.
            if let Some(i) = line.find(READY) {
                guard.addr = line[i + READY.len()..].trim().to_string();
                break;
            }
        }
        // Drain the rest of its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        guard
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace destroys its end of the veth pair, which
        // takes the other end with it; delete that too in case the move
        // into the namespace never happened.
        let _ = run(Command::new("ip").args(["netns", "del", &self.name]));
        let _ = run(Command::new("ip").args(["link", "del", &self.host_if]));
    }
}

/// A child test process inside a namespace; killed on drop.
pub struct ChildGuard {
    child: Child,
    stdin: Option<ChildStdin>,
    /// What the child printed after its ready line (its address).
    pub addr: String,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// In the child: prints the ready line with `addr`, then exits the
/// process as soon as its stdin closes (the parent went away or dropped
/// its guard), so a child never outlives its test.
pub fn serve_child(addr: impl std::fmt::Display) {
    println!("{READY} {addr}");
    std::thread::spawn(|| {
        let mut buf = [0u8; 64];
        while std::io::stdin().read(&mut buf).is_ok_and(|n| n > 0) {}
        std::process::exit(0);
    });
}

/// In the child: the namespace's address.
pub fn child_ip() -> IpAddr {
    std::env::var("SYLVAN_NETNS_IP")
        .expect("SYLVAN_NETNS_IP")
        .parse()
        .expect("an IP")
}
