//! The admin endpoint (`--admin ADDR`): sylvan's own
//! ([`sylvan::debug::admin`]: `/` web page, `/threads`, `/hubs`, runtime
//! metrics) plus the proxy's `GET /stats` (JSON), its metrics appended to
//! `/metrics` (Prometheus text format), `GET /health` (`ok`, for a load
//! balancer in front of this one) and an `upstreams` table on the page.

use std::net::SocketAddr;
use std::sync::Arc;

use super::Shared;

/// The `--admin` endpoint for `shared`, ready to serve on its own thread:
/// everything reads `shared` (atomics and short locks), never a hub.
pub fn builder(shared: Arc<Shared>, listen: Option<SocketAddr>) -> sylvan::debug::admin::Builder {
    let b = sylvan::debug::admin::Builder::new();
    let (s1, s2, s3) = (shared.clone(), shared.clone(), shared);
    b.route("/stats", "application/json", move || {
        s1.stats(listen).to_json() + "\n"
    })
    .route("/health", "text/plain", || "ok\n".to_string())
    .metrics(move || s2.stats(listen).to_prometheus())
    .json("upstreams", move || {
        serde_json::to_string(&s3.stats(listen).upstreams).unwrap_or_else(|_| "[]".into())
    })
}
