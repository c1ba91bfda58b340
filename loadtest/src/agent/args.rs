//! What an agent is asked to run: a mode's flags as a command line, with
//! its share of the connections and the rate. The agent parses them with
//! the same clap structs as a scenario file, so it accepts exactly what a
//! local run would.
//!
//! Flags that carry a secret (--token, --jwt-key, --api-key, and -H with
//! Authorization, Proxy-Authorization or Cookie) are refused
//! with --agents: the protocol authenticates both ends but does not
//! encrypt, and a secret must not cross the network in clear.

use std::time::Duration;

use crate::cli::{ClientArgs, PayloadArgs, Phases, Scenario};

/// Refuses the flags an agent cannot be sent, and a split that leaves an
/// agent nothing to do.
pub fn check(s: &Scenario, agents: usize) -> Result<(), String> {
    let c = s.client();
    if c.token.is_some() || c.jwt_key.is_some() {
        return Err("--token and --jwt-key cannot be used with --agents (the agent protocol does not encrypt)".into());
    }
    let secret = ["authorization", "proxy-authorization", "cookie"];
    if let Some(h) = c
        .headers
        .iter()
        .find(|h| secret.iter().any(|n| h.name.eq_ignore_ascii_case(n)))
    {
        return Err(format!(
            "-H '{}: ...' cannot be used with --agents (the agent protocol does not encrypt)",
            h.name
        ));
    }
    if let Scenario::Broadcast(b) = s {
        if b.api_key.is_some() {
            return Err(
                "--api-key cannot be used with --agents (the agent protocol does not encrypt)"
                    .into(),
            );
        }
    }
    if (s.connections() as usize) < agents {
        return Err(format!(
            "{} connections for {agents} agents: give each agent at least one",
            s.connections()
        ));
    }
    Ok(())
}

/// `n` split into `parts` as evenly as can be; part `i`.
pub fn part(n: u32, i: usize, parts: usize) -> u32 {
    let parts = parts.max(1) as u32;
    n / parts + u32::from((i as u32) < n % parts)
}

/// Agent `i` of `n`'s share: its connections, the rate in proportion.
/// Broadcast: the first agent runs every publisher and the whole rate
/// (so fan-out latency is timed on one clock); the others only subscribe.
pub fn share(s: &Scenario, i: usize, n: usize) -> Scenario {
    let mut s = s.clone();
    let total = s.connections();
    let mine = part(total, i, n);
    let frac = f64::from(mine) / f64::from(total.max(1));
    match &mut s {
        Scenario::Echo(a) => a.connections = mine,
        Scenario::Rate(a) => {
            a.connections = mine;
            a.rate *= frac;
        }
        Scenario::Broadcast(a) => {
            a.connections = mine;
            a.publishers_elsewhere = i > 0;
        }
        Scenario::Conns(a) => a.connections = mine,
        Scenario::Churn(a) => a.connections = mine,
    }
    s
}

fn dur(d: Duration) -> String {
    format!("{}ms", d.as_secs_f64() * 1000.0)
}

fn phases(p: &Phases, out: &mut Vec<String>) {
    out.extend(["--duration".into(), dur(p.duration)]);
    out.extend(["--warmup".into(), dur(p.warmup)]);
    out.extend(["--grace".into(), dur(p.grace)]);
}

fn payload(p: &PayloadArgs, out: &mut Vec<String>) {
    out.extend(["--size".into(), p.size.to_string()]);
    if p.text {
        out.push("--text".into());
    }
    out.extend(["--payload".into(), p.fill.name().into()]);
    out.extend(["--seed".into(), p.seed.to_string()]);
}

fn client(c: &ClientArgs, out: &mut Vec<String>) {
    out.extend(["--threads".into(), c.threads.to_string()]);
    out.extend(["--connect-timeout".into(), dur(c.connect_timeout)]);
    if let Some(n) = c.source_addrs {
        out.extend(["--source-addrs".into(), n.to_string()]);
    }
    if let Some(o) = &c.origin {
        out.extend(["--origin".into(), o.clone()]);
    }
    for p in &c.protocols {
        out.extend(["--protocol".into(), p.clone()]);
    }
    for h in &c.headers {
        out.extend(["--header".into(), format!("{}: {}", h.name, h.value)]);
    }
    if let Some(f) = &c.ca_file {
        out.extend(["--ca-file".into(), f.display().to_string()]);
    }
    if c.deflate {
        out.push("--deflate".into());
    }
    if c.insecure {
        out.push("--insecure".into());
    }
}

