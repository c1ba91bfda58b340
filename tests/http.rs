//! Plain HTTP on the WebSocket port: a request with no `Upgrade: websocket`
//! and no `Sec-WebSocket-*` header is answered by the server itself
//! (`/healthz`, `/metrics`, the page at `/`), once, and the connection is
//! closed cleanly (requests pipelined behind the first are dropped, the end
//! is a FIN, never a reset). The same counters also go to the log with
//! `--stats-interval`.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;

/// The samples of a Prometheus text answer: `name{labels}` → value. Checks
/// the format on the way: every sample is a `wsd_` name with a `# TYPE`
/// line before it, and a number.
fn samples(body: &[u8]) -> BTreeMap<String, f64> {
    let text = std::str::from_utf8(body).expect("metrics are UTF-8");
    let mut typed = Vec::new();
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(["counter", "gauge"].contains(&kind), "{line:?}");
            typed.push(name.to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample `name value`");
        let name = series.split('{').next().unwrap();
        assert!(name.starts_with("wsd_"), "{line:?}");
        assert!(
            typed.iter().any(|t| t == name),
            "sample before its # TYPE: {line:?}"
        );
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line:?}"));
        assert!(
            out.insert(series.to_string(), value).is_none(),
            "repeated series {series}"
        );
    }
    out
}

fn metric(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("no {series} in {:?}", m.keys().collect::<Vec<_>>()))
}

