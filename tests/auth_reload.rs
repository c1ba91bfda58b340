//! Key rotation by SIGHUP, on the wsd binary: the old key removed, new
//! upgrades with old tokens get 401 while connections opened with them
//! stay; a bad file at reload keeps the old keys and says which file.

mod common;
#[allow(dead_code)]
#[path = "../src/auth/mint.rs"]
mod mint;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use mint::Signer;

const OLD: &[u8; 32] = b"the-old-hs256-secret-32-bytes-xx";
const NEW: &[u8; 32] = b"the-new-hs256-secret-32-bytes-yy";

fn token(secret: &[u8]) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 120;
    Signer::hs256(secret).token(&format!(
        r#"{{"exp":{exp},"wsd":{{"read":["*"],"write":["*"]}}}}"#
    ))
}

fn status(addr: std::net::SocketAddr, token: &str) -> u16 {
    let extra = format!("Authorization: Bearer {token}\r\n");
    Client::try_upgrade(addr, "/r", &extra).1.status
}

#[test]
fn sighup_rotates_keys_and_keeps_open_connections() {
    let _w = watchdog();
    let files = Scratch::new();
    let key = files.dir.join("key");
    std::fs::write(&key, OLD).unwrap();
    let key_arg = key.to_str().unwrap();
    let mut wsd = WsdProcess::start(&[
        "--listen",
        "127.0.0.1:0",
        "--ping-interval",
        "off",
        "--auth-key",
        key_arg,
    ]);
    let addr = wsd.addrs[0];
    let old_token = token(OLD);
    let (mut open, resp) = Client::try_upgrade(
        addr,
        "/r",
        &format!("Authorization: Bearer {old_token}\r\n"),
    );
    assert_eq!(resp.status, 101);
    assert_eq!(status(addr, &token(NEW)), 401);

    // A bad file: the old key stays, and the log names the file, not the
    // bytes.
    std::fs::write(&key, b"too-short-secret").unwrap();
    wsd.signal("HUP");
    let line = wsd.stderr_line_containing("auth key reload failed", IO_TIMEOUT);
    assert!(
        line.contains("key") && !line.contains("too-short-secret"),
        "{line}"
    );
    assert_eq!(status(addr, &old_token), 101);

    // The new key alone: new upgrades need new tokens; the open one stays.
    std::fs::write(&key, NEW).unwrap();
    wsd.signal("HUP");
    wsd.stderr_line_containing("auth keys reloaded", IO_TIMEOUT);
    assert_eq!(status(addr, &old_token), 401);
    assert_eq!(status(addr, &token(NEW)), 101);
    open.assert_echo("still open");
    open.close();
    let metrics = String::from_utf8(http_get(addr, "/metrics").body).unwrap();
    for line in [
        "wsd_auth_reloads_total{result=\"ok\"} 1",
        "wsd_auth_reloads_total{result=\"error\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}:\n{metrics}");
    }
    wsd.signal("TERM");
    wsd.wait_exit(Duration::from_secs(10));
}

#[test]
fn a_bad_key_file_at_start_is_one_line_naming_it_and_exit_2() {
    let _w = watchdog();
    let files = Scratch::new();
    let key = files.dir.join("tiny");
    std::fs::write(&key, b"hunter2").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsd"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--auth-key",
            key.to_str().unwrap(),
        ])
        .output()
        .expect("run wsd");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("wsd: --auth-key ") && err.contains("tiny"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}
