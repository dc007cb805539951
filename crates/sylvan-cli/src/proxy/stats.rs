//! A snapshot of a proxy's counters: `/stats` (JSON) and `/metrics`
//! (Prometheus text exposition format 0.0.4).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;

use serde::Serialize;

use super::Shared;

/// The whole proxy, summed over its hubs.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    /// The listening address.
    pub listen: Option<String>,
    /// The balancing policy.
    pub balance: &'static str,
    /// Seconds since the proxy started.
    pub uptime_seconds: f64,
    /// Client connections accepted.
    pub connections_total: u64,
    /// Client connections open now.
    pub connections_active: usize,
    /// Client connections closed because no upstream could be connected.
    pub connections_failed: u64,
    /// Connects retried on another upstream.
    pub connect_retries: u64,
    /// Per upstream of the set now: the static ones in the order given,
    /// then the discovered ones in the order they joined.
    pub upstreams: Vec<UpstreamStats>,
}

/// One upstream.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamStats {
    /// `HOST:PORT` as given.
    pub address: String,
    /// `up`, `down` (health checks) or `ejected` (connect failures).
    pub state: &'static str,
    /// The health checks' verdict.
    pub healthy: bool,
    /// Milliseconds left of the current ejection (0 when not ejected).
    pub ejected_ms: u64,
    /// Times ejected.
    pub ejections: u64,
    /// Connections open to it now.
    pub connections_active: usize,
    /// Connections made to it.
    pub connections_total: u64,
    /// Failed connects.
    pub connect_failures: u64,
    /// Bytes forwarded to it.
    pub bytes_sent: u64,
    /// Bytes forwarded from it.
    pub bytes_received: u64,
    /// Health checks that succeeded.
    pub checks_ok: u64,
    /// Health checks that failed.
    pub checks_failed: u64,
}

impl Stats {
    /// Reads every counter of `shared` now.
    pub fn of(shared: &Shared, listen: Option<SocketAddr>) -> Stats {
        let now = sylvan::time::now();
        let upstreams = shared
            .upstreams()
            .iter()
            .map(|u| {
                let healthy = u.healthy.load(Relaxed);
                let ejected = u.ejected_for(now);
                UpstreamStats {
                    address: u.addr.clone(),
                    state: match (healthy, ejected) {
                        (false, _) => "down",
                        (true, Some(_)) => "ejected",
                        (true, None) => "up",
                    },
                    healthy,
                    ejected_ms: ejected.map_or(0, |d| d.as_millis().max(1) as u64),
                    ejections: u.ejections.load(Relaxed),
                    connections_active: u.active.load(Relaxed),
                    connections_total: u.connections.load(Relaxed),
                    connect_failures: u.connect_failures.load(Relaxed),
                    bytes_sent: u.bytes_sent.load(Relaxed),
                    bytes_received: u.bytes_received.load(Relaxed),
                    checks_ok: u.checks_ok.load(Relaxed),
                    checks_failed: u.checks_failed.load(Relaxed),
                }
            })
            .collect();
        Stats {
            listen: listen.map(|a| a.to_string()),
            balance: shared.config.balance.name(),
            uptime_seconds: shared.started.elapsed().as_secs_f64(),
            connections_total: shared.accepted.load(Relaxed),
            connections_active: shared.active.load(Relaxed),
            connections_failed: shared.failed.load(Relaxed),
            connect_retries: shared.retries.load(Relaxed),
            upstreams,
        }
    }

    /// The snapshot as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The snapshot in Prometheus' text format.
    pub fn to_prometheus(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP sylvan_proxy_{name} {help}");
            let _ = writeln!(out, "# TYPE sylvan_proxy_{name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "sylvan_proxy_{name}{labels} {v}");
            }
        };
        let one = |v: f64| [(String::new(), v)];
        metric(
            "uptime_seconds",
            "gauge",
            "Seconds since the proxy started.",
            &one(self.uptime_seconds),
        );
        metric(
            "connections_total",
            "counter",
            "Client connections accepted.",
            &one(self.connections_total as f64),
        );
        metric(
            "connections_active",
            "gauge",
            "Client connections open now.",
            &one(self.connections_active as f64),
        );
        metric(
            "connections_failed_total",
            "counter",
            "Client connections closed because no upstream could be connected.",
            &one(self.connections_failed as f64),
        );
        metric(
            "connect_retries_total",
            "counter",
            "Upstream connects retried on another upstream.",
            &one(self.connect_retries as f64),
        );
        type Field = fn(&UpstreamStats) -> f64;
        let per_upstream: [(&str, &str, &str, Field); 10] = [
            (
                "upstream_up",
                "gauge",
                "1 if the upstream takes new connections (healthy, not ejected).",
                |u| f64::from(u.state == "up"),
            ),
            (
                "upstream_healthy",
                "gauge",
                "1 if the health checks pass.",
                |u| f64::from(u.healthy),
            ),
            (
                "upstream_ejected",
                "gauge",
                "1 while the upstream is ejected after connect failures.",
                |u| f64::from(u.ejected_ms > 0),
            ),
            (
                "upstream_ejections_total",
                "counter",
                "Times the upstream was ejected.",
                |u| u.ejections as f64,
            ),
            (
                "upstream_connections_active",
                "gauge",
                "Connections open to the upstream.",
                |u| u.connections_active as f64,
            ),
            (
                "upstream_connections_total",
                "counter",
                "Connections made to the upstream.",
                |u| u.connections_total as f64,
            ),
            (
                "upstream_connect_failures_total",
                "counter",
                "Failed connects to the upstream.",
                |u| u.connect_failures as f64,
            ),
            (
                "upstream_bytes_sent_total",
                "counter",
                "Bytes forwarded to the upstream.",
                |u| u.bytes_sent as f64,
            ),
            (
                "upstream_bytes_received_total",
                "counter",
                "Bytes forwarded from the upstream.",
                |u| u.bytes_received as f64,
            ),
            (
                "upstream_health_checks_failed_total",
                "counter",
                "Failed health checks.",
                |u| u.checks_failed as f64,
            ),
        ];
        for (name, kind, help, field) in per_upstream {
            let samples: Vec<(String, f64)> = self
                .upstreams
                .iter()
                .map(|u| {
                    (
                        format!("{{upstream=\"{}\"}}", escape_label(&u.address)),
                        field(u),
                    )
                })
                .collect();
            metric(name, kind, help, &samples);
        }
        out
    }
}

/// Escapes a Prometheus label value: backslash, double quote, newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::escape_label;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("a\nb"), "a\\nb");
    }
}
