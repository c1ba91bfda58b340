//! The flags of each mode, and the groups several modes share.

use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use clap::builder::ArgPredicate;
use clap::{ArgGroup, Args};
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use wsd::units::{parse_duration, parse_size};

use crate::auth::{
    parse_claims, parse_jwt_alg, parse_jwt_key, parse_token, Credentials, JwtKey, Minter, Secret,
    Source,
};
use crate::fill::Fill;
use crate::key::{parse_key_file, Key};
use crate::publish::{parse_api_key, parse_publish_url};
use crate::stamp::Encoding;
use crate::target::Target;
use crate::upgrade::{parse_header, parse_origin, parse_protocol, Header, Upgrade};

/// The largest payload.
const MAX_SIZE: usize = 64 << 20;
/// The phases of a load: warm-up, the measured window, the grace period.
#[derive(Args, Debug, Clone, Copy)]
pub struct Phases {
    /// Length of the measured window.
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub duration: Duration,

    /// Load before the measured window, not counted in rates or latencies.
    #[arg(long, default_value = "1s", value_parser = parse_duration, value_name = "DURATION")]
    pub warmup: Duration,

    /// How long to wait, after the window, for messages still on their way.
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub grace: Duration,
}

/// How wsload connects: threads, timeouts, addresses, the upgrade request.
#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("credentials").args(["token", "jwt_key"])))]
pub struct ClientArgs {
    /// Event-loop threads; connections are shared out among them.
    #[arg(short = 't', long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,

    /// How long a connection may take to connect and complete its handshake.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration, value_name = "DURATION")]
    pub connect_timeout: Duration,

    /// Spread connections over this many source addresses 127.0.0.1..127.0.0.N
    /// (IPv4 loopback targets only); default: one per 25,000 connections.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=254))]
    pub source_addrs: Option<u8>,

    /// Send this Origin with every upgrade request (for servers that check it).
    #[arg(long, value_name = "ORIGIN", value_parser = parse_origin)]
    pub origin: Option<String>,

    /// Offer this subprotocol (repeatable, in order of preference); the
    /// server must choose one of those offered.
    #[arg(long = "protocol", value_name = "NAME", value_parser = parse_protocol)]
    pub protocols: Vec<String>,

    /// Add this header line to every upgrade request (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<Header>,

    /// wss://: trust the CA certificates in this PEM file instead of the
    /// system's.
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca_file: Option<PathBuf>,

    /// Offer permessage-deflate (RFC 7692): compress what is sent, inflate
    /// what comes back compressed, and report wire bytes against message
    /// bytes. A server that declines is counted, as "deflate not
    /// negotiated", and its connections go on uncompressed.
    #[arg(long)]
    pub deflate: bool,

    /// wss://: accept any server certificate (a self-signed one, say). The
    /// handshake costs the same; only the check is skipped.
    #[arg(long)]
    pub insecure: bool,

    /// Send this token with every upgrade request, as `Authorization:
    /// Bearer TOKEN` (or in the query with --token-in-query). It is never
    /// printed.
    #[arg(long, value_name = "TOKEN", value_parser = parse_token)]
    pub token: Option<Secret>,

    /// Mint a JWT for each connection, signed with the key in this file,
    /// so each handshake costs the server the verification of a token it
    /// has not seen.
    ///
    /// The file is an HMAC secret (its bytes, one trailing newline
    /// removed: HS256) or a PEM private key in PKCS#8 (RSA: RS256; EC
    /// P-256: ES256; Ed25519: EdDSA). The token goes where --token's
    /// would.
    #[arg(long, value_name = "FILE", value_parser = parse_jwt_key)]
    pub jwt_key: Option<JwtKey>,

    /// The claims of the minted tokens, a JSON object; `iat` is the
    /// connection's time and `exp` an hour later unless the claims give
    /// them.
    #[arg(long, value_name = "JSON", value_parser = parse_claims, requires = "jwt_key")]
    pub jwt_claims: Option<Map<String, Value>>,

    /// Sign with this algorithm instead of the key's default: HS384 or
    /// HS512 for a secret, RS384, RS512 or PS256..PS512 for RSA, ES384 for
    /// an EC P-384 key.
    #[arg(long, value_name = "ALG", value_parser = parse_jwt_alg, requires = "jwt_key")]
    pub jwt_alg: Option<Algorithm>,

    /// Send the token as `?token=TOKEN` in the URL, as a browser must (it
    /// cannot set headers on a WebSocket), not in an Authorization header.
    #[arg(long, requires = "credentials")]
    pub token_in_query: bool,

