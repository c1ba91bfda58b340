//! Plain HTTP against wsd: one request per connection, and `/metrics`.

use super::*;

/// A parsed HTTP response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A plain HTTP exchange on a fresh connection: sends `request` as is,
/// reads the answer (its body by `Content-Length` unless `head_only`), and
/// checks that the server then closes the connection (EOF).
pub fn http_exchange(addr: SocketAddr, request: &str, head_only: bool) -> HttpResponse {
    let mut c = Client::connect_raw(addr);
    c.send_raw(request.as_bytes());
    let resp = if head_only {
        c.read_http_head()
    } else {
        c.read_http_response()
    };
    c.expect_eof();
    resp
}

/// `GET path` as a plain HTTP request (no upgrade); the answer, after which
/// the server has closed the connection.
pub fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        false,
    )
}

/// The value of the unlabelled metric `name` in a `/metrics` answer.
pub fn metric(addr: SocketAddr, name: &str) -> f64 {
    let resp = http_get(addr, "/metrics");
    assert_eq!(resp.status, 200, "{resp:?}");
    let body = String::from_utf8(resp.body).expect("UTF-8 metrics");
    body.lines()
        .find_map(|l| {
            let (n, v) = l.split_once(' ')?;
            (n == name).then(|| v.trim().parse().expect("metric value"))
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{body}"))
}

/// Polls `/metrics` (bounded by [`IO_TIMEOUT`]) until `wsd_connections_open`
/// is `open` (the `/metrics` connection itself counts); panics with the
/// last value if it never gets there.
pub fn wait_connections_open(addr: SocketAddr, open: usize) {
    let until = std::time::Instant::now() + IO_TIMEOUT;
    loop {
        let now = metric(addr, "wsd_connections_open");
        if now == open as f64 {
            return;
        }
        assert!(
            std::time::Instant::now() < until,
            "wsd_connections_open stayed at {now}, expected {open}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
