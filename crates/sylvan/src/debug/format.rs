//! A [`Snapshot`] as a Go-style text dump, as JSON and as Prometheus text.

use std::fmt::{self, Write as _};
use std::time::Duration;

use super::snapshot::{GreenSnapshot, GreenState, HubSnapshot, Snapshot};

/// `1.25s`, `340ms`, `12µs`: short and readable.
pub(crate) fn human(d: Duration) -> String {
    if d >= Duration::from_secs(60) {
        let s = d.as_secs();
        format!("{}m{:02}s", s / 60, s % 60)
    } else if d >= Duration::from_secs(1) {
        format!("{:.2}s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}µs", d.as_micros())
    }
}

impl fmt::Display for Snapshot {
    /// The Go-style dump: one paragraph per hub, then one per green thread.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "sylvan dump: pid {}, {} hub(s); tpool {} thread(s), {} busy, {} queued",
            self.pid,
            self.hubs.len(),
            self.tpool.threads,
            self.tpool.busy,
            self.tpool.queued
        )?;
        for h in &self.hubs {
            writeln!(f)?;
            write_hub(f, h)?;
        }
        Ok(())
    }
}

fn write_hub(f: &mut fmt::Formatter<'_>, h: &HubSnapshot) -> fmt::Result {
    let c = &h.counters;
    writeln!(
        f,
        "hub {} (thread '{}'): {} green thread(s), {} ready, {} timer(s){}, {} I/O source(s)",
        h.id,
        h.thread,
        h.green_threads.len() - 1,
        h.ready,
        h.timers,
        h.next_timer
            .map(|d| format!(" (next in {})", human(d)))
            .unwrap_or_default(),
        h.io_sources
    )?;
    writeln!(
        f,
        "  switches {}, spawned {}, finished {}, panicked {}, killed {}, watchdog warnings {}",
        c.switches, c.spawned, c.finished, c.panicked, c.killed, c.watchdog_warnings
    )?;
    if !h.lag_now.is_zero() {
        writeln!(
            f,
            "  lag now {} (since the hub's last turn)",
            human(h.lag_now)
        )?;
    }
    for g in &h.green_threads {
        writeln!(f)?;
        write_green(f, g)?;
    }
    Ok(())
}

fn write_green(f: &mut fmt::Formatter<'_>, g: &GreenSnapshot) -> fmt::Result {
    if g.root {
        write!(f, "root context")?;
    } else {
        write!(f, "green thread {}", g.id)?;
        if let Some(n) = &g.name {
            write!(f, " \"{n}\"")?;
        }
    }
    write!(f, " [{}", g.state)?;
    if let Some(d) = g.parked_for {
        write!(f, " {}", human(d))?;
    }
    if let Some(d) = g.deadline {
        write!(f, ", deadline in {}", human(d))?;
        if let Some(s) = g.deadline_scope {
            write!(f, " (scope {s})")?;
        }
    }
    writeln!(f, "]:")?;
    match (&g.parked_at, g.state) {
        (Some(at), _) => writeln!(f, "    parked at {at}")?,
        (None, GreenState::Running) => writeln!(f, "    running now")?,
        (None, GreenState::Finished) => writeln!(f, "    finished, not joined yet")?,
        _ => {}
    }
    if let Some(at) = &g.spawned_at {
        write!(f, "    spawned at {at}")?;
        match g.parent {
            Some(0) => writeln!(f, " by the root context")?,
            Some(p) => writeln!(f, " by green thread {p}")?,
            None => writeln!(f)?,
        }
    }
    if let Some(bt) = &g.backtrace {
        for line in bt.lines() {
            writeln!(f, "      {line}")?;
        }
    }
    Ok(())
}

/// Appends `s` as a JSON string.
pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn opt_str(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => json_str(out, s),
        None => out.push_str("null"),
    }
}

fn opt_num(out: &mut String, n: Option<impl fmt::Display>) {
    match n {
        Some(n) => {
            let _ = write!(out, "{n}");
        }
        None => out.push_str("null"),
    }
}

fn opt_secs(out: &mut String, d: Option<Duration>) {
    opt_num(out, d.map(|d| d.as_secs_f64()));
}

