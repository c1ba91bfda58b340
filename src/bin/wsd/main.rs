//! `wsd`: flags → config → reactors.
//!
//! - `cli`: the flags and which of them fit together;
//! - `log`: log lines to stderr (journald's form under systemd);
//! - `os`: the open-file limit, the allocator, signals.
//!
//! Panic-free like the library (see its crate doc): no unwrap, expect,
//! panic or unchecked indexing here either.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unreachable
)]

mod cli;
mod log;
mod os;

use std::io::Write as _;
use std::process::ExitCode;

use wsd::net::process::Process;
use wsd::Mode;

fn main() -> ExitCode {
    os::give_large_buffers_back();
    let (args, cfg) = match cli::parse_from(std::env::args_os()) {
        Ok(parsed) => parsed,
        Err(cli::CliError::Clap(e)) => e.exit(),
        Err(cli::CliError::Invalid(e)) => {
            eprintln!("wsd: {e}");
            return ExitCode::from(2);
        }
    };
    log::init(args.log_level);
    let fds = os::raise_fd_limit();
    let threads = args.threads.count();
    let process = match Process::start(cfg.clone(), threads) {
        Ok(s) => s,
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                " (another process holds it; to share a port between wsd processes, give each --reuse-port)"
            } else {
                ""
            };
            eprintln!("wsd: cannot listen on {e}{hint}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = os::handle_signals(process.shutdown_handle()) {
        eprintln!("wsd: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    let mode = match (cfg.mode, cfg.deflate.is_some()) {
        (Mode::Echo, false) => "echo",
        (Mode::Broadcast, false) => "broadcast",
        (Mode::Echo, true) => "echo, permessage-deflate",
        (Mode::Broadcast, true) => "broadcast, permessage-deflate",
    };
    let scheme = if cfg.tls.is_some() { "wss" } else { "ws" };
    let urls: Vec<String> = process
        .local_addrs()
        .iter()
        .map(|a| format!("{scheme}://{a}"))
        .collect();
    let reactors = match threads {
        1 => String::new(),
        n => format!(", {n} reactors"),
    };
    // Not println!: it panics if stdout is gone (a closed pipe), and the
    // banner is not worth dying for.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "wsd listening on {} ({mode} mode{reactors})",
        urls.join(", ")
    );
    for a in process.metrics_addrs() {
        let _ = writeln!(stdout, "wsd metrics on http://{a}/metrics");
    }
    let _ = stdout.flush();
    drop(stdout);
    ::log::debug!("open-file limit {fds}; config {cfg:?}");
    match process.wait() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wsd: event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
