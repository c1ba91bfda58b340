//! wsload against wss:// (an in-process wsd with a certificate made here):
//! every mode over TLS, the trust flags, and handshake rates that include
//! TLS.

mod common;

use std::path::Path;

use common::{n, wsload, TestServer};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use wsd::{Config, Mode};

/// A wsd speaking TLS with a certificate for 127.0.0.1 and localhost from
/// a CA made for the test; the CA's PEM file stays while it lives.
struct TlsServer {
    server: TestServer,
    dir: std::path::PathBuf,
}

/// A fresh scratch directory for one test's files.
fn scratch() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wsload-tls-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

impl TlsServer {
    /// wsd with `cert_path` and `key_path` in `dir`.
    fn serve(mode: Mode, dir: std::path::PathBuf, cert: &Path, key: &Path) -> TlsServer {
        let (slot, _) = wsd::tls::TlsSlot::open(cert, key).expect("TLS files");
        let server = TestServer::start_with(Config {
            mode,
            tls: Some(slot),
            ..Config::default()
        });
        TlsServer { server, dir }
    }

    /// A server whose certificate is self-signed and says `CA:TRUE`, as
    /// `openssl req -x509` makes one by default, for `names`, valid from
    /// `not_before` to `not_after`; [`TlsServer::ca`] is that certificate.
    fn self_signed_ca(names: &[&str], not_before: i32, not_after: i32) -> TlsServer {
        let dir = scratch();
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.not_before = rcgen::date_time_ymd(not_before, 1, 1);
        p.not_after = rcgen::date_time_ymd(not_after, 1, 1);
        let key = KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("certificate");
        let cert_path = dir.join("cert.pem");
        std::fs::write(&cert_path, cert.pem()).expect("write");
        std::fs::write(dir.join("ca.pem"), cert.pem()).expect("write");
        let key_path = dir.join("key.pem");
        std::fs::write(&key_path, key.serialize_pem()).expect("write");
        TlsServer::serve(Mode::Echo, dir, &cert_path, &key_path)
    }

    fn start(mode: Mode) -> TlsServer {
        let dir = scratch();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "wsload test CA");
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("certificate");
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        write("ca.pem", ca.pem());
        let cert_path = write("cert.pem", cert.pem());
        let key_path = write("key.pem", key.serialize_pem());
        TlsServer::serve(mode, dir, &cert_path, &key_path)
    }

    fn url(&self, host: &str) -> String {
        format!("wss://{host}:{}/", self.server.addr.port())
    }

    fn ca(&self) -> String {
        self.dir.join("ca.pem").to_str().expect("utf-8").to_string()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn echo_over_wss_verifies_every_reply() {
    let s = TlsServer::start(Mode::Echo);
    let (url, ca) = (s.url("localhost"), s.ca());
    let run = wsload(&[
        "echo",
        "-c",
        "4",
        "-t",
        "2",
        "-d",
        "500ms",
        "--warmup",
        "0s",
        "--depth",
        "4",
        "-s",
        "100KiB",
        "--ca-file",
        &ca,
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert!(n(&v, &["received"]) > 0);
    assert_eq!(n(&v, &["sent"]), n(&v, &["received"]));
    assert_eq!(n(&v, &["errors_total"]), 0);
    assert_eq!(n(&v, &["mismatches"]), 0);
}

#[test]
fn conns_over_wss_counts_tls_handshakes() {
    let s = TlsServer::start(Mode::Echo);
    let (url, ca) = (s.url("127.0.0.1"), s.ca());
    let run = wsload(&[
        "conns",
        "-c",
        "50",
        "-d",
        "300ms",
        "--ca-file",
        &ca,
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert_eq!(n(&v, &["connections", "opened"]), 50);
    assert!(
        run.stderr.contains("TLS+upgrade handshakes/s"),
        "{}",
        run.stderr
    );
}

#[test]
fn rate_broadcast_and_churn_run_over_wss() {
    let echo = TlsServer::start(Mode::Echo);
    let (url, ca) = (echo.url("localhost"), echo.ca());
    for args in [
        &[
            "rate", "-c", "3", "-R", "600", "-d", "500ms", "--warmup", "0s",
        ][..],
        &[
            "churn",
            "-c",
            "6",
            "-d",
            "500ms",
            "--warmup",
            "0s",
            "--messages",
            "3",
        ][..],
    ] {
        let mut all = args.to_vec();
        all.extend(["--ca-file", &ca, "--json", "-", &url]);
        let run = wsload(&all);
        assert_eq!(run.code, Some(0), "{args:?} stderr:\n{}", run.stderr);
        assert_eq!(n(&run.json(), &["errors_total"]), 0, "{args:?}");
    }
    let room = TlsServer::start(Mode::Broadcast);
    let (url, ca) = (room.url("localhost"), room.ca());
    let run = wsload(&[
        "broadcast",
        "-c",
        "4",
        "-R",
        "300",
        "-d",
        "500ms",
        "--warmup",
        "0s",
        "--ca-file",
        &ca,
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert_eq!(n(&run.json(), &["errors_total"]), 0);
}

#[test]
fn an_untrusted_certificate_fails_unless_insecure() {
    let s = TlsServer::start(Mode::Echo);
    let url = s.url("localhost");
    // Only the system's roots: the test CA is not among them.
    let run = wsload(&["conns", "-c", "2", "-d", "200ms", &url]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("TLS failure"), "{}", run.stderr);
    assert!(
        run.stderr.to_lowercase().contains("certificate"),
        "{}",
        run.stderr
    );
    let run = wsload(&["conns", "-c", "2", "-d", "200ms", "--insecure", &url]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
}

#[test]
fn a_bad_ca_file_is_a_usage_error() {
    let s = TlsServer::start(Mode::Echo);
    let url = s.url("localhost");
    let run = wsload(&["conns", "-c", "1", "--ca-file", "/nonexistent/ca.pem", &url]);
    assert_eq!(run.code, Some(2), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("--ca-file"), "{}", run.stderr);
}

#[test]
fn a_self_signed_ca_certificate_given_as_ca_file_is_trusted_as_the_server() {
    let s = TlsServer::self_signed_ca(&["localhost"], 2020, 2090);
    let ca = s.ca();
    let run = wsload(&[
        "echo",
        "-c",
        "2",
        "-d",
        "300ms",
        "--warmup",
        "0s",
        "--ca-file",
        &ca,
        "--json",
        "-",
        &s.url("localhost"),
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert!(n(&v, &["received"]) > 0);
    assert_eq!(n(&v, &["errors_total"]), 0);
    // Trusted by identity, but still for its own names only.
    let run = wsload(&[
        "conns",
        "-c",
        "1",
        "-d",
        "100ms",
        "--ca-file",
        &ca,
        &s.url("127.0.0.1"),
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("TLS failure"), "{}", run.stderr);
    assert!(run.stderr.contains("not valid for name"), "{}", run.stderr);
}

#[test]
fn an_expired_self_signed_certificate_is_refused_even_when_named() {
    let s = TlsServer::self_signed_ca(&["localhost"], 2001, 2002);
    let ca = s.ca();
    let run = wsload(&[
        "conns",
        "-c",
        "1",
        "-d",
        "100ms",
        "--ca-file",
        &ca,
        &s.url("localhost"),
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("expired"), "{}", run.stderr);
}