impl Snapshot {
    /// The snapshot as JSON, in this schema (durations in seconds, as
    /// numbers; absent values `null`):
    ///
    /// ```text
    /// {
    ///   "pid": u32,
    ///   "tpool": {"threads": n, "busy": n, "queued": n, "size": n},
    ///   "descriptors": [{"fd": n, "kind": str, "target": str,
    ///                    "local": str|null, "peer": str|null}],
    ///   "hubs": [{
    ///     "id": u64, "thread": str, "ready": n, "timers": n,
    ///     "next_timer": secs|null, "io_sources": n, "lag_now": secs,
    ///     "counters": {"switches": n, "spawned": n, "finished": n,
    ///                  "panicked": n, "killed": n, "watchdog_warnings": n},
    ///     "lag": {"bounds": [secs], "counts": [n], "sum": secs},
    ///     "green_threads": [{
    ///       "id": u64, "root": bool, "name": str|null,
    ///       "state": "running"|"ready"|"parked"|"finished",
    ///       "parked_at": "file:line:col"|null, "parked_for": secs|null,
    ///       "deadline": secs|null, "deadline_scope": u64|null,
    ///       "spawned_at": "file:line:col"|null, "parent": u64|null,
    ///       "backtrace": str|null
    ///     }]
    ///   }]
    /// }
    /// ```
    ///
    /// `lag.counts` has one more entry than `lag.bounds` (the bucket past
    /// the last bound); the root context comes first in `green_threads`.
    ///
    /// # Examples
    ///
    /// ```
    /// let json = sylvan::debug::snapshot().to_json();
    /// assert!(json.contains("\"green_threads\""));
    /// ```
    pub fn to_json(&self) -> String {
        let mut o = String::with_capacity(256 + 256 * self.hubs.len());
        let t = &self.tpool;
        let _ = write!(
            o,
            "{{\"pid\":{},\"tpool\":{{\"threads\":{},\"busy\":{},\"queued\":{},\"size\":{}}},\"descriptors\":[",
            self.pid, t.threads, t.busy, t.queued, t.size
        );
        for (i, d) in self.descriptors.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{{\"fd\":{},\"kind\":", d.fd);
            json_str(&mut o, d.kind);
            o.push_str(",\"target\":");
            json_str(&mut o, &d.target);
            o.push_str(",\"local\":");
            opt_str(&mut o, d.local.as_deref());
            o.push_str(",\"peer\":");
            opt_str(&mut o, d.peer.as_deref());
            o.push('}');
        }
        o.push_str("],\"hubs\":[");
        for (i, h) in self.hubs.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            hub_json(&mut o, h);
        }
        o.push_str("]}");
        o
    }
}

fn hub_json(o: &mut String, h: &HubSnapshot) {
    let _ = write!(o, "{{\"id\":{},\"thread\":", h.id);
    json_str(o, &h.thread);
    let _ = write!(
        o,
        ",\"ready\":{},\"timers\":{},\"next_timer\":",
        h.ready, h.timers
    );
    opt_secs(o, h.next_timer);
    let _ = write!(o, ",\"lag_now\":{}", h.lag_now.as_secs_f64());
    let c = &h.counters;
    let _ = write!(
        o,
        ",\"io_sources\":{},\"counters\":{{\"switches\":{},\"spawned\":{},\"finished\":{},\"panicked\":{},\"killed\":{},\"watchdog_warnings\":{}}}",
        h.io_sources, c.switches, c.spawned, c.finished, c.panicked, c.killed, c.watchdog_warnings
    );
    o.push_str(",\"lag\":{\"bounds\":[");
    for (i, b) in h.lag.bounds.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "{}", b.as_secs_f64());
    }
    o.push_str("],\"counts\":[");
    for (i, n) in h.lag.counts.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "{n}");
    }
    let _ = write!(
        o,
        "],\"sum\":{}}},\"green_threads\":[",
        h.lag.sum.as_secs_f64()
    );
    for (i, g) in h.green_threads.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        let _ = write!(o, "{{\"id\":{},\"root\":{},\"name\":", g.id, g.root);
        opt_str(o, g.name.as_deref());
        let _ = write!(o, ",\"state\":\"{}\",\"parked_at\":", g.state);
        opt_str(o, g.parked_at.as_deref());
        o.push_str(",\"parked_for\":");
        opt_secs(o, g.parked_for);
        o.push_str(",\"deadline\":");
        opt_secs(o, g.deadline);
        o.push_str(",\"deadline_scope\":");
        opt_num(o, g.deadline_scope);
        o.push_str(",\"spawned_at\":");
        opt_str(o, g.spawned_at.as_deref());
        o.push_str(",\"parent\":");
        opt_num(o, g.parent);
        o.push_str(",\"backtrace\":");
        opt_str(o, g.backtrace.as_deref());
        o.push('}');
    }
    o.push_str("]}");
}