    /// Run the load on these `wsload agent`s (HOST:PORT, comma-separated)
    /// instead of here: the connections and the rate are shared out among
    /// them, they start together, and their histograms and counts are
    /// merged into one report, with a line per agent. Needs --key.
    #[arg(
        long,
        value_name = "HOST:PORT,...",
        value_delimiter = ',',
        requires = "key"
    )]
    pub agents: Vec<String>,

    /// With --agents: the key shared with the agents (a file of at least
    /// 16 bytes). It proves each side to the other and is never sent.
    #[arg(long, value_name = "FILE", value_parser = parse_key_file, requires = "agents")]
    pub key: Option<Key>,

    /// The credentials --token or --jwt-key ask for, once
    /// [`ClientArgs::resolve_credentials`] has checked them.
    #[arg(skip)]
    pub credentials: Option<Credentials>,
}

impl ClientArgs {
    /// What the upgrade requests carry besides wsload's own lines.
    pub fn upgrade(&self) -> Upgrade {
        Upgrade::new(
            self.origin.as_deref(),
            &self.protocols,
            &self.headers,
            self.deflate,
        )
        .with_credentials(self.credentials.clone())
    }

    /// Builds the credentials --token or --jwt-key ask for (one token is
    /// signed to check the key signs the algorithm), so that
    /// [`ClientArgs::upgrade`] carries them. Returns a usage error's
    /// message.
    pub fn resolve_credentials(&mut self) -> Result<(), String> {
        let source = match (&self.token, &self.jwt_key) {
            (Some(t), _) => Source::Fixed(t.clone()),
            (None, Some(key)) => {
                let claims = self.jwt_claims.clone().unwrap_or_default();
                Source::Mint(Arc::new(Minter::new(key, self.jwt_alg, claims)?))
            }
            (None, None) => return Ok(()),
        };
        if !self.token_in_query
            && self
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("authorization"))
        {
            return Err(
                "-H 'Authorization: ...' and --token or --jwt-key: give the token one way".into(),
            );
        }
        self.credentials = Some(Credentials {
            source,
            in_query: self.token_in_query,
        });
        Ok(())
    }
}

/// Payload flags of every mode that sends (broadcast says what a small
/// payload means for fan-out: [`FANOUT_SIZE_HELP`]).
#[derive(Args, Debug, Clone)]
pub struct PayloadArgs {
    /// Payload size, from 0 bytes.
    ///
    /// From 32 bytes (binary) or 64 (text) a payload carries a stamp: its
    /// sender, sequence number, send time and a checksum, so every reply is
    /// checked byte for byte, in order, and timed by the stamp. A smaller
    /// payload is lowercase letters that start at its sequence number modulo
    /// 26: replies are checked for type, length, content and order (modulo
    /// 26), and timed from each connection's send times, since echoes come
    /// back in order.
    #[arg(short = 's', long, default_value = "64", value_parser = parse_payload_size, value_name = "SIZE")]
    pub size: usize,

    /// Send text frames.
    #[arg(long, conflicts_with = "binary")]
    pub text: bool,

    /// Send binary frames (the default).
    #[arg(long)]
    pub binary: bool,

    /// What fills a payload after its stamp: letters (a to z, over and
    /// over: compresses to almost nothing), random (incompressible bytes;
    /// printable ASCII with --text), text (English-like words) or json
    /// (JSON-like objects with repeated keys). All but letters come from
    /// --seed, in enough variants per run that a compressor's 32 KiB
    /// window cannot match one message against the last.
    #[arg(long = "payload", value_enum, default_value_t = Fill::Letters, value_name = "KIND")]
    pub fill: Fill,

    /// Seed for the payloads (and, in churn, for how each connection ends).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub seed: u64,
}

impl PayloadArgs {
    /// The chosen encoding.
    pub fn encoding(&self) -> Encoding {
        if self.text {
            Encoding::Text
        } else {
            Encoding::Binary
        }
    }
}

/// `echo` flags.
#[derive(Args, Debug, Clone)]
pub struct EchoArgs {
    /// Connections to open.
    #[arg(short = 'c', long = "connections", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// The phases.
    #[command(flatten)]
    pub phases: Phases,
    /// Payload flags.
    #[command(flatten)]
    pub payload: PayloadArgs,
    /// Messages in flight per connection (pipelining).
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub depth: u32,
    /// How to connect.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `rate` flags.
#[derive(Args, Debug, Clone)]
pub struct RateArgs {
    /// Connections to open; the rate is shared out among them.
    #[arg(short = 'c', long = "connections", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// The phases.
    #[command(flatten)]
    pub phases: Phases,
    /// Payload flags.
    #[command(flatten)]
    pub payload: PayloadArgs,
    /// Total messages per second, over all connections (with --find-max:
    /// set by the search, each step).
    #[arg(short = 'R', long, value_name = "MSGS_PER_S", value_parser = parse_rate,
          required = false, required_unless_present = "find_max", conflicts_with = "find_max",
          default_value_if("find_max", ArgPredicate::IsPresent, "1"))]
    pub rate: f64,
    /// How to connect.
    #[command(flatten)]
    pub client: ClientArgs,
    /// The capacity search (--find-max).
    #[command(flatten)]
    pub capacity: super::capacity::CapacityArgs,
}

