//! wsload against a server that shares no code with it: the
//! tokio-tungstenite peer of `benches/peers/tungstenite-peer`, a crate of
//! its own outside the workspace, built here with cargo from the crate
//! registry. Every other test of wsload talks to servers built on
//! `wsd::proto`, the codec wsload itself uses, so a misreading of RFC 6455
//! that both share would pass them; here tungstenite is the other side.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::thread;

use common::{die_with_this_thread, n, target_dir, wsload, DEADLINE};

/// Builds the peer (a no-op when up to date) into `TARGET/peers`, as
/// `benches/compare.sh` does, and returns its binary. A failed build fails
/// the test with cargo's own words: the peer comes from the crate registry,
/// and a machine that cannot reach it cannot run this test.
fn peer_binary() -> &'static Path {
    static PEER: OnceLock<PathBuf> = OnceLock::new();
    PEER.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../benches/peers/tungstenite-peer/Cargo.toml");
        let (target, _) = target_dir();
        let target = target.join("peers");
        let out = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target)
            .stdin(Stdio::null())
            .output()
            .expect("run cargo");
        assert!(
            out.status.success(),
            "building the tokio-tungstenite peer ({}) failed with {}:\n{}",
            manifest.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let bin = target.join("debug/tungstenite-peer");
        assert!(bin.exists(), "{} not built", bin.display());
        bin
    })
}

/// A running peer on a free loopback port, killed when dropped.
struct Peer {
    child: Child,
    url: String,
}

impl Peer {
    /// Starts the peer (`--broadcast` in `args` for its broadcast server)
    /// and waits for its `listening on ws://ADDR` line.
    fn start(args: &[&str]) -> Peer {
        let mut cmd = Command::new(peer_binary());
        let mut child = die_with_this_thread(&mut cmd)
            .arg("127.0.0.1:0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the peer");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the peer did not say where it listens within {DEADLINE:?}")
        });
        let addr = line
            .strip_prefix("listening on ws://")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("the peer said {line:?}"));
        Peer {
            child,
            url: format!("ws://{addr}/"),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn echo_against_tungstenite_checks_every_reply() {
    let peer = Peer::start(&[]);
    // Stamped binary, stamped text, and text too small for a stamp.
    for payload in [
        &["-s", "200"][..],
        &["-s", "100", "--text"],
        &["-s", "5", "--text"],
    ] {
        let mut args = vec![
            "echo", "-c", "4", "--depth", "4", "-d", "500ms", "--warmup", "0s", "--json", "-",
        ];
        args.extend_from_slice(payload);
        args.push(&peer.url);
        let run = wsload(&args);
        assert_eq!(run.code, Some(0), "{payload:?} stderr:\n{}", run.stderr);
        let v = run.json();
        assert_eq!(n(&v, &["connections", "opened"]), 4, "{payload:?}");
        assert!(n(&v, &["received"]) > 0, "{payload:?}");
        assert_eq!(n(&v, &["sent"]), n(&v, &["received"]), "{payload:?}");
        assert_eq!(n(&v, &["mismatches"]), 0, "{payload:?}");
        assert_eq!(n(&v, &["errors_total"]), 0, "{payload:?}");
    }
}

#[test]
fn broadcast_against_tungstenite_delivers_every_message_to_every_subscriber() {
    let peer = Peer::start(&["--broadcast"]);
    let run = wsload(&[
        "broadcast",
        "-c",
        "4",
        "-R",
        "200",
        "-d",
        "500ms",
        "--warmup",
        "0s",
        "--json",
        "-",
        &peer.url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let b = &v["broadcast"];
    let published = n(b, &["published"]);
    assert!(published > 0, "{v}");
    // The peer sends every message to every client, the publisher too.
    assert_eq!(n(b, &["deliveries"]), published * 4, "{v}");
    assert_eq!(n(b, &["lost"]), 0, "{v}");
    assert_eq!(n(b, &["duplicated"]), 0, "{v}");
    assert_eq!(n(b, &["out_of_order"]), 0, "{v}");
    assert_eq!(n(b, &["publisher_received"]), published, "{v}");
    assert_eq!(n(&v, &["errors_total"]), 0, "{v}");
}
