//! The flags: what each mode takes, shows, and refuses.

use super::*;
use clap::CommandFactory;

use crate::cli::matrix::{Matrix, MatrixError, ServerSpec};
use crate::stamp::Encoding;
use crate::upgrade::Upgrade;

/// A single run's plan; compare and report are refused here.
fn parse(args: &[&str]) -> Result<Plan, clap::Error> {
    let mut argv = vec!["wsload"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).map(|c| match c.command.into_job() {
        Job::Single(plan) => *plan,
        other => panic!("not a single run: {other:?}"),
    })
}

/// `compare`'s matrix: a clap error, or the matrix or why it cannot be.
fn matrix(args: &[&str]) -> Result<Result<Matrix, MatrixError>, clap::Error> {
    let mut argv = vec!["wsload", "compare"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).map(|c| match c.command.into_job() {
        Job::Compare(c) => c.into_matrix(),
        other => panic!("not compare: {other:?}"),
    })
}

/// The built command at `path` (e.g. `["compare", "echo"]`).
fn command(path: &[&str]) -> clap::Command {
    let mut cmd = Cli::command();
    cmd.build();
    for name in path {
        cmd = cmd.find_subcommand(name).cloned().expect("subcommand");
    }
    cmd
}

/// The long flags a command takes, without --help.
fn longs(path: &[&str]) -> Vec<String> {
    command(path)
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| *l != "help")
        .map(str::to_string)
        .collect()
}

const MODES: [&str; 5] = ["echo", "rate", "broadcast", "conns", "churn"];

#[test]
fn the_clap_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn wrk_style_echo_flags() {
    let plan = parse(&[
        "echo",
        "-c",
        "100",
        "-d",
        "5s",
        "-t",
        "2",
        "-s",
        "1KiB",
        "--depth",
        "8",
        "--text",
        "--warmup",
        "250ms",
        "ws://127.0.0.1:9001/",
    ])
    .expect("valid");
    let Scenario::Echo(a) = &plan.scenario else {
        panic!("{plan:?}")
    };
    assert_eq!(a.connections, 100);
    assert_eq!(a.phases.duration, Duration::from_secs(5));
    assert_eq!(a.client.threads, 2);
    assert_eq!(a.phases.warmup, Duration::from_millis(250));
    assert_eq!(a.payload.size, 1024);
    assert_eq!(a.payload.encoding(), Encoding::Text);
    assert_eq!(a.depth, 8);
    assert_eq!(plan.out.targets[0].addr.port(), 9001);
    assert!(plan.validate().is_ok());
}

#[test]
fn defaults() {
    let plan = parse(&["echo", "ws://127.0.0.1:9001"]).expect("valid");
    let Scenario::Echo(a) = &plan.scenario else {
        panic!("{plan:?}")
    };
    assert_eq!(a.connections, 10);
    assert_eq!(a.client.threads, 1);
    assert_eq!(a.depth, 1);
    assert_eq!(a.payload.size, 64);
    assert_eq!(a.payload.encoding(), Encoding::Binary);
    assert_eq!(a.client.upgrade(), Upgrade::default());
}

#[test]
fn rate_needs_a_rate() {
    assert!(parse(&["rate", "ws://127.0.0.1:9001"]).is_err());
    assert!(parse(&["rate", "-R", "0", "ws://127.0.0.1:9001"]).is_err());
    let plan = parse(&["rate", "-R", "2500", "ws://127.0.0.1:9001"]).expect("valid");
    assert!(matches!(plan.scenario, Scenario::Rate(RateArgs { rate, .. }) if rate == 2500.0));
}

#[test]
fn churn_flags_and_defaults() {
    let plan = parse(&["churn", "-c", "200", "ws://127.0.0.1:9001"]).expect("valid");
    let Scenario::Churn(a) = &plan.scenario else {
        panic!("{plan:?}")
    };
    assert_eq!(a.connections, 200);
    assert_eq!(
        (a.messages, a.depth, a.abrupt, a.payload.seed),
        (10, 1, 30, 1)
    );
    assert!(parse(&["churn", "--abrupt", "101", "ws://127.0.0.1:9001"]).is_err());
    assert!(parse(&["churn", "--messages", "0", "ws://127.0.0.1:9001"]).is_err());
}

