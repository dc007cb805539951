//! `sylvan::debug::{snapshot, dump_on_signal, admin}`: what a running
//! program shows of itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sylvan::debug::{self, GreenState, HubSnapshot};
use sylvan::sync::Event;

/// This thread's hub in a fresh snapshot.
fn my_hub() -> HubSnapshot {
    let id = debug::stats().hub_id;
    debug::snapshot()
        .hubs
        .into_iter()
        .find(|h| h.id == id)
        .expect("this thread's hub is in the snapshot")
}

/// Where the helpers below block or spawn (`line!()` of the line after).
const WAIT_LINE: u32 = line!() + 2;
fn wait_ev(ev: &Event<()>) -> bool {
    ev.wait().is_ok()
}

const SLEEP_LINE: u32 = line!() + 3;
fn sleep_in_scope() -> bool {
    sylvan::timeout(Duration::from_secs(1800), || {
        sylvan::sleep(Duration::from_secs(3600))
    })
    .is_ok()
}

const SPAWN_LINE: u32 = line!() + 2;
fn spawn_named(name: &str, f: impl FnOnce() -> bool + 'static) -> sylvan::GreenThread<bool> {
    sylvan::Builder::new().name(name).spawn(f).unwrap()
}

/// `file:line:` of `line` in this file.
fn here(line: u32) -> String {
    format!("{}:{line}:", file!())
}

#[test]
fn ten_thousand_green_threads_in_known_states_give_an_exact_snapshot() {
    let ev1: Event<()> = Event::new();
    let ev2: Event<()> = Event::new();
    let mut handles = Vec::new();
    for _ in 0..4000 {
        let ev = ev1.clone();
        handles.push(spawn_named("ev1", move || wait_ev(&ev)));
    }
    let mut sleepers = Vec::new();
    for _ in 0..3000 {
        sleepers.push(sylvan::spawn(sleep_in_scope));
    }
    for _ in 0..1000 {
        let ev = ev2.clone();
        handles.push(spawn_named("ev2", move || wait_ev(&ev)));
    }
    sylvan::yield_now(); // each runs once and parks
    ev2.send(()).unwrap(); // 1000 woken, not yet run: ready
    for _ in 0..2000 {
        handles.push(spawn_named("fresh", || true));
    }

    let hub = my_hub();
    let root = &hub.green_threads[0];
    assert!(root.root);
    assert_eq!(
        root.state,
        GreenState::Running,
        "the root takes the snapshot"
    );
    let greens = &hub.green_threads[1..];
    assert_eq!(greens.len(), 10_000);
    assert_eq!(hub.ready, 3000);
    let count = |name: Option<&str>, st: GreenState| {
        greens
            .iter()
            .filter(|g| g.name.as_deref() == name && g.state == st)
            .count()
    };
    assert_eq!(count(Some("ev1"), GreenState::Parked), 4000);
    assert_eq!(count(None, GreenState::Parked), 3000);
    assert_eq!(count(Some("ev2"), GreenState::Ready), 1000);
    assert_eq!(count(Some("fresh"), GreenState::Ready), 2000);
    for g in greens {
        assert!(!g.root);
        assert_eq!(g.parent, Some(0), "spawned by the root");
        match g.name.as_deref() {
            Some("ev1") => {
                assert!(
                    g.parked_at
                        .as_deref()
                        .unwrap()
                        .starts_with(&here(WAIT_LINE)),
                    "{g:?}"
                );
                assert_eq!((g.deadline, g.deadline_scope), (None, None));
                assert!(g.parked_for.unwrap() < Duration::from_secs(600));
            }
            None => {
                assert!(
                    g.parked_at
                        .as_deref()
                        .unwrap()
                        .starts_with(&here(SLEEP_LINE)),
                    "{g:?}"
                );
                let left = g.deadline.expect("the timeout scope's deadline");
                assert!(left <= Duration::from_secs(1800) && left > Duration::from_secs(1200));
                assert!(
                    g.deadline_scope.is_some(),
                    "the scope set it, not sleep's own"
                );
            }
            Some("ev2") => assert_eq!((g.parked_at.as_deref(), g.parked_for), (None, None)),
            Some("fresh") => {
                assert!(
                    g.spawned_at
                        .as_deref()
                        .unwrap()
                        .starts_with(&here(SPAWN_LINE)),
                    "{g:?}"
                );
                assert!(g.parked_at.is_none());
            }
            other => panic!("unexpected green thread {other:?}"),
        }
    }

    ev1.send(()).unwrap();
    for h in handles {
        assert!(h.join().unwrap());
    }
    for s in &sleepers {
        s.kill();
    }
    for s in sleepers {
        let _ = s.join();
    }
    let after = my_hub();
    assert_eq!(after.green_threads.len(), 1, "only the root is left");
    assert!(after.counters.finished >= 10_000);
    assert!(after.counters.killed >= 3000);
}