/// The scenario's flags as a command line (without the mode's name).
pub fn to_args(s: &Scenario) -> Vec<String> {
    let mut out = vec!["--connections".to_string(), s.connections().to_string()];
    match s {
        Scenario::Echo(a) => {
            phases(&a.phases, &mut out);
            payload(&a.payload, &mut out);
            out.extend(["--depth".into(), a.depth.to_string()]);
        }
        Scenario::Rate(a) => {
            phases(&a.phases, &mut out);
            payload(&a.payload, &mut out);
            out.extend(["--rate".into(), a.rate.to_string()]);
        }
        Scenario::Broadcast(a) => {
            phases(&a.phases, &mut out);
            payload(&a.payload, &mut out);
            out.extend(["--publishers".into(), a.publishers.to_string()]);
            out.extend(["--rate".into(), a.rate.to_string()]);
            if let Some(t) = &a.publish_url {
                out.extend(["--publish-url".into(), t.url.clone()]);
            }
            if a.publishers_elsewhere {
                out.push("--publishers-elsewhere".into());
            }
        }
        Scenario::Conns(a) => out.extend(["--duration".into(), dur(a.duration)]),
        Scenario::Churn(a) => {
            phases(&a.phases, &mut out);
            payload(&a.payload, &mut out);
            out.extend(["--messages".into(), a.messages.to_string()]);
            out.extend(["--depth".into(), a.depth.to_string()]);
            out.extend(["--abrupt".into(), a.abrupt.to_string()]);
        }
    }
    client(s.client(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cli::ModeOnly;

    fn parse(argv: &[&str]) -> Scenario {
        ModeOnly::try_parse_from(argv).unwrap().into_scenario()
    }

    fn again(s: &Scenario) -> Scenario {
        let mut argv = vec!["scenario".to_string(), s.name().to_string()];
        argv.extend(to_args(s));
        ModeOnly::try_parse_from(argv).unwrap().into_scenario()
    }

    #[test]
    fn parts_add_up_and_differ_by_at_most_one() {
        for (n, k) in [(10u32, 3usize), (1, 1), (7, 7), (100, 6)] {
            let parts: Vec<u32> = (0..k).map(|i| part(n, i, k)).collect();
            assert_eq!(parts.iter().sum::<u32>(), n);
            assert!(parts.iter().max().unwrap() - parts.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn flags_survive_the_round_trip() {
        let argv = [
            "scenario",
            "rate",
            "-c",
            "9",
            "-R",
            "1234.5",
            "-d",
            "1500ms",
            "--warmup",
            "0",
            "-s",
            "100",
            "--text",
            "--payload",
            "json",
            "--seed",
            "7",
            "-t",
            "2",
            "--origin",
            "https://a.example",
            "--protocol",
            "chat",
            "-H",
            "X-A: b",
            "--deflate",
        ];
        let s = parse(&argv);
        let back = again(&s);
        assert_eq!(to_args(&back), to_args(&s));
        assert_eq!(back.phases().duration, Duration::from_millis(1500));
        assert_eq!(back.client().headers.len(), 1);
        let Scenario::Rate(r) = share(&s, 0, 2) else {
            unreachable!()
        };
        assert_eq!((r.connections, r.rate), (5, 1234.5 * 5.0 / 9.0));
    }

    #[test]
    fn broadcast_publishes_from_the_first_agent_only() {
        let s = parse(&["scenario", "broadcast", "-c", "10", "--publishers", "2"]);
        let Scenario::Broadcast(first) = again(&share(&s, 0, 2)) else {
            unreachable!()
        };
        let Scenario::Broadcast(second) = again(&share(&s, 1, 2)) else {
            unreachable!()
        };
        assert_eq!((first.local_publishers(), first.connections), (2, 5));
        assert_eq!((second.local_publishers(), second.publishers), (0, 2));
    }

    #[test]
    fn secrets_and_thin_splits_are_refused() {
        let s = parse(&["scenario", "echo", "--token", "t0k3n"]);
        assert!(check(&s, 1).unwrap_err().contains("--token"));
        let s = parse(&["scenario", "echo", "-H", "cookie: id=1"]);
        assert!(check(&s, 1).unwrap_err().contains("cookie"));
        let s = parse(&["scenario", "echo", "-c", "1"]);
        assert!(check(&s, 2).is_err());
        assert!(check(&s, 1).is_ok());
    }
}
