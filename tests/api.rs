//! The publish API (`POST /publish/ROOM`, `POST /publish` NDJSON) on a
//! real loopback port: delivery to a room's members, text and binary,
//! every refusal, keep-alive and pipelining, and the metrics.

mod common;

use std::time::Duration;

use common::*;
use wsd::api::{self as api, ApiKeySlot};
use wsd::{Config, Mode};

const KEY: &str = "test-key-0123456789abcdef";

/// A broadcast server that takes [`KEY`]. The slot reads the key file
/// when it opens, so the file's directory goes once that is done.
fn with_key() -> Config {
    let files = Scratch::new();
    let key = files.write("key", format!("{KEY}\n"));
    Config {
        api_keys: Some(ApiKeySlot::open(&[key]).unwrap()),
        ..config(Mode::Broadcast)
    }
}

/// A publish request: `POST target` with `body`, `extra` header lines.
fn post(target: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST {target} HTTP/1.1\r\nHost: wsd\r\n{extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

fn auth() -> String {
    format!("Authorization: Bearer {KEY}\r\n")
}

/// One request on a fresh connection; the answer and its JSON body.
fn ask(addr: std::net::SocketAddr, req: &[u8]) -> (HttpResponse, serde_json::Value) {
    let mut c = Client::connect_raw(addr);
    c.send_raw(req);
    let resp = c.read_http_response();
    let json = serde_json::from_slice(&resp.body).unwrap();
    (resp, json)
}

#[test]
fn a_publish_reaches_the_rooms_members_as_text_or_binary() {
    let _w = watchdog();
    let server = TestServer::start(with_key());
    let mut a = Client::connect_path(server.addr(), "/chat/eu");
    let mut b = Client::connect_path(server.addr(), "/chat/eu?x=1");
    let mut other = Client::connect_path(server.addr(), "/other");
    let text = format!("{}Content-Type: text/plain; charset=utf-8\r\n", auth());
    let (resp, json) = ask(server.addr(), &post("/publish/chat/eu", &text, b"hello"));
    assert_eq!(resp.status, 200, "{json}");
    assert_eq!(
        json,
        serde_json::json!({"room": "/chat/eu", "local_receivers": 2})
    );
    let binary = format!("{}Content-Type: application/octet-stream\r\n", auth());
    let (resp, _) = ask(
        server.addr(),
        &post("/publish/chat/eu", &binary, b"\xff\x00"),
    );
    assert_eq!(resp.status, 200);
    let json_body = format!("{}Content-Type: application/json\r\n", auth());
    let (resp, _) = ask(server.addr(), &post("/publish/chat/eu", &json_body, b"{}"));
    assert_eq!(resp.status, 200);
    // No Content-Type: binary.
    let (resp, _) = ask(server.addr(), &post("/publish/chat/eu", &auth(), b"raw"));
    assert_eq!(resp.status, 200);
    for c in [&mut a, &mut b] {
        assert_eq!(c.recv_text(), "hello");
        assert_eq!(c.recv_binary(), b"\xff\x00");
        assert_eq!(c.recv_text(), "{}");
        assert_eq!(c.recv_binary(), b"raw");
    }
    // Text that is not UTF-8 is refused, and nothing is delivered.
    let (resp, json) = ask(server.addr(), &post("/publish/chat/eu", &text, b"\xff"));
    assert_eq!(resp.status, 400, "{json}");
    // A room with no one in it is not an error.
    let (resp, json) = ask(server.addr(), &post("/publish/empty", &text, b"x"));
    assert_eq!(resp.status, 200);
    assert_eq!(json["local_receivers"], 0);
    for c in [&mut a, &mut b, &mut other] {
        c.assert_ping(b"nothing else");
    }
    let stats = server.stop();
    assert_eq!(stats.api.published, 5);
    assert_eq!(stats.api.requests(200), 5);
    assert_eq!(stats.api.requests(400), 1);
}

#[test]
fn an_ndjson_batch_is_delivered_in_order_or_not_at_all() {
    let _w = watchdog();
    let server = TestServer::start(with_key());
    let mut chat = Client::connect_path(server.addr(), "/chat");
    let mut feed = Client::connect_path(server.addr(), "/feed");
    let ndjson = format!("{}Content-Type: application/x-ndjson\r\n", auth());
    let body = b"{\"room\":\"/chat\",\"text\":\"one\"}\n\
        {\"room\":\"/feed\",\"base64\":\"AAEC\"}\r\n\
        \n\
        {\"room\":\"/chat\",\"text\":\"two\"}\n";
    let (resp, json) = ask(server.addr(), &post("/publish", &ndjson, body));
    assert_eq!(resp.status, 200, "{json}");
    assert_eq!(json, serde_json::json!({"accepted": 3}));
    assert_eq!(chat.recv_text(), "one");
    assert_eq!(chat.recv_text(), "two");
    assert_eq!(feed.recv_binary(), b"\x00\x01\x02");
    let bad = b"{\"room\":\"/chat\",\"text\":\"no\"}\n{\"room\":\"/chat\"}\n{\"room\":\"/chat\",\"txt\":\"x\"}\n";
    let (resp, json) = ask(server.addr(), &post("/publish", &ndjson, bad));
    assert_eq!(resp.status, 400);
    assert!(
        json["error"].as_str().unwrap().starts_with("line 2: "),
        "{json}"
    );
    // Not NDJSON: 415.
    let (resp, _) = ask(server.addr(), &post("/publish", &auth(), b"{}"));
    assert_eq!(resp.status, 415);
    chat.assert_ping(b"nothing of the bad batch");
    feed.assert_ping(b"nothing of the bad batch");
}

#[test]
fn every_refusal_says_why() {
    let _w = watchdog();
    // Publishing is off without a key, and says which flag turns it on.
    let off = TestServer::start(config(Mode::Broadcast));
    let (resp, json) = ask(off.addr(), &post("/publish/chat", &auth(), b"x"));
    assert_eq!(resp.status, 403);
    assert!(
        json["error"].as_str().unwrap().contains("--api-key"),
        "{json}"
    );
    drop(off);

    let cfg = Config {
        limits: wsd::proto::Limits {
            max_message: 1000,
            max_frame: 1000,
            ..Default::default()
        },
        ..with_key()
    };
    let server = TestServer::start(cfg);
    let addr = server.addr();
    let wrong = "Authorization: Bearer wrong-key-0123456789abcdef\r\n";
    let (resp, _) = ask(addr, &post("/publish/chat", wrong, b"x"));
    assert_eq!(resp.status, 401);
    assert_eq!(resp.header("WWW-Authenticate"), Some("Bearer"));
    let (resp, _) = ask(addr, &post("/publish/chat", "", b"x"));
    assert_eq!(resp.status, 401);
    let get = format!("GET /publish/chat HTTP/1.1\r\nHost: wsd\r\n{}\r\n", auth());
    let (resp, _) = ask(addr, get.as_bytes());
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("Allow"), Some("POST"));
    let (resp, _) = ask(addr, &post("/publish/", &auth(), b"x"));
    assert_eq!(resp.status, 400);

    // 413 from the head: the body is never sent, the answer comes anyway.
    let mut c = Client::connect_raw(addr);
    let head = format!(
        "POST /publish/chat HTTP/1.1\r\nHost: wsd\r\n{}Content-Length: 1001\r\n\r\n",
        auth()
    );
    c.send_raw(head.as_bytes());
    assert_eq!(c.read_http_response().status, 413);
    c.expect_eof();

    // Without the key, refused from the head too: the server does not
    // wait for (or buffer) a body it would throw away.
    let mut c = Client::connect_raw(addr);
    c.send_raw(b"POST /publish/chat HTTP/1.1\r\nHost: wsd\r\nContent-Length: 900\r\n\r\n");
    let resp = c.read_http_response();
    assert_eq!(resp.status, 401);
    assert_eq!(resp.header("Connection"), Some("close"));
    c.expect_eof();

    // A chunked body with a bad chunk: 400, and the connection closes.
    let mut c = Client::connect_raw(addr);
    let chunked = format!(
        "POST /publish/chat HTTP/1.1\r\nHost: wsd\r\n{}Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        auth()
    );
    c.send_raw(chunked.as_bytes());
    assert_eq!(c.read_http_response().status, 400);
    c.expect_eof();

    let stats = server.stop();
    assert_eq!(stats.api.requests(401), 3);
    assert_eq!(stats.api.requests(405), 1);
    assert_eq!(stats.api.requests(413), 1);
    assert_eq!(stats.api.published, 0);
}

#[test]
fn requests_pipelined_in_one_write_are_answered_in_order_on_one_connection() {
    let _w = watchdog();
    let server = TestServer::start(with_key());
    let mut member = Client::connect_path(server.addr(), "/a");
    let mut c = Client::connect_raw(server.addr());
    let text = format!("{}Content-Type: text/plain\r\n", auth());
    let mut burst = Vec::new();
    for (room, body) in [("/a", "1"), ("/b", "2"), ("/a", "3")] {
        burst.extend(post(&format!("/publish{room}"), &text, body.as_bytes()));
    }
    // And a chunked one.
    burst.extend(
        format!(
            "POST /publish/a HTTP/1.1\r\nHost: wsd\r\n{text}Transfer-Encoding: chunked\r\n\r\n\
             2\r\n4a\r\n1\r\nb\r\n0\r\n\r\n"
        )
        .as_bytes(),
    );
    c.send_raw(&burst);
    for (room, n) in [("/a", 1), ("/b", 0), ("/a", 1), ("/a", 1)] {
        let resp = c.read_http_response();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("Connection"), Some("keep-alive"));
        let json: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(json["room"], room);
        assert_eq!(json["local_receivers"], n);
    }
    for want in ["1", "3", "4ab"] {
        assert_eq!(member.recv_text(), want);
    }
    // The same connection, later, with a 100-continue.
    let head = format!(
        "POST /publish/a HTTP/1.1\r\nHost: wsd\r\n{text}Expect: 100-continue\r\nContent-Length: 5\r\n\r\n"
    );
    c.send_raw(head.as_bytes());
    assert_eq!(c.read_http_head().status, 100);
    c.send_raw(b"later");
    assert_eq!(c.read_http_response().status, 200);
    assert_eq!(member.recv_text(), "later");
    // Connection: close ends it after the answer.
    let last = post(
        "/publish/a",
        &format!("{text}Connection: close\r\n"),
        b"end",
    );
    c.send_raw(&last);
    let resp = c.read_http_response();
    assert_eq!(resp.header("Connection"), Some("close"));
    c.expect_eof();
    assert_eq!(member.recv_text(), "end");
}