#[test]
fn a_green_thread_that_runs_shows_as_running_with_its_parent() {
    let g = sylvan::Builder::new()
        .name("looker")
        .spawn(|| {
            let me = sylvan::current().id().as_u64();
            let inner = sylvan::spawn(my_hub);
            let hub = inner.join().unwrap();
            let (me_seen, inner_seen) = (
                hub.green_threads
                    .iter()
                    .find(|g| g.id == me)
                    .cloned()
                    .unwrap(),
                hub.green_threads
                    .iter()
                    .find(|g| g.state == GreenState::Running)
                    .cloned()
                    .unwrap(),
            );
            (me, me_seen, inner_seen)
        })
        .unwrap();
    let (me, me_seen, inner_seen) = g.join().unwrap();
    assert_eq!(me_seen.state, GreenState::Parked, "parked in join");
    assert_eq!(me_seen.name.as_deref(), Some("looker"));
    assert_eq!(inner_seen.parent, Some(me));
    let root = my_hub().green_threads[0].clone();
    assert_eq!(root.state, GreenState::Running);
}

/// The green threads of `hub` named `name`.
fn named<'a>(hub: &'a HubSnapshot, name: &str) -> Vec<&'a sylvan::debug::GreenSnapshot> {
    hub.green_threads
        .iter()
        .filter(|g| g.name.as_deref() == Some(name))
        .collect()
}

#[test]
fn a_finished_green_thread_is_listed_until_its_handle_is_joined_or_dropped() {
    let kept = spawn_named("kept", || true);
    drop(spawn_named("detached", || true)); // nobody will join this one
    let waited = spawn_named("waited", || true);
    waited.wait().unwrap(); // all three ran, in spawn order
    assert!(kept.is_finished());

    let hub = my_hub();
    for name in ["kept", "waited"] {
        let g = named(&hub, name);
        assert_eq!(g.len(), 1, "{name}: {hub:?}");
        assert_eq!(g[0].state, GreenState::Finished, "{name}");
        assert_eq!((g[0].parked_at.as_deref(), g[0].parked_for), (None, None));
        assert!(
            g[0].spawned_at
                .as_deref()
                .unwrap()
                .starts_with(&here(SPAWN_LINE))
        );
        assert_eq!(g[0].parent, Some(0));
    }
    assert!(named(&hub, "detached").is_empty(), "its handle was dropped");
    assert_eq!(hub.ready, 0);
    assert_eq!((hub.counters.spawned, hub.counters.finished), (3, 3));
    assert_eq!(
        debug::stats().green_threads,
        0,
        "finished ones are not alive"
    );
    let text = debug::snapshot().to_string();
    assert!(text.contains("\"kept\" [finished]:"), "{text}");

    // A green thread spawned now takes no slot a held handle keeps.
    let ev: Event<()> = Event::new();
    let e = ev.clone();
    let later = spawn_named("later", move || wait_ev(&e));
    sylvan::yield_now();
    let hub = my_hub();
    assert_eq!(named(&hub, "kept")[0].state, GreenState::Finished);
    assert_eq!(named(&hub, "waited")[0].state, GreenState::Finished);
    assert_eq!(named(&hub, "later")[0].state, GreenState::Parked);

    assert!(kept.join().unwrap());
    drop(waited);
    let hub = my_hub();
    assert!(named(&hub, "kept").is_empty() && named(&hub, "waited").is_empty());
    assert_eq!(named(&hub, "later")[0].id, later.id().as_u64());
    ev.send(()).unwrap();
    assert!(later.join().unwrap());
    assert_eq!(my_hub().green_threads.len(), 1, "only the root is left");
}

