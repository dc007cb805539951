//! The demo's live status and final report.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Settings;
use super::client::{Log, Outcome};
use super::script::FAULTS;
use crate::proxy::Stats;

/// The one-screen status, recomputed every second.
pub struct Status {
    start: Instant,
    seen: usize,
    last: Instant,
}

impl Status {
    pub fn new(start: Instant) -> Status {
        Status {
            start,
            seen: 0,
            last: start,
        }
    }

    /// The status screen for the interval since the last tick.
    pub fn tick(
        &mut self,
        log: &Log,
        reconnects: u64,
        proxy: &Stats,
        faults: &[&str],
        _next: usize,
    ) -> String {
        let outcomes = log.outcomes.borrow();
        let new = &outcomes[self.seen.min(outcomes.len())..];
        let secs = self.last.elapsed().as_secs_f64().max(1e-3);
        let mut lat: Vec<u64> = Vec::new();
        let mut errors = 0;
        for (_, o) in new {
            match o {
                Outcome::Ok { latency, .. } => lat.push(latency.as_micros() as u64),
                Outcome::Failed { .. } => errors += 1,
            }
        }
        lat.sort_unstable();
        let p99 = percentile(&lat, 0.99) as f64 / 1000.0;
        let (ok_total, failed_total) = outcomes.iter().fold((0, 0), |(a, b), (_, o)| match o {
            Outcome::Ok { .. } => (a + 1, b),
            Outcome::Failed { .. } => (a, b + 1),
        });
        self.seen = outcomes.len();
        self.last = Instant::now();
        let mut s = String::new();
        let _ = writeln!(
            s,
            "t={:5.1}s  {:7.0} req/s  {:5.0} errors/s  p99 {:7.1} ms  reconnects {reconnects}  faults: {}",
            self.start.elapsed().as_secs_f64(),
            lat.len() as f64 / secs,
            errors as f64 / secs,
            p99,
            if faults.is_empty() {
                "none".to_string()
            } else {
                faults.join(", ")
            }
        );
        let _ = writeln!(
            s,
            "sent {}  succeeded {ok_total}  failed {failed_total}",
            log.next_id.get()
        );
        let _ = writeln!(
            s,
            "proxy: {} active connections, {} retries",
            proxy.connections_active, proxy.connect_retries
        );
        for u in &proxy.upstreams {
            let _ = writeln!(
                s,
                "  upstream {:<21} {:<8} {:>4} conns  {:>5} connect failures  ejected {} ms",
                u.address, u.state, u.connections_active, u.connect_failures, u.ejected_ms
            );
        }
        s
    }
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Latency summary in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One second of the run.
#[derive(Debug, Serialize)]
pub struct Point {
    pub t: f64,
    pub rps: f64,
    pub errors: u64,
    pub p99_ms: f64,
}

/// A fault as it happened.
#[derive(Debug, Serialize)]
pub struct FaultReport {
    pub name: &'static str,
    pub start_s: f64,
    pub end_s: f64,
    /// Whether its effect showed in the results.
    pub observed: bool,
    /// What showed it.
    pub evidence: String,
}

/// The final report.
#[derive(Debug, Serialize)]
pub struct Report {
    pub duration_s: f64,
    pub clients: usize,
    pub sent: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub failures_by_error: BTreeMap<String, u64>,
    /// Succeeded for the client but never executed by a backend, or never
    /// answered at all: must be 0.
    pub lost: u64,
    /// Executed by backends more than once: must be 0.
    pub duplicated: u64,
    pub reconnects: u64,
    pub latency: Latency,
    pub faults: Vec<FaultReport>,
    pub timeline: Vec<Point>,
}

impl Report {
    pub fn build(
        args: &Settings,
        start: Instant,
        log: &Log,
        receipts: &HashMap<u64, u32>,
        reconnects: u64,
        applied: &[Option<(f64, f64)>],
        spike: Duration,
    ) -> Report {
        let outcomes = log.outcomes.borrow();
        let sent = log.next_id.get();
        let mut lat: Vec<u64> = Vec::new();
        let mut failures_by_error = BTreeMap::new();
        let mut lost = sent.saturating_sub(outcomes.len() as u64);
        for (_, o) in outcomes.iter() {
            match o {
                Outcome::Ok { id, latency, .. } => {
                    lat.push(latency.as_micros() as u64);
                    if receipts.get(id).copied().unwrap_or(0) == 0 {
                        lost += 1;
                    }
                }
                Outcome::Failed { error, .. } => {
                    *failures_by_error.entry(error.clone()).or_insert(0) += 1
                }
            }
        }
        let duplicated = receipts.values().filter(|&&n| n > 1).count() as u64;
        let succeeded = lat.len() as u64;
        lat.sort_unstable();
        let elapsed = start.elapsed().as_secs_f64();
        let ms = |us: u64| us as f64 / 1000.0;
        // The timeline, one point per second.
        // Whole seconds only: a partial last bucket would read as a drop.
        let buckets = elapsed.floor().max(1.0) as usize;
        let mut per: Vec<(Vec<u64>, u64)> = vec![(Vec::new(), 0); buckets];
        for (at, o) in outcomes.iter() {
            let b = at.duration_since(start).as_secs_f64() as usize;
            if b >= buckets {
                continue;
            }
            match o {
                Outcome::Ok { latency, .. } => per[b].0.push(latency.as_micros() as u64),
                Outcome::Failed { .. } => per[b].1 += 1,
            }
        }
        let timeline = per
            .into_iter()
            .enumerate()
            .map(|(i, (mut l, errors))| {
                l.sort_unstable();
                Point {
                    t: i as f64 + 1.0,
                    rps: l.len() as f64,
                    errors,
                    p99_ms: ms(percentile(&l, 0.99)),
                }
            })
            .collect();
        let faults = FAULTS
            .iter()
            .zip(applied)
            .map(|(f, a)| {
                let (s, e) = a.unwrap_or((0.0, 0.0));
                let (observed, evidence) = observe(f.name, start, &outcomes, s, e, spike);
                FaultReport {
                    name: f.name,
                    start_s: s,
                    end_s: e,
                    observed: a.is_some() && observed,
                    evidence,
                }
            })
            .collect();
        Report {
            duration_s: args.duration.as_secs_f64(),
            clients: args.clients,
            sent,
            succeeded,
            failed: outcomes.len() as u64 - succeeded,
            failures_by_error,
            lost,
            duplicated,
            reconnects,
            latency: Latency {
                p50_ms: ms(percentile(&lat, 0.5)),
                p99_ms: ms(percentile(&lat, 0.99)),
                max_ms: ms(lat.last().copied().unwrap_or(0)),
            },
            faults,
            timeline,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nsylvan demo report ({:.0} s, {} clients)",
            self.duration_s, self.clients
        );
        let _ = writeln!(s, "  requests sent       {}", self.sent);
        let _ = writeln!(s, "  succeeded           {}", self.succeeded);
        let _ = writeln!(s, "  failed (clear error) {}", self.failed);
        for (k, v) in &self.failures_by_error {
            let _ = writeln!(s, "      {k:<18} {v}");
        }
        let _ = writeln!(s, "  lost                {}  (must be 0)", self.lost);
        let _ = writeln!(s, "  duplicated          {}  (must be 0)", self.duplicated);
        let _ = writeln!(s, "  reconnects          {}", self.reconnects);
        let _ = writeln!(
            s,
            "  latency             p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            self.latency.p50_ms, self.latency.p99_ms, self.latency.max_ms
        );
        let _ = writeln!(s, "  faults:");
        for f in &self.faults {
            let _ = writeln!(
                s,
                "    {:<28} {:5.1}s-{:5.1}s  {}  {}",
                f.name,
                f.start_s,
                f.end_s,
                if f.observed {
                    "observed"
                } else {
                    "NOT observed"
                },
                f.evidence
            );
        }
        s
    }
}

/// Whether a fault's effect shows in the outcomes of its window.
fn observe(
    name: &str,
    start: Instant,
    outcomes: &[(Instant, Outcome)],
    s: f64,
    e: f64,
    spike: Duration,
) -> (bool, String) {
    let within = |from: f64, to: f64| {
        outcomes.iter().filter(move |(at, _)| {
            let t = at.duration_since(start).as_secs_f64();
            t >= from && t <= to
        })
    };
    let served_by = |b: usize, from: f64, to: f64| {
        within(from, to)
            .filter(|(_, o)| matches!(o, Outcome::Ok { backend, .. } if *backend == b))
            .count()
    };
    let failures = |from: f64, to: f64| {
        within(from, to)
            .filter(|(_, o)| matches!(o, Outcome::Failed { .. }))
            .count()
    };
    match name {
        n if n.contains("killed") => {
            // Give in-flight requests a moment, then backend 1 must serve
            // nothing until it restarts, and must serve again afterwards.
            let during = served_by(1, s + 0.3, e);
            let after = served_by(1, e, f64::MAX);
            (
                during == 0 && after > 0,
                format!("backend 1 served {during} requests while down, {after} after restarting"),
            )
        }
        n if n.contains("blackholed") => {
            let f = failures(s, e + 1.5);
            (f > 0, format!("{f} requests timed out or failed"))
        }
        n if n.contains("latency") => {
            let slow = within(s, e + 1.0)
                .filter(|(_, o)| matches!(o, Outcome::Ok { backend: 3, latency, .. } if *latency >= spike))
                .count();
            (
                slow > 0,
                format!(
                    "{slow} requests to backend 3 took at least {} ms",
                    spike.as_millis()
                ),
            )
        }
        _ => {
            let f = failures(s, e + 0.5);
            (f > 0, format!("{f} requests failed on reset connections"))
        }
    }
}