/// What `-s` means for `broadcast`, where a small payload names no
/// publisher.
const FANOUT_SIZE_HELP: &str = "Payload size, from 0 bytes.

From 32 bytes (binary) or 64 (text) a payload carries a stamp: its \
publisher, sequence number, send time and a checksum, so every delivery \
is checked byte for byte, for loss, duplicates and order per publisher, \
and timed by the stamp. A smaller payload names no publisher: deliveries \
are checked for type, length and content and counted (lost: fewer than \
published; duplicated: more), with no order check and no fan-out latency.";

/// `broadcast` flags.
#[derive(Args, Debug, Clone)]
#[command(mut_arg("size", |a| a.long_help(FANOUT_SIZE_HELP)))]
pub struct BroadcastArgs {
    /// Subscribers to open (the publishers come on top).
    #[arg(short = 'c', long = "connections", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// The phases.
    #[command(flatten)]
    pub phases: Phases,
    /// Payload flags.
    #[command(flatten)]
    pub payload: PayloadArgs,
    /// Publishing connections, besides the -c subscribers.
    #[arg(long, default_value_t = 1, value_name = "P",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub publishers: u32,
    /// Total messages published per second, over all publishers.
    #[arg(short = 'R', long, default_value = "1000", value_name = "MSGS_PER_S", value_parser = parse_rate)]
    pub rate: f64,
    /// Publish through the server's HTTP publish API (http://host:port, or
    /// https:// over the same TLS settings as wss://): each message is a
    /// `POST /publish/ROOM`, ROOM being the WebSocket URL's path, its body
    /// the payload (text/plain or application/octet-stream, as --text or
    /// --binary), over one keep-alive connection per publisher with one
    /// request in flight. Subscribers listen over WebSocket as usual;
    /// answers are counted by status, and any but 200 is an error.
    #[arg(long, value_name = "URL", value_parser = parse_publish_url)]
    pub publish_url: Option<Target>,
    /// With --publish-url: send the key in this file (its bytes, trimmed)
    /// as `Authorization: Bearer KEY`. The key is never printed.
    #[arg(long, value_name = "FILE", value_parser = parse_api_key, requires = "publish_url")]
    pub api_key: Option<Secret>,
    /// The publishers run in another process: every connection here
    /// subscribes (set by a controller for all agents but the first).
    #[arg(long, hide = true)]
    pub publishers_elsewhere: bool,
    /// How to connect.
    #[command(flatten)]
    pub client: ClientArgs,
}

impl BroadcastArgs {
    /// The publishers this process opens: none when they run elsewhere.
    pub fn local_publishers(&self) -> u32 {
        if self.publishers_elsewhere {
            0
        } else {
            self.publishers
        }
    }
}

/// `conns` flags: no payload, no warm-up, nothing in flight to wait for.
#[derive(Args, Debug, Clone)]
pub struct ConnsArgs {
    /// Connections to open and hold.
    #[arg(short = 'c', long = "connections", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// How long to hold the connections open once all are open.
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub duration: Duration,
    /// How to connect.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `churn` flags.
#[derive(Args, Debug, Clone)]
pub struct ChurnArgs {
    /// Connection slots: each opens its next connection as soon as its last one ended.
    #[arg(short = 'c', long = "connections", default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,
    /// The phases.
    #[command(flatten)]
    pub phases: Phases,
    /// Payload flags.
    #[command(flatten)]
    pub payload: PayloadArgs,
    /// Echo messages per connection.
    #[arg(long, default_value_t = 10, value_name = "K",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub messages: u32,
    /// Messages in flight per connection.
    #[arg(long, default_value_t = 1, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub depth: u32,
    /// Percent of connections dropped without a Close (at a random
    /// message, sometimes mid-frame, with a FIN or an RST).
    #[arg(long, default_value_t = 30, value_name = "PCT",
          value_parser = clap::value_parser!(u32).range(0..=100))]
    pub abrupt: u32,
    /// How to connect.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A rate in messages per second: above 0, at most 1e9.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let r: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a rate (messages per second)"))?;
    if r.is_finite() && r > 0.0 && r <= 1e9 {
        Ok(r)
    } else {
        Err(format!("'{s}': the rate must be above 0 and at most 1e9"))
    }
}

/// A duration that must be above zero: a measured window of 0 measures
/// nothing, and a timeout of 0 fails every connection.
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err(format!("'{s}': must be above zero"));
    }
    Ok(d)
}

fn parse_payload_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    if n > MAX_SIZE {
        return Err(format!("{n} bytes is above the 64MiB maximum"));
    }
    Ok(n)
}