/// Handles kept across `shutdown`: what it unwound, and what had finished,
/// stay listed as finished until their handles go; their slots are not
/// handed to newer green threads meanwhile, nor freed twice.
#[test]
fn handles_kept_across_shutdown_keep_their_slots_until_they_go() {
    let kept = spawn_named("kept", || true);
    kept.wait().unwrap();
    let ev: Event<()> = Event::new();
    let e = ev.clone();
    let unwound = spawn_named("unwound", move || wait_ev(&e));
    sylvan::yield_now();
    sylvan::shutdown();
    let hub = my_hub();
    assert_eq!(named(&hub, "kept")[0].state, GreenState::Finished);
    assert_eq!(named(&hub, "unwound")[0].state, GreenState::Finished);

    let fresh = spawn_named("fresh", move || wait_ev(&ev));
    sylvan::yield_now();
    assert!(kept.join().unwrap(), "the handle still holds the result");
    assert!(matches!(unwound.join(), Err(sylvan::JoinError::Killed)));
    let other = spawn_named("other", || true);
    let hub = my_hub();
    let f = named(&hub, "fresh");
    assert_eq!(f.len(), 1, "{hub:?}");
    assert_eq!(
        (f[0].id, f[0].state),
        (fresh.id().as_u64(), GreenState::Parked)
    );
    assert_eq!(named(&hub, "other")[0].state, GreenState::Ready);
    assert!(named(&hub, "kept").is_empty() && named(&hub, "unwound").is_empty());
    assert!(other.join().unwrap());
    assert_eq!(debug::stats().green_threads, 1);
    fresh.kill();
    assert!(
        !fresh.join().unwrap(),
        "fresh is still woken (killed) and joined"
    );
    assert_eq!(debug::stats().green_threads, 0);
    assert_eq!(my_hub().green_threads.len(), 1, "only the root is left");
}

/// A green thread that never yields: the snapshot, read from another OS
/// thread, shows the hub's lag growing while it runs (at least as long as
/// the spinner has been running), and the histogram has the whole spin
/// once it ends.
#[test]
fn lag_now_covers_a_green_thread_that_runs_without_yielding() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    let work = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let began: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (w, s, b) = (work.clone(), stop.clone(), began.clone());
    let before_hub = Instant::now();
    let hub_thread = std::thread::Builder::new()
        .name("lag-spinner".into())
        .spawn(move || {
            debug::set_blocking_threshold(None);
            let spinner = sylvan::spawn(move || {
                let start = Instant::now();
                *b.lock().unwrap() = Some(start);
                while !s.load(Ordering::Acquire) {
                    w.fetch_add(1, Ordering::Release);
                }
                start.elapsed()
            });
            let spun = spinner.join().unwrap();
            sylvan::yield_now(); // a turn of the loop: the spinning pass is counted
            let id = debug::stats().hub_id;
            let hub = debug::snapshot()
                .hubs
                .into_iter()
                .find(|h| h.id == id)
                .unwrap();
            (spun, hub)
        })
        .unwrap();
    // A fixed amount of work done by the spinner, not a wall-clock wait.
    let hang_guard = Instant::now();
    while work.load(Ordering::Acquire) < 5_000_000 {
        assert!(
            hang_guard.elapsed() < Duration::from_secs(300),
            "the spinner made no progress"
        );
        std::thread::yield_now();
    }
    let spinning_for = began
        .lock()
        .unwrap()
        .expect("set before any work")
        .elapsed();
    let snap = debug::snapshot();
    let upper = before_hub.elapsed();
    stop.store(true, Ordering::Release);
    let hub = snap
        .hubs
        .iter()
        .find(|h| h.thread == "lag-spinner")
        .expect("the spinner's hub");
    assert_eq!(hub.green_threads[1].state, GreenState::Running, "{hub:?}");
    assert!(
        hub.lag_now >= spinning_for,
        "lag now {:?} < the spinner's time so far {spinning_for:?}",
        hub.lag_now
    );
    assert!(hub.lag_now <= upper, "{:?} > {upper:?}", hub.lag_now);
    assert!(snap.to_prometheus().contains(&format!(
        "sylvan_scheduling_lag_now_seconds{{hub=\"{}\",thread=\"lag-spinner\"}} {}",
        hub.id,
        hub.lag_now.as_secs_f64()
    )));

    let (spun, after) = hub_thread.join().unwrap();
    let spun = Duration::from_micros(spun.as_micros() as u64); // samples are whole µs
    assert!(after.lag.sum >= spun, "{:?} < {spun:?}", after.lag.sum);
    let top = after.lag.counts.iter().rposition(|&n| n > 0).unwrap();
    assert!(
        after.lag.bounds.get(top).is_none_or(|&b| b >= spun),
        "the longest sample's bucket {top} is below the spin {spun:?}: {:?}",
        after.lag
    );
    assert_eq!(after.lag_now, Duration::ZERO, "nothing runs or waits now");
}

