//! Network namespaces for the tests of `tests/netns*.rs`: each [`NetNs`]
//! is a fresh namespace joined to the test's own by a veth pair, with an
//! address on each end, and the kernel's faults on demand: a true
//! blackhole (nftables DROP both ways inside the namespace, so no RST is
//! ever sent), random packet loss (nftables `numgen`), and the link set
//! down. Everything is removed when the `NetNs` drops, on every path
//! (a test that fails unwinds through it); what a test process killed
//! outright leaves behind is removed by the next run's first `NetNs`.
//! Names carry the process id, and each link's /24 is claimed through the
//! kernel, so tests in parallel and overlapping runs never collide.
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
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Once;
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
    /// Holds the link's /24 for this process (see [`claim_subnet`]);
    /// released when the `NetNs` drops, after the namespace is gone.
    _claim: UnixListener,
}

/// How many /24s the links are taken from: 10.100.0.0 to 10.199.255.0.
const SUBNETS: u32 = 100 * 256;

/// The first address of subnet `k`: 10.(100 + k / 256).(k % 256).0.
fn subnet(k: u32) -> [u8; 3] {
    [10, (100 + k / 256) as u8, (k % 256) as u8]
}

/// Claims a /24 no other live process is using for a link, starting the
/// search at `start`: the claim is an abstract Unix socket named after
/// the subnet, which the kernel gives to one process at a time and frees
/// when the process exits however it exits, so parallel tests and
/// overlapping test runs never put two links on one subnet (their routes
/// would cross). A subnet still on a link left by a run that was killed
/// before its `Drop` ran has that link removed first.
fn claim_subnet(start: u32) -> (u32, UnixListener) {
    for i in 0..SUBNETS {
        let k = (start + i) % SUBNETS;
        let name = format!("sylvan-netns-subnet-{k}");
        let Ok(addr) = SocketAddr::from_abstract_name(name.as_bytes()) else {
            continue;
        };
        let Ok(claim) = UnixListener::bind_addr(&addr) else {
            continue; // another live NetNs has it
        };
        let [a, b, c] = subnet(k);
        let out = Command::new("ip")
            .args([
                "-o",
                "-4",
                "addr",
                "show",
                "to",
                &format!("{a}.{b}.{c}.0/24"),
            ])
            .output()
            .expect("ip addr show");
        // `3: s1a2bn0h    inet 10.1.2.1/24 ...`: the interface's name,
        // with `@peer` for a veth.
        let users: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect();
        if users.iter().any(|n| !is_our_link(n)) {
            continue; // the machine's own network: not ours to touch
        }
        for n in users {
            let _ = run(Command::new("ip").args(["link", "del", &n]));
        }
        return (k, claim);
    }
    panic!("every test subnet in 10.100.0.0/16-10.199.255.0/24 is in use");
}

/// The process id in a name a `NetNs` gave: `s<pid in hex>n<counter>`
/// followed by `suffix` (`h` for the test's end of a link).
fn owner(name: &str, suffix: &str) -> Option<u32> {
    let rest = name.strip_prefix('s')?.strip_suffix(suffix)?;
    let (pid, n) = rest.split_once('n')?;
    n.parse::<u32>().ok()?;
    u32::from_str_radix(pid, 16).ok()
}

/// Whether `name` is the test's end of a link a `NetNs` made.
fn is_our_link(name: &str) -> bool {
    owner(name, "h").is_some()
}

/// Whether the process that made a name is gone.
fn dead(pid: u32) -> bool {
    !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Removes the namespaces (with the processes left in them) and links
/// that a test process which no longer exists made and could not remove:
/// one killed before its `Drop` ran. (A namespace outlives `ip netns del`
/// while a socket in it is still retransmitting into a blackhole, and so
/// does its link: that is deleted by name.) Runs once per process.
fn sweep_stale() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let list = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        for line in list(&["netns", "list"]).lines() {
            let Some(name) = line.split_whitespace().next() else {
                continue;
            };
            if !name
                .strip_prefix("sylvan-")
                .and_then(|n| owner(n, ""))
                .is_some_and(dead)
            {
                continue;
            }
            // The shell's own `kill`: a bare Debian has no /bin/kill.
            let pids = list(&["netns", "pids", name]);
            let _ = Command::new("sh")
                .args(["-c", "[ $# = 0 ] || kill -9 \"$@\"", "sh"])
                .args(pids.split_whitespace())
                .status();
            let _ = run(Command::new("ip").args(["netns", "del", name]));
        }
        // `3: s1a2bn0h@if2: <...`
        for line in list(&["-o", "link"]).lines() {
            let Some(name) = line.split_whitespace().nth(1) else {
                continue;
            };
            let name = name.trim_end_matches(':');
            let name = name.split('@').next().unwrap_or(name);
            if owner(name, "h").is_some_and(dead) {
                let _ = run(Command::new("ip").args(["link", "del", name]));
            }
        }
    });
}

impl NetNs {
    /// Creates the namespace, the link and its addresses, with an empty
    /// nftables table `inet sylvan` (chains `in` and `out`) for faults.
    /// Names carry the process id and a counter (`sylvan-s<pid>n<n>`), and
    /// each link gets a /24 of its own, so tests in parallel and
    /// overlapping runs never meet.
    pub fn new() -> NetNs {
        require();
        sweep_stale();
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let base = format!("s{pid:x}n{n}");
        let (k, claim) = claim_subnet(pid.wrapping_mul(97).wrapping_add(n) % SUBNETS);
        let [a, b, c] = subnet(k);
        let ns = NetNs {
            name: format!("sylvan-{base}"),
            host_if: format!("{base}h"),
            ns_if: format!("{base}i"),
            host_ip: Ipv4Addr::new(a, b, c, 1),
            ns_ip: Ipv4Addr::new(a, b, c, 2),
            _claim: claim,
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

    /// The test's end of the link.
    pub fn host_if(&self) -> &str {
        &self.host_if
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

impl ChildGuard {
    /// The child's process id (`ip netns exec` execs the test binary in
    /// its own process).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
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
