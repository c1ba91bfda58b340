//! `wsload agent` and `--agents`: agents as processes on loopback, a
//! controller that merges their figures, and the refusals (wrong key, a
//! target outside --allow-targets, an agent killed mid-run).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{die_with_this_thread, n, wsload, TestServer};
use wsd::Mode;

/// A key file of this test's own, removed on drop.
struct KeyFile(PathBuf);

impl KeyFile {
    fn new(key: &str) -> KeyFile {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "wsload-agents-{}-{}.key",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, key).unwrap();
        KeyFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A `wsload agent` process on 127.0.0.1:0; killed on drop.
struct Agent {
    child: Child,
    addr: String,
    /// Its stderr lines, as they come.
    log: mpsc::Receiver<String>,
}

impl Agent {
    fn start(key: &KeyFile, extra: &[&str]) -> Agent {
        let mut args = vec!["--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Agent::spawn(Command::new(env!("CARGO_BIN_EXE_wsload")), key, &args)
    }

    /// An agent in network namespace `ns`.
    fn start_in(ns: &str, key: &KeyFile, args: &[&str]) -> Agent {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_wsload")]);
        Agent::spawn(cmd, key, args)
    }

    fn spawn(mut cmd: Command, key: &KeyFile, args: &[&str]) -> Agent {
        let mut child = die_with_this_thread(&mut cmd)
            .args(["agent", "--key", key.path()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wsload agent");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the agent's first line");
        // "wsload agent: listening on 127.0.0.1:PORT; targets allowed: ..."
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split(';').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        let (tx, log) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Agent { child, addr, log }
    }

    /// Waits (under a deadline) for a stderr line containing `what`.
    fn wait_for(&self, what: &str) {
        loop {
            let line = self
                .log
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("the agent never said {what:?}"));
            if line.contains(what) {
                return;
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const KEY: &str = "a shared key for the agent tests\n";

/// The arguments, the first split at spaces (flags that need no quoting).
fn words<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let (first, rest) = args.split_first().unwrap();
    first.split(' ').chain(rest.iter().copied()).collect()
}

#[test]
fn two_agents_merge_into_one_report() {
    let server = TestServer::start(Mode::Echo, true);
    let key = KeyFile::new(KEY);
    let (a, b) = (Agent::start(&key, &[]), Agent::start(&key, &[]));
    let agents = format!("{},{}", a.addr, b.addr);
    let url = server.url();
    // The server is in this process: the controller samples it.
    let pid = std::process::id().to_string();
    let (csv, hgrm) = (KeyFile::new(""), KeyFile::new(""));
    let args = [
        "echo -c 5 -d 1s --warmup 0s --json - --agents",
        &agents,
        "--key",
        key.path(),
        "--server-pid",
        &pid,
        "--csv",
        csv.path(),
        "--hgrm",
        hgrm.path(),
        &url,
    ];
    let run = wsload(&words(&args));
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    assert!(v["server"]["cpu_s"].as_f64().is_some(), "{}", v["server"]);
    // The merged timeline's measured rows add up to the merged window.
    let csv = std::fs::read_to_string(csv.path()).unwrap();
    let measured: u64 = csv
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.get(1) == Some(&"measured"))
        .map(|f| f[2].parse::<u64>().unwrap())
        .sum();
    assert_eq!(measured, n(&v, &["window_sent"]), "{csv}");
    assert!(std::fs::read_to_string(hgrm.path())
        .unwrap()
        .contains("TotalCount"));
    let recs = v["agents"].as_array().expect("agents records");
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0]["agent"], a.addr.as_str());
    // The connections are split 3 + 2, and every count is the agents' sum.
    assert_eq!(
        n(&recs[0], &["connections"]) + n(&recs[1], &["connections"]),
        5
    );
    assert_eq!(n(&recs[0], &["connections"]), 3);
    for (merged, each) in [
        (&["sent"][..], "sent"),
        (&["received"], "received"),
        (&["window_sent"], "window_sent"),
        (&["window_received"], "window_received"),
        (&["latency", "count"], "latency_samples"),
    ] {
        let sum: u64 = recs.iter().map(|r| n(r, &[each])).sum();
        assert_eq!(n(&v, merged), sum, "{each}");
    }
    assert!(n(&v, &["sent"]) > 0);
    assert_eq!(n(&v, &["errors_total"]), 0);
    assert_eq!(v["params"]["agents"], 2);
    for r in recs {
        assert!(r["cpu_s"].as_f64().is_some() && r["saturated"].is_boolean());
    }
}

#[test]
fn broadcast_over_agents_loses_nothing() {
    let server = TestServer::start(Mode::Broadcast, true);
    let key = KeyFile::new(KEY);
    let (a, b) = (Agent::start(&key, &[]), Agent::start(&key, &[]));
    let agents = format!("{},{}", a.addr, b.addr);
    let url = server.url();
    let run = wsload(&[
        "broadcast",
        "-c",
        "4",
        "-R",
        "200",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--agents",
        &agents,
        "--key",
        key.path(),
        "--json",
        "-",
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let recs = v["agents"].as_array().expect("agents records");
    // The publisher runs on the first agent; the second only subscribes.
    assert_eq!(n(&recs[0], &["connections"]), 3);
    assert_eq!(n(&recs[1], &["connections"]), 2);
    assert_eq!(n(&recs[1], &["sent"]), 0);
    assert!(n(&recs[1], &["received"]) > 0);
    // Fan-out latency only where the publisher's clock is.
    assert_eq!(n(&recs[1], &["latency_samples"]), 0);
    assert!(n(&recs[0], &["latency_samples"]) > 0);
    assert_eq!(n(&v, &["broadcast", "lost"]), 0, "{v}");
    assert_eq!(
        n(&v, &["broadcast", "deliveries"]),
        n(&v, &["broadcast", "expected_deliveries"])
    );
    assert_eq!(n(&v, &["errors_total"]), 0);
}

#[test]
fn a_wrong_key_is_refused() {
    let server = TestServer::start(Mode::Echo, true);
    let (right, wrong) = (
        KeyFile::new(KEY),
        KeyFile::new("another key, just as long\n"),
    );
    let agent = Agent::start(&right, &[]);
    let url = server.url();
    let run = wsload(&[
        "echo",
        "-c",
        "1",
        "-d",
        "1s",
        "--agents",
        &agent.addr,
        "--key",
        wrong.path(),
        &url,
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(&agent.addr) && run.stderr.contains("wrong key"),
        "stderr:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("another key"), "the key was printed");
    agent.wait_for("wrong key");
}

#[test]
fn a_target_outside_allow_targets_is_refused() {
    let server = TestServer::start(Mode::Echo, true);
    let key = KeyFile::new(KEY);
    let agent = Agent::start(&key, &["--allow-targets", "10.0.0.0/8"]);
    let url = server.url();
    let run = wsload(&[
        "echo",
        "-c",
        "1",
        "-d",
        "1s",
        "--agents",
        &agent.addr,
        "--key",
        key.path(),
        &url,
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(&agent.addr) && run.stderr.contains("outside --allow-targets"),
        "stderr:\n{}",
        run.stderr
    );
    // Loopback by default: a routable address is refused before any load.
    let agent = Agent::start(&key, &[]);
    let run = wsload(&[
        "echo",
        "-c",
        "1",
        "-d",
        "1s",
        "--agents",
        &agent.addr,
        "--key",
        key.path(),
        "ws://192.0.2.1:9/",
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains("outside --allow-targets"),
        "stderr:\n{}",
        run.stderr
    );
}

#[test]
fn an_agent_killed_mid_run_fails_the_run_by_name() {
    let server = TestServer::start(Mode::Echo, true);
    let key = KeyFile::new(KEY);
    let a = Agent::start(&key, &[]);
    let mut b = Agent::start(&key, &[]);
    let agents = format!("{},{}", a.addr, b.addr);
    let url = server.url();
    let key_path = key.path().to_string();
    let controller = thread::spawn(move || {
        wsload(&[
            "rate", "-c", "2", "-R", "200", "-d", "60s", "--warmup", "0s", "--agents", &agents,
            "--key", &key_path, &url,
        ])
    });
    b.wait_for("running");
    b.child.kill().unwrap();
    let run = controller.join().unwrap();
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("agent {} failed", b.addr)),
        "stderr:\n{}",
        run.stderr
    );
    // The survivor stops its 60 s run when the controller goes (well
    // within wait_for's deadline), and is free for the next one.
    a.wait_for("the run is stopped");
    let url = server.url();
    let args = [
        "echo -c 1 -d 500ms --warmup 0s --agents",
        &a.addr,
        "--key",
        key.path(),
        &url,
    ];
    let run = wsload(&words(&args));
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
}

#[test]
fn an_agent_runs_one_run_at_a_time() {
    let server = TestServer::start(Mode::Echo, true);
    let key = KeyFile::new(KEY);
    let agent = Agent::start(&key, &[]);
    let (addr, url, key_path) = (agent.addr.clone(), server.url(), key.path().to_string());
    let first = thread::spawn(move || {
        wsload(&[
            "rate", "-c", "1", "-R", "50", "-d", "3s", "--warmup", "0s", "--agents", &addr,
            "--key", &key_path, &url,
        ])
    });
    agent.wait_for("running");
    let url = server.url();
    let run = wsload(&[
        "echo",
        "-c",
        "1",
        "-d",
        "1s",
        "--agents",
        &agent.addr,
        "--key",
        key.path(),
        &url,
    ]);
    assert_eq!(run.code, Some(1), "stderr:\n{}", run.stderr);
    assert!(run.stderr.contains("busy"), "stderr:\n{}", run.stderr);
    assert_eq!(first.join().unwrap().code, Some(0));
}

/// Two network namespaces of the test's own, each an agent's host, joined
/// to this one by a veth pair with addresses from 198.18.0.0/15 (RFC 2544's
/// benchmarking range); removed on drop.
struct Hosts {
    netns: Vec<String>,
    links: Vec<String>,
    /// Per host: (this side's address, the host's address).
    addrs: Vec<(String, String)>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` (install iproute2): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Hosts {
    fn new(n: usize) -> Result<Hosts, String> {
        let pid = std::process::id();
        let net = pid % 200;
        let mut h = Hosts {
            netns: Vec::new(),
            links: Vec::new(),
            addrs: Vec::new(),
        };
        for i in 0..n {
            let ns = format!("wsload-agent-{pid}-{i}");
            ip(&["netns", "add", &ns])?;
            h.netns.push(ns.clone());
            let (here, there) = (
                format!("wsl{}h{i}", pid % 100_000),
                format!("wsl{}a{i}", pid % 100_000),
            );
            ip(&["link", "add", &here, "type", "veth", "peer", "name", &there])?;
            h.links.push(here.clone());
            ip(&["link", "set", &there, "netns", &ns])?;
            let a = |k: usize| format!("198.18.{net}.{}", 4 * i + k);
            ip(&["addr", "add", &format!("{}/30", a(1)), "dev", &here])?;
            ip(&["link", "set", &here, "up"])?;
            let exec = |args: &[&str]| {
                let mut v = vec!["netns", "exec", &ns, "ip"];
                v.extend_from_slice(args);
                ip(&v)
            };
            exec(&["addr", "add", &format!("{}/30", a(2)), "dev", &there])?;
            exec(&["link", "set", &there, "up"])?;
            exec(&["link", "set", "lo", "up"])?;
            exec(&["route", "add", "default", "via", &a(1)])?;
            h.addrs.push((a(1), a(2)));
        }
        Ok(h)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = ip(&["link", "del", l]);
        }
        for ns in &self.netns {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A wsd echo server listening on `addr` (not loopback), stopped on drop.
fn server_on(addr: &str) -> (String, wsd::ShutdownHandle, thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let listen = format!("{addr}:0").parse().unwrap();
    let t = thread::spawn(move || {
        let mut server = wsd::Server::bind(wsd::Config {
            listen: vec![listen],
            mode: Mode::Echo,
            ..wsd::Config::default()
        })
        .expect("bind wsd");
        let _ = tx.send((server.local_addr(), server.shutdown_handle()));
        server.run().expect("wsd run");
    });
    let (addr, handle) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (format!("ws://{addr}/"), handle, t)
}

#[test]
fn agents_on_separate_hosts_in_network_namespaces() {
    let hosts = match Hosts::new(2) {
        Ok(h) => h,
        Err(e) if e.contains("Operation not permitted") || e.contains("Permission denied") => {
            eprintln!("\n\n**** SKIPPED agents_on_separate_hosts_in_network_namespaces: the kernel refused network namespaces: {e} ****\n\n");
            return;
        }
        Err(e) => panic!("setting up the namespaces: {e}"),
    };
    let (url, stop, thread) = server_on(&hosts.addrs[0].0);
    let key = KeyFile::new(KEY);
    let range = format!("{}/24", hosts.addrs[0].0);
    let agents: Vec<Agent> = hosts
        .netns
        .iter()
        .zip(&hosts.addrs)
        .map(|(ns, (_, there))| {
            let listen = format!("{there}:0");
            Agent::start_in(ns, &key, &["--listen", &listen, "--allow-targets", &range])
        })
        .collect();
    let names = format!("{},{}", agents[0].addr, agents[1].addr);
    let run = wsload(&[
        "echo",
        "-c",
        "4",
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--agents",
        &names,
        "--key",
        key.path(),
        "--json",
        "-",
        &url,
    ]);
    stop.shutdown();
    let _ = thread.join();
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    let v = run.json();
    let recs = v["agents"].as_array().expect("agents records");
    assert_eq!(recs.len(), 2);
    let sum: u64 = recs.iter().map(|r| n(r, &["received"])).sum();
    assert_eq!(n(&v, &["received"]), sum);
    assert!(recs.iter().all(|r| n(r, &["received"]) > 0));
    assert_eq!(n(&v, &["errors_total"]), 0);
    drop(agents);
}

#[test]
fn compare_takes_agents_too() {
    let server = TestServer::start(Mode::Echo, true);
    let key = KeyFile::new(KEY);
    let (a, b) = (Agent::start(&key, &[]), Agent::start(&key, &[]));
    let agents = format!("{},{}", a.addr, b.addr);
    let url = server.url();
    let run = wsload(&[
        "compare",
        "--rounds",
        "2",
        "echo",
        "-c",
        "4",
        "-d",
        "500ms",
        "--warmup",
        "0s",
        "--agents",
        &agents,
        "--key",
        key.path(),
        &url,
    ]);
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    // Each round ran on both agents.
    for agent in [&a, &b] {
        agent.wait_for("running echo, 2 connections");
        agent.wait_for("running echo, 2 connections");
    }
}

#[test]
fn a_hostile_peer_is_dropped_and_the_agent_serves_on() {
    use std::io::{Read as _, Write as _};
    let server = TestServer::start(Mode::Echo, true);
    let key = KeyFile::new(KEY);
    let agent = Agent::start(&key, &[]);
    // A length far past the limit: refused before any body is read.
    let mut s = std::net::TcpStream::connect(&agent.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&[0xFF; 4]).unwrap();
    let mut sink = Vec::new();
    // The agent's challenge, then the end of the stream.
    let _ = s.read_to_end(&mut sink);
    agent.wait_for("above the");
    let url = server.url();
    let args = [
        "echo -c 1 -d 500ms --warmup 0s --agents",
        &agent.addr,
        "--key",
        key.path(),
        &url,
    ];
    let run = wsload(&words(&args));
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
}