#[test]
fn healthz_answers_200_ok_and_closes() {
    let _w = watchdog();
    let server = TestServer::echo();
    let resp = http_get(server.addr(), "/healthz");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(String::from_utf8_lossy(&resp.body).trim(), "ok");
    assert!(resp
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain")));
    assert!(resp
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close")));
    // The query string does not change the route.
    assert_eq!(http_get(server.addr(), "/healthz?probe=1").status, 200);
    let stats = server.stop();
    assert_eq!(stats.http_responses, BTreeMap::from([(200, 2)]));
    assert_eq!(stats.handshakes, 0);
    assert!(stats.handshake_failures.is_empty(), "{stats:?}");
}

#[test]
fn metrics_are_prometheus_text_and_count_websocket_traffic() {
    let _w = watchdog();
    let server = TestServer::echo();
    let before = http_get(server.addr(), "/metrics");
    assert_eq!(before.status, 200, "{before:?}");
    assert!(
        before
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{before:?}"
    );
    let before = samples(&before.body);

    let mut c = server.client();
    for i in 0..3 {
        c.assert_echo(&format!("message {i}"));
    }
    let during = samples(&http_get(server.addr(), "/metrics").body);
    assert!(
        metric(&during, "wsd_connections_open") >= 2.0,
        "the echo client and this request are held: {during:?}"
    );
    c.close();

    let after = samples(&http_get(server.addr(), "/metrics").body);
    let grew = |series: &str| metric(&after, series) - metric(&before, series);
    assert_eq!(grew("wsd_messages_received_total"), 3.0);
    assert_eq!(grew("wsd_messages_sent_total"), 3.0);
    assert_eq!(grew("wsd_handshakes_total"), 1.0);
    assert!(grew("wsd_connections_accepted_total") >= 3.0);
    assert!(grew("wsd_bytes_received_total") > 0.0);
    assert!(grew("wsd_bytes_sent_total") > 0.0);
    assert_eq!(metric(&after, "wsd_closes_total{code=\"1000\"}"), 1.0);
    assert_eq!(metric(&after, "wsd_mode{mode=\"echo\"}"), 1.0);
    assert_eq!(metric(&after, "wsd_draining"), 0.0);
    drop(server);
}

#[test]
fn metrics_count_http_answers_and_refused_upgrades_by_status() {
    let _w = watchdog();
    let server = TestServer::echo();
    http_get(server.addr(), "/nope");
    http_get(server.addr(), "/healthz");
    let resp = http_exchange(
        server.addr(),
        &upgrade_request(RFC_KEY).replace("Version: 13", "Version: 8"),
        false,
    );
    assert_eq!(resp.status, 426, "{resp:?}");
    let m = samples(&http_get(server.addr(), "/metrics").body);
    assert_eq!(metric(&m, "wsd_http_responses_total{status=\"404\"}"), 1.0);
    assert_eq!(metric(&m, "wsd_http_responses_total{status=\"200\"}"), 1.0);
    assert_eq!(
        metric(&m, "wsd_handshake_failures_total{status=\"426\"}"),
        1.0
    );
    assert_eq!(metric(&m, "wsd_handshakes_total"), 0.0);
}

#[test]
fn root_serves_an_html_page_with_a_websocket_script() {
    let _w = watchdog();
    let server = TestServer::echo();
    let resp = http_get(server.addr(), "/");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(
        resp.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{resp:?}"
    );
    let page = String::from_utf8(resp.body).expect("UTF-8 page");
    assert!(page.contains("<script"), "no script in the page");
    assert!(page.contains("new WebSocket("), "the page does not connect");
}

#[test]
fn head_gets_the_get_headers_without_a_body() {
    let _w = watchdog();
    let server = TestServer::echo();
    for path in ["/", "/healthz", "/nope"] {
        let get = http_get(server.addr(), path);
        // `head_only`: nothing may follow the head but EOF.
        let head = http_exchange(
            server.addr(),
            &format!("HEAD {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
            true,
        );
        assert_eq!(head.status, get.status, "{path}");
        assert_eq!(
            head.header("content-length"),
            Some(get.body.len().to_string().as_str()),
            "HEAD {path} announces the GET body's length"
        );
        assert_eq!(head.header("content-type"), get.header("content-type"));
    }
}

#[test]
fn other_methods_get_405_naming_get_and_head() {
    let _w = watchdog();
    let server = TestServer::echo();
    for method in ["POST", "PUT", "DELETE"] {
        // A body the server never reads must not reset the answer away.
        let resp = http_exchange(
            server.addr(),
            &format!("{method} /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello"),
            false,
        );
        assert_eq!(resp.status, 405, "{method}: {resp:?}");
        let allow = resp.header("allow").expect("Allow header");
        assert!(allow.contains("GET") && allow.contains("HEAD"), "{allow:?}");
    }
    let stats = server.stop();
    assert_eq!(stats.http_responses, BTreeMap::from([(405, 3)]));
}

#[test]
fn unknown_path_is_404() {
    let _w = watchdog();
    let server = TestServer::echo();
    for path in ["/nope", "/healthz/x", "/metrics2", "/index.html"] {
        assert_eq!(http_get(server.addr(), path).status, 404, "{path}");
    }
}

#[test]
fn every_answer_is_counted_by_status() {
    let _w = watchdog();
    let server = TestServer::echo();
    http_get(server.addr(), "/");
    http_get(server.addr(), "/healthz");
    http_get(server.addr(), "/metrics");
    http_get(server.addr(), "/nope");
    http_exchange(
        server.addr(),
        "HEAD /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
        true,
    );
    http_exchange(
        server.addr(),
        "PATCH / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        false,
    );
    let stats = server.stop();
    assert_eq!(
        stats.http_responses,
        BTreeMap::from([(200, 4), (404, 1), (405, 1)])
    );
    assert_eq!(stats.handshakes, 0);
    assert!(stats.handshake_failures.is_empty(), "{stats:?}");
    assert_eq!(stats.protocol_errors, 0);
}

#[test]
fn request_arriving_in_pieces_is_answered() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = Client::connect_raw(server.addr());
    for piece in ["GE", "T /hea", "lthz HTTP/1.1\r\nHo", "st: x\r\n", "\r\n"] {
        c.send_raw(piece.as_bytes());
        std::thread::yield_now();
    }
    let resp = c.read_http_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    c.expect_eof();
}

#[test]
fn a_websocket_header_makes_it_an_upgrade_attempt_not_plain_http() {
    let _w = watchdog();
    let server = TestServer::echo();
    // Any Sec-WebSocket-* header, or Upgrade: websocket, means the client
    // wanted WebSocket: an incomplete upgrade is a 400, not a page.
    for extra in [
        "Sec-WebSocket-Version: 13\r\n",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
        "Upgrade: websocket\r\n",
    ] {
        let resp = http_exchange(
            server.addr(),
            &format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n"),
            false,
        );
        assert_eq!(resp.status, 400, "{extra:?}: {resp:?}");
    }
    // Another Upgrade (h2c) is plain HTTP.
    let resp = http_exchange(
        server.addr(),
        "GET /healthz HTTP/1.1\r\nHost: localhost\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
        false,
    );
    assert_eq!(resp.status, 200, "{resp:?}");
    let stats = server.stop();
    assert_eq!(stats.handshake_failures, BTreeMap::from([(400, 3)]));
    assert_eq!(stats.http_responses, BTreeMap::from([(200, 1)]));
}

#[test]
fn plain_http_and_websocket_share_the_port() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut a = server.client();
    a.assert_echo("before");
    assert_eq!(http_get(server.addr(), "/healthz").status, 200);
    a.assert_echo("after");
    let mut b = server.client();
    b.assert_echo("new client");
    a.close();
    b.close();
}

#[test]
fn stats_interval_logs_a_summary_line() {
    let _w = watchdog();
    let mut wsd = WsdProcess::start(&["--listen", "127.0.0.1:0", "--stats-interval", "200ms"]);
    let addr = wsd.addrs[0];
    let wait = Duration::from_secs(5);
    let idle = wsd.stderr_line_containing(" conns (+", wait);
    // After the timestamp (tests/daemon.rs checks its form), the level.
    assert!(
        idle.split_once(' ').unwrap().1.starts_with("INFO "),
        "{idle:?}"
    );
    assert!(idle.contains("msg/s") && idle.contains("MB/s"), "{idle:?}");

    let mut c = Client::connect(addr);
    c.assert_echo("counted");
    // The interval in which the client arrived says so; it is still open.
    let line = wsd.stderr_line_containing("(+1 accepted)", wait);
    assert!(line.contains("1 conns (+1 accepted), in "), "{line:?}");
    c.close();
    let line = wsd.stderr_line_containing("closes 1000:1", wait);
    assert!(
        line.split_once(' ').unwrap().1.starts_with("INFO "),
        "{line:?}"
    );

    wsd.signal("TERM");
    assert!(wsd.wait_exit(wait).success());
}

#[test]
fn http_1_1_request_without_exactly_one_host_is_400() {
    let _w = watchdog();
    let server = TestServer::echo();
    // RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status
    // code to any HTTP/1.1 request message that lacks a Host header field
    // and to any that contains more than one Host header field line".
    for (what, req) in [
        ("no Host", "GET /healthz HTTP/1.1\r\n\r\n"),
        (
            "two Hosts",
            "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ),
        (
            "no Host, HEAD",
            "HEAD /metrics HTTP/1.1\r\nAccept: */*\r\n\r\n",
        ),
    ] {
        let resp = http_exchange(server.addr(), req, false);
        assert_eq!(resp.status, 400, "{what}: {resp:?}");
        assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
        assert!(
            String::from_utf8_lossy(&resp.body).contains("Host"),
            "{what}: the body names the problem: {resp:?}"
        );
    }
    // HTTP/1.0 had no Host requirement.
    let resp = http_exchange(server.addr(), "GET /healthz HTTP/1.0\r\n\r\n", false);
    assert_eq!(resp.status, 200, "{resp:?}");
    let stats = server.stop();
    assert_eq!(stats.handshake_failures, BTreeMap::from([(400, 3)]));
    assert_eq!(stats.http_responses, BTreeMap::from([(200, 1)]));
}

/// The answer to a lone `GET /healthz`, for comparing pipelined answers with.
fn healthz_alone(server: &TestServer) -> HttpResponse {
    let resp = http_get(server.addr(), "/healthz");
    assert_eq!(resp.status, 200, "{resp:?}");
    resp
}

#[test]
fn pipelined_requests_get_the_first_answer_whole_then_a_clean_close() {
    let _w = watchdog();
    let server = TestServer::echo();
    let alone = healthz_alone(&server);
    // No keep-alive: the first answer says Connection: close, and what the
    // client pipelined behind it is read and dropped, never answered.
    let get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for tail in [
        get.to_string(),
        format!("{get}{get}GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
        // Half a request.
        "GET /metr".to_string(),
    ] {
        let mut c = Client::connect_raw(server.addr());
        c.send_raw(format!("{get}{tail}").as_bytes());
        let resp = c.read_http_response();
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_eq!(resp.header("connection"), Some("close"), "{resp:?}");
        assert_eq!(resp.body, alone.body);
        // A FIN and nothing else: a reset would fail this read.
        c.expect_eof();
    }
    let stats = server.stop();
    assert_eq!(stats.http_responses, BTreeMap::from([(200, 4)]));
}

#[test]
fn a_request_sent_after_the_answer_is_not_answered_and_the_close_stays_clean() {
    let _w = watchdog();
    let server = TestServer::echo();
    let mut c = Client::connect_raw(server.addr());
    c.send_raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = c.read_http_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    // The server may already have shut its side; its socket still reads.
    c.send_raw(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    c.expect_eof();
    let stats = server.stop();
    assert_eq!(stats.http_responses, BTreeMap::from([(200, 1)]));
}

#[test]
fn a_large_pipelined_tail_is_drained_not_reset() {
    let _w = watchdog();
    let server = TestServer::echo();
    let alone = healthz_alone(&server);
    // Far more than one read: the answer must not be destroyed by a reset
    // for unread input when the server closes.
    let mut bytes = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
    let tail = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".repeat(8 << 10);
    bytes.extend_from_slice(tail.as_bytes());
    let mut c = Client::connect_raw(server.addr());
    c.send_raw(&bytes);
    let resp = c.read_http_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.body, alone.body);
    c.expect_eof();
}

#[test]
fn a_fresh_server_reports_zero_for_every_common_status_and_close_code() {
    let _w = watchdog();
    let server = TestServer::echo();
    // The first scrape itself is not counted yet when it is answered.
    let m = samples(&http_get(server.addr(), "/metrics").body);
    // Alerts on rate(...) see 0, not "no data", before the first event.
    for code in [1000, 1001, 1002, 1003, 1005, 1007, 1008, 1009, 1011] {
        assert_eq!(
            metric(&m, &format!("wsd_closes_total{{code=\"{code}\"}}")),
            0.0
        );
    }
    for status in [400, 401, 403, 405, 408, 426, 429, 431, 503] {
        assert_eq!(
            metric(
                &m,
                &format!("wsd_handshake_failures_total{{status=\"{status}\"}}")
            ),
            0.0
        );
    }
    for status in [200, 404, 405, 503] {
        assert_eq!(
            metric(
                &m,
                &format!("wsd_http_responses_total{{status=\"{status}\"}}")
            ),
            0.0
        );
    }
    // A code outside the common set appears once it happens.
    let mut c = server.client();
    c.send_close(4000, b"app-defined");
    assert!(matches!(c.recv(), Message::Close(Some(4000), _)));
    c.expect_eof();
    drop(c);
    let until = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let m = samples(&http_get(server.addr(), "/metrics").body);
        if m.get("wsd_closes_total{code=\"4000\"}") == Some(&1.0) {
            assert_eq!(metric(&m, "wsd_closes_total{code=\"1000\"}"), 0.0);
            assert!(metric(&m, "wsd_http_responses_total{status=\"200\"}") >= 1.0);
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "close 4000 never counted: {m:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn build_info_names_the_instance_by_process_id() {
    let _w = watchdog();
    let wsd = WsdProcess::start(&["--listen", "127.0.0.1:0"]);
    let m = samples(&http_get(wsd.addrs[0], "/metrics").body);
    let series = format!(
        "wsd_build_info{{version=\"{}\",instance=\"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        wsd.pid()
    );
    assert_eq!(metric(&m, &series), 1.0);
}