/// Escapes a Prometheus label value.
fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Snapshot {
    /// The snapshot as Prometheus text exposition format (version 0.0.4):
    /// per hub (labels `hub`, `thread`), green threads by state, the ready
    /// queue, timers, I/O sources, the counters and the scheduling-lag
    /// histogram; the tpool; open descriptors by kind.
    ///
    /// | metric | type |
    /// |---|---|
    /// | `sylvan_green_threads{hub,thread,state}` | gauge |
    /// | `sylvan_ready{hub,thread}`, `sylvan_timers`, `sylvan_io_sources` | gauge |
    /// | `sylvan_switches_total`, `sylvan_spawned_total`, `sylvan_finished_total`, `sylvan_panicked_total`, `sylvan_killed_total`, `sylvan_watchdog_warnings_total` | counter |
    /// | `sylvan_scheduling_lag_seconds` | histogram |
    /// | `sylvan_scheduling_lag_now_seconds{hub,thread}` | gauge |
    /// | `sylvan_tpool_threads`, `sylvan_tpool_busy`, `sylvan_tpool_queued`, `sylvan_tpool_size` | gauge |
    /// | `sylvan_open_fds{kind}` | gauge |
    ///
    /// # Examples
    ///
    /// ```
    /// let text = sylvan::debug::snapshot().to_prometheus();
    /// assert!(text.contains("# TYPE sylvan_scheduling_lag_seconds histogram"));
    /// ```
    pub fn to_prometheus(&self) -> String {
        let mut o = String::new();
        let labels: Vec<String> = self
            .hubs
            .iter()
            .map(|h| format!("hub=\"{}\",thread=\"{}\"", h.id, label(&h.thread)))
            .collect();
        let _ = writeln!(
            o,
            "# HELP sylvan_green_threads Green threads by state (root contexts excluded).\n# TYPE sylvan_green_threads gauge"
        );
        for (h, l) in self.hubs.iter().zip(&labels) {
            for s in [
                GreenState::Running,
                GreenState::Ready,
                GreenState::Parked,
                GreenState::Finished,
            ] {
                let n = h
                    .green_threads
                    .iter()
                    .filter(|g| !g.root && g.state == s)
                    .count();
                let _ = writeln!(o, "sylvan_green_threads{{{l},state=\"{s}\"}} {n}");
            }
        }
        type Metric = (
            &'static str,
            &'static str,
            &'static str,
            fn(&HubSnapshot) -> u64,
        );
        let per_hub: [Metric; 9] = [
            (
                "sylvan_ready",
                "gauge",
                "Green threads ready to run.",
                |h| h.ready as u64,
            ),
            ("sylvan_timers", "gauge", "Armed timers.", |h| h.timers),
            (
                "sylvan_io_sources",
                "gauge",
                "I/O sources registered with the hub.",
                |h| h.io_sources,
            ),
            (
                "sylvan_switches_total",
                "counter",
                "Switches into a green thread.",
                |h| h.counters.switches,
            ),
            (
                "sylvan_spawned_total",
                "counter",
                "Green threads spawned.",
                |h| h.counters.spawned,
            ),
            (
                "sylvan_finished_total",
                "counter",
                "Green threads finished.",
                |h| h.counters.finished,
            ),
            (
                "sylvan_panicked_total",
                "counter",
                "Green threads that panicked.",
                |h| h.counters.panicked,
            ),
            (
                "sylvan_killed_total",
                "counter",
                "Green threads killed.",
                |h| h.counters.killed,
            ),
            (
                "sylvan_watchdog_warnings_total",
                "counter",
                "Blocking warnings logged by the watchdog.",
                |h| h.counters.watchdog_warnings,
            ),
        ];
        for (name, kind, help, f) in per_hub {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (h, l) in self.hubs.iter().zip(&labels) {
                let _ = writeln!(o, "{name}{{{l}}} {}", f(h));
            }
        }
        let _ = writeln!(
            o,
            "# HELP sylvan_scheduling_lag_seconds Per loop pass: time from the poll that readied green threads to the next poll.\n# TYPE sylvan_scheduling_lag_seconds histogram"
        );
        for (h, l) in self.hubs.iter().zip(&labels) {
            let mut cum = 0;
            for (i, n) in h.lag.counts.iter().enumerate() {
                cum += n;
                let le = match h.lag.bounds.get(i) {
                    Some(b) => format!("{}", b.as_secs_f64()),
                    None => "+Inf".to_string(),
                };
                let _ = writeln!(
                    o,
                    "sylvan_scheduling_lag_seconds_bucket{{{l},le=\"{le}\"}} {cum}"
                );
            }
            let _ = writeln!(
                o,
                "sylvan_scheduling_lag_seconds_sum{{{l}}} {}\nsylvan_scheduling_lag_seconds_count{{{l}}} {cum}",
                h.lag.sum.as_secs_f64()
            );
        }
        let _ = writeln!(
            o,
            "# HELP sylvan_scheduling_lag_now_seconds Time since the hub's loop last took its turn (I/O, timers, wakes from other threads), while a green thread runs or is ready (0 otherwise).\n# TYPE sylvan_scheduling_lag_now_seconds gauge"
        );
        for (h, l) in self.hubs.iter().zip(&labels) {
            let _ = writeln!(
                o,
                "sylvan_scheduling_lag_now_seconds{{{l}}} {}",
                h.lag_now.as_secs_f64()
            );
        }
        let t = &self.tpool;
        for (name, help, v) in [
            ("sylvan_tpool_threads", "tpool threads started.", t.threads),
            ("sylvan_tpool_busy", "tpool threads running a job.", t.busy),
            (
                "sylvan_tpool_queued",
                "tpool jobs waiting for a thread.",
                t.queued,
            ),
            ("sylvan_tpool_size", "Most tpool threads at once.", t.size),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let _ = writeln!(
            o,
            "# HELP sylvan_open_fds Open descriptors of the process by kind.\n# TYPE sylvan_open_fds gauge"
        );
        let mut kinds: Vec<&str> = self.descriptors.iter().map(|d| d.kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for k in kinds {
            let n = self.descriptors.iter().filter(|d| d.kind == k).count();
            let _ = writeln!(o, "sylvan_open_fds{{kind=\"{k}\"}} {n}");
        }
        o
    }
}