#[test]
fn a_request_that_stops_arriving_is_answered_408() {
    let _w = watchdog();
    let cfg = Config {
        handshake_timeout: Duration::from_millis(200),
        ..with_key()
    };
    let server = TestServer::start(cfg);
    let mut c = Client::connect_raw(server.addr());
    let head = format!(
        "POST /publish/chat HTTP/1.1\r\nHost: wsd\r\n{}Content-Length: 10\r\n\r\nabc",
        auth()
    );
    c.send_raw(head.as_bytes());
    let resp = c.read_http_response();
    assert_eq!(resp.status, 408);
    c.expect_eof();
    assert_eq!(server.stop().api.requests(408), 1);
}

#[test]
fn a_body_sent_a_byte_at_a_time_holds_up_no_one() {
    let _w = watchdog();
    let server = TestServer::start(with_key());
    let mut member = Client::connect_path(server.addr(), "/slow");
    let mut echo = Client::connect_path(server.addr(), "/echo");
    let mut slow = Client::connect_raw(server.addr());
    let body = b"0123456789";
    let head = format!(
        "POST /publish/slow HTTP/1.1\r\nHost: wsd\r\n{}Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        auth(),
        body.len()
    );
    slow.send_raw(head.as_bytes());
    for (i, b) in body.iter().enumerate() {
        slow.send_raw(&[*b]);
        // Between the slow client's bytes, another client's messages come
        // and go through the same reactor.
        let msg = format!("echo {i}");
        echo.send_text(&msg);
        assert_eq!(echo.recv_text(), msg);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(slow.read_http_response().status, 200);
    assert_eq!(member.recv_text(), "0123456789");
}

#[test]
fn the_metrics_port_takes_publishes_and_counts_them() {
    let _w = watchdog();
    let cfg = Config {
        metrics_listen: vec!["127.0.0.1:0".parse().unwrap()],
        ..with_key()
    };
    let (server, addrs) = TestServer::start_all(cfg);
    let metrics = addrs[1];
    let mut member = Client::connect_path(server.addr(), "/m");
    let text = format!("{}Content-Type: text/plain\r\n", auth());
    let (resp, json) = ask(metrics, &post("/publish/m", &text, b"via metrics"));
    assert_eq!(resp.status, 200, "{json}");
    assert_eq!(json["local_receivers"], 1);
    assert_eq!(member.recv_text(), "via metrics");
    let (resp, _) = ask(metrics, &post("/publish/m", "", b"x"));
    assert_eq!(resp.status, 401);
    let body = String::from_utf8(http_get(metrics, "/metrics").body).unwrap();
    assert!(
        body.contains("\nwsd_api_requests_total{code=\"200\"} 1\n"),
        "{body}"
    );
    assert!(
        body.contains("\nwsd_api_requests_total{code=\"401\"} 1\n"),
        "{body}"
    );
    assert!(body.contains("\nwsd_api_published_total 1\n"), "{body}");
}

#[test]
fn a_keep_alive_api_connection_is_closed_by_a_drain() {
    let _w = watchdog();
    let server = TestServer::start(with_key());
    let mut c = Client::connect_raw(server.addr());
    let text = format!("{}Content-Type: text/plain\r\n", auth());
    c.send_raw(&post("/publish/x", &text, b"x"));
    assert_eq!(c.read_http_response().status, 200);
    server.begin_drain();
    c.expect_eof();
    server.wait_stopped(Duration::from_secs(30));
}

#[test]
fn large_bodies_are_delivered_whole_by_length_or_chunked() {
    let _w = watchdog();
    let server = TestServer::start(with_key());
    let mut member = Client::connect_path(server.addr(), "/big");
    let body = pattern(1 << 20, 7);
    let binary = format!("{}Content-Type: application/octet-stream\r\n", auth());
    let mut c = Client::connect_raw(server.addr());
    // In pieces, as a slow network would deliver it.
    for piece in post("/publish/big", &binary, &body).chunks(100_000) {
        c.send_raw(piece);
    }
    assert_eq!(c.read_http_response().status, 200);
    assert!(member.recv_binary() == body, "the 1 MiB body differs");
    let chunked_body = pattern(300 << 10, 9);
    let mut req = format!(
        "POST /publish/big HTTP/1.1\r\nHost: wsd\r\n{binary}Transfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for chunk in chunked_body.chunks(40_000) {
        req.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend(chunk);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    c.send_raw(&req);
    assert_eq!(c.read_http_response().status, 200);
    assert!(
        member.recv_binary() == chunked_body,
        "the chunked body differs"
    );
}

#[test]
fn a_client_that_pipelines_and_never_reads_is_paused_not_buffered() {
    let _w = watchdog();
    let cfg = Config {
        output_high_water: 64 << 10,
        output_low_water: 16 << 10,
        ..with_key()
    };
    let server = TestServer::start(cfg);
    let addr = server.addr();
    let text = format!("{}Content-Type: text/plain\r\n", auth());
    let one = post("/publish/nobody", &text, b"x");
    let requests = (32 << 20) / one.len();
    let mut c = Client::connect_raw(addr);
    let mut writer = c.stream.try_clone().unwrap();
    writer.set_write_timeout(None).unwrap();
    let all: Vec<u8> = one.repeat(requests);
    let total = all.len() as f64;
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = done.clone();
    let sender = std::thread::spawn(move || {
        use std::io::Write;
        writer.write_all(&all).unwrap();
        finished.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    // Wait until the server stops taking the input (it paused the reader
    // at the high watermark) or the writer got everything through.
    let mut last = -1.0;
    loop {
        let now = metric(addr, "wsd_bytes_received_total");
        // Each scrape's own request counts too: a few dozen bytes.
        if now - last < 1000.0 || done.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        last = now;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !done.load(std::sync::atomic::Ordering::SeqCst),
        "the server read all {total} bytes of requests whose answers nobody read"
    );
    // Meanwhile the server serves others.
    let mut echo = Client::connect_path(addr, "/other");
    echo.send_text("still here");
    assert_eq!(echo.recv_text(), "still here");
    // Reading the answers resumes it: every request is answered.
    let answer = {
        let mut a = Vec::new();
        api::write_published(&mut a, "/nobody", 0, true);
        a
    };
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    use std::io::Read;
    while got < requests * answer.len() {
        let n = c.stream.read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {got} bytes of answers");
        got += n;
    }
    assert_eq!(got, requests * answer.len());
    sender.join().unwrap();
}
