//! `compare` reaching the servers it starts over TLS and in a room: a
//! `wsd --tls-cert` started afresh each round, loaded over wss:// at the
//! `--server-url` template, trusting the test's own CA (`--ca-file`), or
//! any certificate (`--insecure`), or, with neither, failing the handshake.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{target_dir, wsload};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::Value;

/// wsd, built with cargo into this test's target directory and profile (a
/// no-op when up to date).
fn wsd() -> &'static Path {
    static WSD: OnceLock<PathBuf> = OnceLock::new();
    WSD.get_or_init(|| {
        let (target, profile) = target_dir();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "wsd",
            "--bin",
            "wsd",
            "--target-dir",
        ])
        .arg(&target);
        if profile != "debug" {
            cmd.args(["--profile", &profile]);
        }
        assert!(cmd.status().expect("run cargo").success(), "building wsd");
        target.join(&profile).join("wsd")
    })
}

/// A CA, and a certificate it signed for localhost and 127.0.0.1, in a
/// scratch directory removed when dropped.
struct Certs {
    dir: PathBuf,
}

impl Certs {
    fn make(what: &str) -> Certs {
        let dir = std::env::temp_dir().join(format!("wsload-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "wsload compare test CA");
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("certificate");
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
        std::fs::write(dir.join("cert.pem"), cert.pem()).expect("write");
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("write");
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("utf-8").to_string()
    }

    /// `--server` for a broadcast wsd serving TLS with these files.
    fn server(&self) -> String {
        format!(
            "wsd={} --listen 127.0.0.1:{{port}} --mode broadcast --log-level warn --tls-cert {} --tls-key {}",
            wsd().display(),
            self.path("cert.pem"),
            self.path("key.pem")
        )
    }
}

impl Drop for Certs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One round of broadcast against the started wsd at `url`, with `trust`
/// (the TLS flags); returns the exit code and the document.
fn compare(certs: &Certs, url: &str, trust: &[&str]) -> (Option<i32>, Value, String) {
    let server = certs.server();
    let mut args = vec![
        "compare",
        "--server",
        &server,
        "--server-url",
        url,
        "--rounds",
        "1",
        "--json",
        "-",
        "broadcast",
        "-c",
        "2",
        "-R",
        "200",
        "-d",
        "500ms",
        "--warmup",
        "100ms",
        "--grace",
        "500ms",
    ];
    args.extend_from_slice(trust);
    let run = wsload(&args);
    let doc = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr));
    (run.code, doc, run.stderr)
}

fn round(doc: &Value) -> &Value {
    &doc["scenarios"][0]["servers"][0]["rounds"][0]
}

#[test]
fn a_started_wsd_is_loaded_over_wss_in_the_room_the_url_names() {
    let certs = Certs::make("compare-tls");
    let template = "wss://localhost:{port}/room";
    let ca = certs.path("ca.pem");
    let (code, doc, stderr) = compare(&certs, template, &["--ca-file", &ca]);
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    assert_eq!(doc["setup"]["servers"][0]["url"], template);
    let r = round(&doc);
    let url = r["url"].as_str().expect("url");
    assert!(
        url.starts_with("wss://localhost:") && url.ends_with("/room"),
        "{url}"
    );
    assert_eq!(r["run"]["errors_total"], 0, "{r}");
    assert!(r["run"]["window_received"].as_u64() > Some(0), "{r}");
    // Each handshake was a TLS one, on the room's path.
    assert_eq!(r["run"]["target"].as_str(), Some(url), "{r}");
}

#[test]
fn an_untrusted_certificate_fails_unless_insecure() {
    let certs = Certs::make("compare-tls-trust");
    let template = "wss://127.0.0.1:{port}/";
    // Neither --ca-file nor --insecure: the system's roots do not know the
    // test's CA, so no connection opens and the round is not clean.
    let (code, doc, stderr) = compare(&certs, template, &[]);
    assert_eq!(code, Some(1), "stderr:\n{stderr}");
    let r = round(&doc);
    assert!(r["run"]["errors_total"].as_u64() > Some(0), "{r}");
    assert_eq!(r["run"]["connections"]["opened"], 0, "{r}");
    let (code, doc, stderr) = compare(&certs, template, &["--insecure"]);
    assert_eq!(code, Some(0), "stderr:\n{stderr}");
    assert_eq!(round(&doc)["run"]["errors_total"], 0);
}
