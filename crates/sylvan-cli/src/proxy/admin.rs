//! The admin endpoint (`--admin ADDR`), on [`sylvan::http::Server`]:
//! `GET /stats` (JSON), `GET /metrics` (Prometheus text format), `GET
//! /health` (`ok`, for a load balancer in front of this one).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use sylvan::http::{Response, RunningServer, Server};
use sylvan::net::TcpListener;

use super::Shared;

/// Serves the admin endpoint for `shared` on `listener`, in green threads
/// of the current hub; `listen` is the proxy's address, shown in `/stats`.
pub fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    listen: Option<SocketAddr>,
) -> io::Result<RunningServer> {
    Ok(Server::from_listener(listener)
        .max_connections(64)?
        .serve(move |req| respond(&shared, listen, req.method(), req.path())))
}

/// The response to `method path`.
pub fn respond(shared: &Shared, listen: Option<SocketAddr>, method: &str, path: &str) -> Response {
    if method != "GET" && method != "HEAD" {
        return Response::status_page(405).header("Allow", "GET, HEAD");
    }
    match path {
        "/stats" => Response::new(200)
            .header("Content-Type", "application/json")
            .with_body(shared.stats(listen).to_json() + "\n"),
        "/metrics" => Response::new(200)
            .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            .with_body(shared.stats(listen).to_prometheus()),
        "/health" => Response::text("ok\n"),
        "/" => Response::text("sylvan proxy admin: /stats /metrics /health\n"),
        _ => Response::status_page(404),
    }
}
