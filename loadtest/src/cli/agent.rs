//! `wsload agent`'s flags; the agent itself is `crate::agent`.

use clap::Args;

use crate::allow::{parse_allow, AllowList};
use crate::key::{parse_key_file, Key};

/// `wsload agent` flags.
#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// Where to wait for a controller: ADDR:PORT (port 0: any free port,
    /// printed on the first line).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: String,
    /// The key shared with the controller (a file of at least 16 bytes).
    #[arg(long, value_name = "FILE", value_parser = parse_key_file)]
    pub key: Key,
    /// The address ranges this agent may send load to, comma-separated
    /// (10.0.0.0/8,fd00::/8,192.0.2.7); default loopback only. Targets are
    /// checked after DNS resolution.
    #[arg(long = "allow-targets", value_name = "CIDR,...", value_parser = parse_allow,
          default_value_t = AllowList::loopback())]
    pub allow: AllowList,
}
