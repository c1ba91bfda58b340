//! `--metrics-listen`: a separate address for `/metrics` and `/healthz`,
//! so that with several processes on one port a scrape reaches the process
//! it names.

mod common;

use common::*;
use wsd::{Config, Mode};

fn with_metrics_address() -> (TestServer, std::net::SocketAddr, std::net::SocketAddr) {
    let (server, addrs) = TestServer::start_all(Config {
        metrics_listen: vec!["127.0.0.1:0".parse().unwrap()],
        ..config(Mode::Echo)
    });
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    (server, addrs[0], addrs[1])
}

#[test]
fn metrics_address_serves_metrics_and_health_and_the_websocket_port_does_not_serve_metrics() {
    let _w = watchdog();
    let (server, ws, metrics) = with_metrics_address();
    assert_ne!(ws, metrics);
    let mut c = Client::connect(ws);
    c.assert_echo("counted");

    let scrape = http_get(metrics, "/metrics");
    assert_eq!(scrape.status, 200, "{scrape:?}");
    let body = String::from_utf8(scrape.body).unwrap();
    assert!(
        body.lines().any(|l| l == "wsd_messages_received_total 1"),
        "{body}"
    );
    assert_eq!(http_get(metrics, "/healthz").status, 200);

    // The public port still answers health checks, not metrics.
    assert_eq!(http_get(ws, "/healthz").status, 200);
    assert_eq!(http_get(ws, "/metrics").status, 404);
    assert_eq!(http_get(ws, "/metrics?x=1").status, 404);
    // The metrics address serves nothing else: no page, no WebSocket.
    assert_eq!(http_get(metrics, "/").status, 404);
    let (_refused, resp) = Client::try_upgrade(metrics, "/", "");
    assert_eq!(resp.status, 400, "{resp:?}");
    c.close();
    server.stop();
}

#[test]
fn without_a_metrics_address_the_websocket_port_serves_metrics() {
    let _w = watchdog();
    let server = TestServer::echo();
    assert_eq!(http_get(server.addr(), "/metrics").status, 200);
    server.stop();
}
