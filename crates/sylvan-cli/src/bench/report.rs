//! The report of a load run: printed for people, `--json` for programs,
//! `--plot` as an SVG of throughput and latency over time.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::record::Recorder;

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Smallest.
    pub min: f64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        if h.is_empty() {
            return Latency {
                min: 0.0,
                mean: 0.0,
                stdev: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
            };
        }
        Latency {
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            stdev: h.stdev() / 1000.0,
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// One interval of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Seconds from the start to the interval's end.
    pub t: f64,
    /// Requests completed in it.
    pub requests: u64,
    /// Requests per second in it.
    pub rps: f64,
    /// Failed requests in it.
    pub errors: u64,
    /// Median latency in it, µs.
    pub p50_us: f64,
    /// 99th-percentile latency in it, µs.
    pub p99_us: f64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `echo` or `http`.
    pub mode: &'static str,
    /// The address or URL.
    pub target: String,
    /// Connections.
    pub connections: usize,
    /// Hubs (OS threads).
    pub threads: usize,
    /// Seconds of sending asked for.
    pub duration_s: f64,
    /// Seconds from the start until the last request finished.
    pub elapsed_s: f64,
    /// The constant rate asked for (requests/s), if any.
    pub rate: Option<f64>,
    /// Echo payload bytes (echo mode).
    pub size: Option<usize>,
    /// Successful requests.
    pub requests: u64,
    /// Failed requests (including failed connects).
    pub errors: u64,
    /// HTTP responses outside 2xx/3xx (counted in `requests`).
    pub non_2xx: u64,
    /// Failures by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// Successful requests per second.
    pub requests_per_sec: f64,
    /// Reply bytes per second.
    pub bytes_per_sec: f64,
    /// Latency of successful requests (from the intended send time in
    /// constant-rate mode).
    pub latency_us: Latency,
    /// The timeline.
    pub timeline: Vec<Point>,
}

impl Report {
    /// Builds the report from merged measurements.
    pub fn new(
        mode: &'static str,
        target: String,
        plan: &super::load::Plan,
        size: Option<usize>,
        rec: &Recorder,
        elapsed: Duration,
    ) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let width = rec.width.as_secs_f64();
        let timeline = rec
            .intervals
            .iter()
            .enumerate()
            .map(|(i, iv)| {
                let l = Latency::of(&iv.hist);
                Point {
                    t: (i + 1) as f64 * width,
                    requests: iv.requests,
                    rps: iv.requests as f64 / width,
                    errors: iv.errors,
                    p50_us: l.p50,
                    p99_us: l.p99,
                }
            })
            .collect();
        Report {
            mode,
            target,
            connections: plan.connections,
            threads: plan.threads,
            duration_s: plan.duration.as_secs_f64(),
            elapsed_s: secs,
            rate: plan.rate,
            size,
            requests: rec.requests,
            errors: rec.errors,
            non_2xx: rec.non_2xx,
            error_kinds: rec.error_kinds.clone(),
            requests_per_sec: rec.requests as f64 / secs,
            bytes_per_sec: rec.bytes as f64 / secs,
            latency_us: Latency::of(&rec.hist),
            timeline,
        }
    }

    /// The human-readable summary.
    pub fn summary(&self) -> String {
        let l = &self.latency_us;
        let mode = match self.rate {
            Some(r) => format!("constant rate {r} req/s (latency from intended send time)"),
            None => "closed loop".into(),
        };
        let mut s = format!(
            "sylvan bench {} {}: {} connection(s) on {} thread(s), {:.1}s, {mode}\n",
            self.mode, self.target, self.connections, self.threads, self.elapsed_s
        );
        s += &format!(
            "  requests  {} ({:.1}/s), {:.2} MB/s, errors {}",
            self.requests,
            self.requests_per_sec,
            self.bytes_per_sec / 1e6,
            self.errors
        );
        if self.non_2xx > 0 {
            s += &format!(", non-2xx/3xx {}", self.non_2xx);
        }
        s += "\n";
        for (k, n) in &self.error_kinds {
            s += &format!("    {n} × {k}\n");
        }
        s += &format!(
            "  latency   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {} ± {})\n",
            fmt_us(l.p50),
            fmt_us(l.p90),
            fmt_us(l.p99),
            fmt_us(l.p999),
            fmt_us(l.max),
            fmt_us(l.mean),
            fmt_us(l.stdev)
        );
        s
    }

    /// Writes the report as JSON to `path`.
    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// Draws throughput and latency over time as an SVG at `path`.
    pub fn write_plot(&self, path: &Path) -> anyhow::Result<()> {
        super::plot::draw(self, path)
            .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))
    }
}

/// A latency for people: µs below 1 ms, ms below 1 s, else s.
pub fn fmt_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1e6 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}