#[test]
fn wss_urls_and_the_trust_flags_are_taken_by_every_mode() {
    for mode in MODES {
        let mut argv = vec![mode, "--ca-file", "ca.pem", "wss://localhost:9443/x"];
        if mode == "rate" || mode == "broadcast" {
            argv.extend(["-R", "10"]);
        }
        assert!(parse(&argv).is_ok(), "{mode} with wss:// and --ca-file");
        let insecure = [
            mode,
            "--insecure",
            "--ca-file",
            "ca.pem",
            "wss://localhost:1",
        ];
        assert!(
            parse(&insecure).is_err(),
            "{mode}: --insecure and --ca-file conflict"
        );
    }
}

#[test]
fn text_and_binary_conflict() {
    assert!(parse(&["echo", "--text", "--binary", "ws://127.0.0.1:1"]).is_err());
}

#[test]
fn bad_urls_are_usage_errors() {
    for url in ["http://127.0.0.1", "nonsense", "wss://"] {
        let e = parse(&["echo", url]).expect_err(url);
        assert_eq!(e.exit_code(), 2, "{url}");
    }
}

#[test]
fn any_payload_size_from_zero_to_64_mib() {
    for (args, size) in [
        (&["-s", "0"][..], 0),
        (&["-s", "1"][..], 1),
        (&["-s", "16", "--text"][..], 16),
        (&["-s", "64MiB"][..], 64 << 20),
    ] {
        let mut argv = vec!["echo"];
        argv.extend_from_slice(args);
        argv.push("ws://127.0.0.1:1");
        let plan = parse(&argv).expect("valid size");
        assert_eq!(plan.scenario.payload().map(|p| p.size), Some(size));
    }
    let e = parse(&["echo", "-s", "65MiB", "ws://127.0.0.1:1"]).expect_err("too large");
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn one_url_per_single_run_except_broadcast_nodes() {
    for mode in ["echo", "rate", "conns", "churn"] {
        let mut argv = vec![mode, "ws://127.0.0.1:1", "ws://127.0.0.1:2"];
        if mode == "rate" {
            argv.extend(["-R", "10"]);
        }
        assert!(parse(&argv).is_err(), "{mode}");
    }
    let plan = parse(&["broadcast", "ws://127.0.0.1:1", "ws://127.0.0.1:2"]).expect("nodes");
    assert_eq!(plan.out.targets.len(), 2);
}

#[test]
fn compare_pairs_processes_with_urls() {
    let me = std::process::id().to_string();
    let at = format!("ws://127.0.0.1:9002@{me}");
    let m = matrix(&[
        "echo",
        "-c",
        "100",
        "-d",
        "5s",
        "ws://127.0.0.1:9001",
        &at,
        "--rounds",
        "5",
    ])
    .expect("parses")
    .expect("valid");
    assert_eq!(m.rounds, 5);
    assert_eq!(m.entries[0].rounds, 5);
    let pids: Vec<Option<u32>> = m
        .servers
        .iter()
        .map(|s| match s {
            ServerSpec::Running { pid, .. } => *pid,
            ServerSpec::Start { .. } => panic!("{s:?}"),
        })
        .collect();
    assert_eq!(pids, [None, Some(std::process::id())]);
    let m = matrix(&[
        "echo",
        "ws://127.0.0.1:9001",
        "ws://127.0.0.1:9002",
        "--server-pid",
        &me,
        "--server-pid",
        &me,
    ])
    .expect("parses")
    .expect("valid");
    assert_eq!(m.rounds, 3);
    let e = matrix(&[
        "echo",
        "ws://127.0.0.1:9001",
        "ws://127.0.0.1:9002",
        "--server-pid",
        "1",
    ])
    .expect("parses")
    .expect_err("one pid for two URLs");
    assert!(
        matches!(&e, MatrixError::Usage(path, msg) if path == &["compare", "echo"] && msg.contains("2 URLs but 1 --server-pid")),
        "{e:?}"
    );
}

#[test]
fn compare_starts_servers_named_with_a_port() {
    let m = matrix(&[
        "--server",
        "a=srv --port {port}",
        "--server",
        "b = env X=1 srv2 127.0.0.1:{port}",
        "echo",
        "--server-cpus",
        "0",
        "ws://127.0.0.1:9001",
    ])
    .expect("parses")
    .expect("valid");
    let names: Vec<&str> = m.servers.iter().map(ServerSpec::name).collect();
    assert_eq!(names, ["a", "b", "ws://127.0.0.1:9001"]);
    assert_eq!(
        m.servers[1].command_for("echo"),
        Some("env X=1 srv2 127.0.0.1:{port}")
    );
    assert_eq!(m.server_cpus.map(|l| l.to_string()).as_deref(), Some("0"));
    let no_port = matrix(&["--server", "a=srv", "echo"]).expect("parses");
    assert!(matches!(no_port, Err(MatrixError::Usage(_, m)) if m.contains("no {port}")));
    let twice =
        matrix(&["--server", "a=x {port}", "--server", "a=y {port}", "echo"]).expect("parses");
    assert!(
        matches!(twice, Err(MatrixError::Usage(_, m)) if m.contains("two servers are named 'a'"))
    );
    assert!(matrix(&["--server", "a b=x {port}", "echo"]).is_err());
    let nothing = matrix(&["echo"]).expect("parses");
    assert!(matches!(nothing, Err(MatrixError::Usage(_, m)) if m.contains("nothing to compare")));
    let neither = matrix(&["--rounds", "2"]).expect("parses");
    assert!(matches!(neither, Err(MatrixError::Usage(_, m)) if m.contains("--scenarios FILE")));
    let both = matrix(&["--scenarios", "x.toml", "echo", "ws://127.0.0.1:1"]).expect("parses");
    assert!(matches!(both, Err(MatrixError::Usage(_, m)) if m.contains("not both")));
    assert!(
        matrix(&["--only", "a", "echo", "ws://127.0.0.1:1"]).is_err(),
        "--only needs --scenarios"
    );
    // Servers come before the mode: a repeated flag after it would
    // silently replace those before.
    assert!(matrix(&["echo", "--server", "a=x {port}"]).is_err());
}

#[test]
fn a_single_run_samples_one_server() {
    let e = parse(&[
        "echo",
        "--server-pid",
        "1",
        "--server-pid",
        "2",
        "ws://127.0.0.1:1",
    ])
    .expect_err("two pids");
    assert_eq!(e.exit_code(), 2);
    let plan = parse(&[
        "broadcast",
        "--server-pid",
        "1",
        "--server-pid",
        "2",
        "ws://127.0.0.1:1",
    ])
    .expect("parses");
    assert!(plan.validate().is_err());
}

#[test]
fn compare_takes_no_single_run_files() {
    for mode in MODES {
        let flags = longs(&["compare", mode]);
        for f in ["csv", "hgrm"] {
            assert!(!flags.iter().any(|l| l == f), "compare {mode} lists --{f}");
        }
        for f in [
            "json",
            "html",
            "svg",
            "server-cpus",
            "load-cpus",
            "server-pid",
            "rounds",
            "origin",
            "protocol",
            "header",
        ] {
            assert!(flags.iter().any(|l| l == f), "compare {mode} lacks --{f}");
        }
        let mut argv = vec![mode, "--csv", "x.csv", "ws://127.0.0.1:1"];
        if mode == "rate" {
            argv.extend(["-R", "10"]);
        }
        assert!(matrix(&argv).is_err(), "compare {mode} took --csv");
    }
}

#[test]
fn each_mode_lists_the_flags_it_uses_and_no_others() {
    let load = [
        "connections",
        "duration",
        "warmup",
        "grace",
        "size",
        "text",
        "binary",
        "payload",
        "seed",
    ];
    let client = [
        "threads",
        "connect-timeout",
        "source-addrs",
        "origin",
        "protocol",
        "header",
        "ca-file",
        "insecure",
        "deflate",
        "token",
        "jwt-key",
        "jwt-claims",
        "jwt-alg",
        "token-in-query",
        "agents",
        "key",
    ];
    let single = ["server-pid", "json", "hgrm", "csv"];
    let want = |extra: &[&str], out: &[&str]| {
        let mut v: Vec<String> = load
            .iter()
            .chain(extra)
            .chain(&client)
            .chain(out)
            .map(|s| s.to_string())
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(sorted(longs(&["echo"])), want(&["depth"], &single));
    let find_max = [
        "find-max",
        "p99",
        "from",
        "to",
        "max-steps",
        "resolution",
        "html",
    ];
    let rate: Vec<&str> = ["rate"].iter().chain(&find_max).copied().collect();
    assert_eq!(sorted(longs(&["rate"])), want(&rate, &single));
    assert_eq!(
        sorted(longs(&["broadcast"])),
        want(
            &[
                "publishers",
                "rate",
                "publish-url",
                "api-key",
                "publishers-elsewhere"
            ],
            &single
        )
    );
    assert_eq!(
        sorted(longs(&["churn"])),
        want(&["messages", "depth", "abrupt"], &single)
    );
    let mut conns: Vec<String> = ["connections", "duration"]
        .iter()
        .chain(&client)
        .chain(&["server-pid", "json", "hgrm"])
        .map(|s| s.to_string())
        .collect();
    conns.sort();
    assert_eq!(sorted(longs(&["conns"])), conns);
}

#[test]
fn help_speaks_only_of_its_own_mode() {
    for mode in MODES {
        for path in [vec![mode], vec!["compare", mode]] {
            let help = command(&path).render_long_help().to_string();
            if path[0] != "compare" {
                assert!(!help.contains("compare"), "{path:?}:\n{help}");
            }
            for word in ["broadcast", "subscriber", "publisher"] {
                assert_eq!(
                    help.contains(word),
                    mode == "broadcast",
                    "{path:?} help and {word}:\n{help}"
                );
            }
        }
    }
}

#[test]
fn conns_has_no_warm_up_or_grace() {
    let plan = parse(&["conns", "-d", "3s", "ws://127.0.0.1:1"]).expect("valid");
    let p = plan.scenario.phases();
    assert_eq!(
        (p.duration, p.warmup, p.grace),
        (Duration::from_secs(3), Duration::ZERO, Duration::ZERO)
    );
    assert!(parse(&["conns", "--warmup", "1s", "ws://127.0.0.1:1"]).is_err());
}

#[test]
fn every_mode_takes_origin_protocols_and_headers() {
    for mode in MODES {
        let mut argv = vec![
            mode,
            "--origin",
            "https://a.example",
            "--protocol",
            "chat",
            "--protocol",
            "v2",
            "-H",
            "Authorization: Bearer t",
            "--header",
            "X-Trace: 1",
            "ws://127.0.0.1:1",
        ];
        if mode == "rate" {
            argv.extend(["-R", "10"]);
        }
        let plan = parse(&argv).expect(mode);
        let c = plan.scenario.client();
        assert_eq!(c.origin.as_deref(), Some("https://a.example"));
        assert_eq!(c.protocols, ["chat", "v2"]);
        assert_eq!(c.headers.len(), 2);
        assert_eq!(c.headers[1].value, "1");
    }
    assert!(parse(&["echo", "-H", "Host: x", "ws://127.0.0.1:1"]).is_err());
    assert!(parse(&["echo", "--protocol", "a,b", "ws://127.0.0.1:1"]).is_err());
}

/// The help of `flag` in the command at `path`: long if it has one.
fn help_of(path: &[&str], flag: &str) -> String {
    let cmd = command(path);
    let arg = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some(flag))
        .unwrap_or_else(|| panic!("{path:?} has no --{flag}"));
    arg.get_long_help()
        .or(arg.get_help())
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[test]
fn shared_flag_groups_keep_what_each_mode_says_of_them() {
    // The payload and output groups are shared; broadcast and conns say
    // what their figures are.
    assert!(help_of(&["broadcast"], "size").contains("names no publisher"));
    assert!(help_of(&["compare", "broadcast"], "size").contains("names no publisher"));
    assert!(!help_of(&["echo"], "size").contains("publisher"));
    assert!(help_of(&["echo"], "size").contains("sequence number"));
    assert!(help_of(&["broadcast"], "hgrm").starts_with("Write the fan-out latency"));
    assert!(help_of(&["conns"], "hgrm").starts_with("Write the handshake latency"));
    assert!(help_of(&["rate"], "hgrm").starts_with("Write the latency"));
    assert!(help_of(&["broadcast"], "csv").contains("`received` counts deliveries"));
    assert!(!help_of(&["churn"], "csv").contains("deliveries"));
}

#[test]
fn token_flags_go_together_one_way() {
    let url = "ws://127.0.0.1:9001/";
    let key = std::env::temp_dir().join(format!("wsload-cli-key-{}", std::process::id()));
    std::fs::write(&key, "s3cret\n").expect("write the key");
    let key = key.to_str().expect("path");
    assert!(parse(&["echo", "--token", "abc", url]).is_ok());
    assert!(parse(&["echo", "--token", "abc", "--token-in-query", url]).is_ok());
    assert!(parse(&[
        "echo",
        "--jwt-key",
        key,
        "--jwt-claims",
        "{\"sub\":\"x\"}",
        url
    ])
    .is_ok());
    // One source of token; claims and algorithm only with a key; the query
    // only with a token.
    assert!(parse(&["echo", "--token", "abc", "--jwt-key", key, url]).is_err());
    assert!(parse(&["echo", "--jwt-claims", "{}", url]).is_err());
    assert!(parse(&["echo", "--jwt-alg", "HS512", url]).is_err());
    assert!(parse(&["echo", "--token-in-query", url]).is_err());
    assert!(parse(&["echo", "--jwt-key", "/nonexistent/key", url]).is_err());
    assert!(parse(&["echo", "--jwt-key", key, "--jwt-claims", "[]", url]).is_err());
    // What clap cannot see: the key's kind against the algorithm, and a
    // second Authorization header.
    let mut plan = parse(&["echo", "--jwt-key", key, "--jwt-alg", "ES256", url]).expect("parsed");
    let e = plan
        .scenario
        .client_mut()
        .resolve_credentials()
        .expect_err("refused");
    assert!(e.contains("does not sign ES256"), "{e}");
    let mut plan =
        parse(&["echo", "--token", "abc", "-H", "Authorization: x", url]).expect("parsed");
    assert!(plan.scenario.client_mut().resolve_credentials().is_err());
    // Never in a Debug form.
    let plan = parse(&["echo", "--token", "abc.def.ghi", url]).expect("parsed");
    assert!(!format!("{plan:?}").contains("abc.def"));
    let _ = std::fs::remove_file(key);
}

#[test]
fn publish_urls_need_broadcast_and_a_single_run() {
    let plan = parse(&[
        "broadcast",
        "--publish-url",
        "http://127.0.0.1:9",
        "ws://127.0.0.1:1/chat",
    ])
    .expect("a publish URL");
    let Scenario::Broadcast(b) = &plan.scenario else {
        panic!("broadcast");
    };
    assert_eq!(
        b.publish_url.as_ref().map(|t| t.host.as_str()),
        Some("127.0.0.1:9")
    );
    // A key without a URL to send it to.
    assert!(parse(&["broadcast", "--api-key", "/dev/null", "ws://127.0.0.1:1"]).is_err());
    assert!(parse(&[
        "rate",
        "-R",
        "1",
        "--publish-url",
        "http://127.0.0.1:9",
        "ws://127.0.0.1:1"
    ])
    .is_err());
    let m = matrix(&[
        "broadcast",
        "--publish-url",
        "http://127.0.0.1:9",
        "ws://127.0.0.1:1",
        "ws://127.0.0.1:2",
    ]);
    assert!(matches!(m, Ok(Err(MatrixError::Usage(..)))), "{m:?}");
}
