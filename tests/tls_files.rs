//! The certificate files of a TLS wsd: the key forms accepted, bad files
//! at start (one line, exit status 2), and SIGHUP reloading the pair
//! without dropping a connection (a bad pair keeps the old one).

mod common;

use common::tls::*;
use common::*;
use wsd::Mode;

#[test]
fn ec_keys_in_sec1_form_are_accepted() {
    let _w = watchdog();
    let ca = TestCa::new("ca");
    let cert = ca.server_cert("sec1");
    let files = Scratch::new();
    let cert_path = files.write("cert.pem", &cert.chain_pem);
    let key_path = files.write("key.pem", pkcs8_ec_to_sec1(&cert.key_pem));
    let mut cfg = config(Mode::Echo);
    cfg.tls = Some(slot(&cert_path, &key_path));
    let server = TestServer::start(cfg);
    let mut c = Client::connect_tls(server.addr(), ca.client_config());
    c.assert_echo("sec1");
    c.close();
}

#[test]
fn bad_certificate_files_at_start_are_one_line_and_exit_2() {
    let _w = watchdog();
    let ca = TestCa::new("ca");
    let files = Scratch::new();
    let one = ca.server_cert("one");
    let other = ca.server_cert("other");
    let cert = files.write("cert.pem", &one.chain_pem);
    let key = files.write("key.pem", &one.key_pem);
    let other_key = files.write("other-key.pem", &other.key_pem);
    let garbage = files.write("garbage.pem", "not a PEM file\n");
    let missing = files.dir.join("missing.pem");
    let p = |path: &std::path::Path| path.to_str().unwrap().to_string();
    for (cert, key, says) in [
        (p(&missing), p(&key), "missing.pem"),
        (p(&garbage), p(&key), "no CERTIFICATE"),
        (p(&cert), p(&garbage), "private key"),
        (p(&cert), p(&cert), "private key"),
        (
            p(&cert),
            p(&other_key),
            "is not the private key of the first certificate",
        ),
    ] {
        let args = [
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ];
        let run = run_wsd_to_exit(&args, &[], IO_TIMEOUT);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {}", run.stderr);
        assert_eq!(run.stdout, "", "no banner");
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {lines:?}");
        assert!(
            lines[0].starts_with("wsd: ") && lines[0].contains(says),
            "{says}: {lines:?}"
        );
    }
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_anyone() {
    let _w = watchdog();
    let ca = TestCa::new("ca");
    let first = ca.server_cert("first");
    let second = ca.server_cert("second");
    let files = Scratch::new();
    let (cert, key) = files.write_pair(&first);
    // Two reactors: each takes the new pair at its next accept.
    let mut wsd = WsdProcess::start(&[
        "--threads",
        "2",
        "--listen",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    assert!(wsd.banner.contains("wss://"), "{}", wsd.banner);
    let addr = wsd.addrs[0];
    let client = ca.client_config();
    let peer = |c: &Client| c.tls().unwrap().peer_certificates().unwrap()[0].clone();

    let mut old = Client::connect_tls(addr, client.clone());
    assert_eq!(peer(&old), first.der);
    files.write_pair(&second);
    wsd.signal("HUP");
    wsd.stderr_line_containing("certificate reloaded", IO_TIMEOUT);
    old.assert_echo("the old session goes on");
    let mut new = Client::connect_tls(addr, client.clone());
    assert_eq!(peer(&new), second.der, "new handshakes get the new pair");
    new.assert_echo("new");
    // Connections spread over both reactors by their address hash.
    for i in 0..8 {
        let c = Client::connect_tls(addr, client.clone());
        assert_eq!(peer(&c), second.der, "connection {i}");
        c.close();
    }

    // A bad file: logged, counted, and the pair in use stays.
    files.write(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    );
    wsd.signal("HUP");
    let line = wsd.stderr_line_containing("certificate reload failed", IO_TIMEOUT);
    assert!(line.contains("key.pem"), "{line}");
    let mut after = Client::connect_tls(addr, client.clone());
    assert_eq!(peer(&after), second.der);
    let metrics = https_get(addr, client, "/metrics").body;
    assert_eq!(
        sample(&metrics, "wsd_tls_reloads_total{result=\"ok\"}"),
        1.0
    );
    assert_eq!(
        sample(&metrics, "wsd_tls_reloads_total{result=\"error\"}"),
        1.0
    );
    for c in [&mut old, &mut new, &mut after] {
        c.assert_echo("all three");
    }
    old.close();
    new.close();
    after.close();
    wsd.signal("TERM");
    assert!(wsd.wait_exit(IO_TIMEOUT).success());
}