/// The JSON follows the schema `Snapshot::to_json` documents.
#[test]
fn json_follows_the_documented_schema() {
    let ev: Event<()> = Event::new();
    let e = ev.clone();
    let g = sylvan::Builder::new()
        .name("w\"q")
        .spawn(move || e.wait())
        .unwrap();
    sylvan::yield_now();
    let v: serde_json::Value = serde_json::from_str(&debug::snapshot().to_json()).unwrap();
    assert!(v["pid"].is_u64());
    for k in ["threads", "busy", "queued", "size"] {
        assert!(v["tpool"][k].is_u64(), "tpool.{k}");
    }
    for d in v["descriptors"].as_array().unwrap() {
        assert!(d["fd"].is_i64() && d["kind"].is_string() && d["target"].is_string());
        assert!(d["local"].is_null() || d["local"].is_string());
        assert!(d["peer"].is_null() || d["peer"].is_string());
    }
    let id = debug::stats().hub_id;
    let hub = v["hubs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == id)
        .unwrap();
    for k in ["id", "ready", "timers", "io_sources"] {
        assert!(hub[k].is_u64(), "hub.{k}");
    }
    assert!(hub["thread"].is_string());
    assert!(hub["next_timer"].is_null() || hub["next_timer"].is_f64());
    assert!(hub["lag_now"].is_number());
    for k in [
        "switches",
        "spawned",
        "finished",
        "panicked",
        "killed",
        "watchdog_warnings",
    ] {
        assert!(hub["counters"][k].is_u64(), "counters.{k}");
    }
    let bounds = hub["lag"]["bounds"].as_array().unwrap();
    let counts = hub["lag"]["counts"].as_array().unwrap();
    assert_eq!(counts.len(), bounds.len() + 1);
    assert!(hub["lag"]["sum"].is_number());
    let threads = hub["green_threads"].as_array().unwrap();
    assert_eq!(threads[0]["root"], true);
    let w = threads.iter().find(|t| t["name"] == "w\"q").unwrap();
    assert_eq!(w["state"], "parked");
    assert_eq!(w["id"], g.id().as_u64());
    assert!(w["parked_at"].as_str().unwrap().contains("introspect.rs:"));
    assert!(w["parked_for"].is_number());
    assert!(w["deadline"].is_null() && w["deadline_scope"].is_null());
    assert!(w["spawned_at"].as_str().unwrap().contains("introspect.rs:"));
    assert_eq!(w["parent"], 0);
    assert!(w["backtrace"].is_null());
    ev.send(()).unwrap();
    g.join().unwrap().unwrap();
}

/// One HTTP/1.1 GET, whole response as (status, body).
fn get(addr: std::net::SocketAddr, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut c = sylvan::connect(addr).unwrap();
    let auth = auth.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

fn python_has_prometheus_client() {
    let ok = Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "this test needs Python's prometheus_client: python3 -m pip install prometheus-client \
         (or apt-get install python3-prometheus-client)"
    );
}

#[test]
fn metrics_parse_with_prometheus_clients_parser() {
    python_has_prometheus_client();
    let ev: Event<()> = Event::new();
    let gs: Vec<_> = (0..7)
        .map(|_| {
            let e = ev.clone();
            sylvan::spawn(move || e.wait())
        })
        .collect();
    sylvan::yield_now();
    let admin = debug::admin::serve("127.0.0.1:0".parse().unwrap()).unwrap();
    let (status, body) = get(admin.local_addr(), "/metrics", None);
    assert_eq!(status, 200);
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
hub = sys.argv[1]
fams = {f.name: f for f in text_string_to_metric_families(sys.stdin.read())}
for name, kind in [("sylvan_green_threads", "gauge"), ("sylvan_scheduling_lag_seconds", "histogram"),
                   ("sylvan_spawned", "counter"), ("sylvan_finished", "counter"),
                   ("sylvan_panicked", "counter"), ("sylvan_watchdog_warnings", "counter"),
                   ("sylvan_tpool_threads", "gauge"), ("sylvan_open_fds", "gauge")]:
    assert fams[name].type == kind, (name, fams[name].type)
parked = [s.value for s in fams["sylvan_green_threads"].samples
          if s.labels["hub"] == hub and s.labels["state"] == "parked"]
print(int(parked[0]))
"#;
    let mut py = Command::new("python3")
        .args(["-c", script, &debug::stats().hub_id.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser rejected:\n{body}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");
    ev.send(()).unwrap();
    for g in gs {
        g.join().unwrap().unwrap();
    }
}

#[test]
fn admin_serves_threads_hubs_and_the_page() {
    let admin = debug::admin::Builder::new()
        .json("things", || r#"[{"name":"a"}]"#.to_string())
        .serve("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let addr = admin.local_addr();
    let (s, text) = get(addr, "/threads", None);
    assert_eq!(s, 200);
    assert!(text.contains("root context ["), "{text}");
    let (s, json) = get(addr, "/threads?format=json", None);
    assert_eq!(s, 200);
    serde_json::from_str::<serde_json::Value>(&json).unwrap();
    let (s, hubs) = get(addr, "/hubs", None);
    assert_eq!(s, 200);
    let hubs: serde_json::Value = serde_json::from_str(&hubs).unwrap();
    assert!(
        hubs.as_array()
            .unwrap()
            .iter()
            .any(|h| h["thread"] == "sylvan-admin")
    );
    assert_eq!(
        get(addr, "/x/things", None),
        (200, r#"[{"name":"a"}]"#.to_string())
    );
    assert_eq!(get(addr, "/x", None).1, r#"["things"]"#);
    let (s, page) = get(addr, "/", None);
    assert_eq!(s, 200);
    assert!(
        page.contains("<html") && !page.contains("src=\"http"),
        "self-contained"
    );
    assert_eq!(get(addr, "/nope", None).0, 404);
}

#[test]
fn a_non_loopback_admin_address_without_a_token_is_refused() {
    let err = debug::admin::serve("0.0.0.0:0".parse().unwrap()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("token"), "{err}");
    let err = debug::admin::serve("[::]:0".parse().unwrap()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    let admin = debug::admin::Builder::new()
        .token("s3cret")
        .serve("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let addr = admin.local_addr();
    assert_eq!(get(addr, "/metrics", None).0, 401);
    assert_eq!(get(addr, "/metrics", Some("wrong")).0, 401);
    assert_eq!(get(addr, "/metrics", Some("s3cret")).0, 200);
    assert_eq!(get(addr, "/threads?token=s3cret", None).0, 200);
}

#[test]
fn park_backtraces_when_switched_on() {
    debug::set_park_backtraces(true);
    let g = sylvan::spawn(|| sylvan::sleep(Duration::from_secs(60)));
    sylvan::yield_now();
    debug::set_park_backtraces(false);
    let h = my_hub();
    let t = h
        .green_threads
        .iter()
        .find(|t| t.id == g.id().as_u64())
        .unwrap();
    assert!(t.backtrace.as_deref().is_some_and(|b| !b.is_empty()));
    g.kill();
    let _ = g.join();
}

const CHILD: &str = "SYLVAN_INTROSPECT_TEST_CHILD";

/// The child: its only green thread spins without ever yielding; the root
/// waits for it. With `SYLVAN_DUMP_ON_SIGQUIT=1`, SIGQUIT must still
/// print a dump.
fn spinning_child() -> ! {
    let g = sylvan::Builder::new()
        .name("spinner")
        .spawn(|| {
            println!("spinning");
            std::io::stdout().flush().unwrap();
            let mut x = 0u64;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        })
        .unwrap();
    let _ = g.join();
    unreachable!("the spinner never ends");
}

#[test]
fn sigquit_dumps_from_a_child_whose_only_green_thread_spins() {
    if std::env::var_os(CHILD).is_some() {
        spinning_child();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigquit_dumps_from_a_child_whose_only_green_thread_spins",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .env("SYLVAN_DUMP_ON_SIGQUIT", "1")
        .env("SYLVAN_BLOCKING_THRESHOLD_MS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx2.send(("out", line));
        }
    });
    let err = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let _ = tx.send(("err", line));
        }
    });
    let hang_guard = Duration::from_secs(60);
    loop {
        let (_, line) = rx
            .recv_timeout(hang_guard)
            .expect("the child starts spinning");
        if line.contains("spinning") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-QUIT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut dump = Vec::new();
    let found = loop {
        let Ok((_, line)) = rx.recv_timeout(hang_guard) else {
            break false;
        };
        dump.push(line);
        let text = dump.join("\n");
        if text.contains("\"spinner\" [running]") && text.contains("root context [parked") {
            break true;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        found,
        "no dump with the spinning green thread:\n{}",
        dump.join("\n")
    );
    let text = dump.join("\n");
    assert!(text.contains("sylvan dump: pid"), "{text}");
    assert!(
        text.contains("introspect.rs:"),
        "the root parked in join, here: {text}"
    );
}
