//! What the daemon asks of the operating system: the open-file limit, the
//! allocator's treatment of large buffers, and signals.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use wsd::ShutdownHandle;

/// Raises the soft open-file limit to the hard one, so the connection limit,
/// not a default of 1024 descriptors, is what bounds the server.
pub fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

/// SIGINT and SIGTERM drain the server gracefully; a second one exits at
/// once. SIGHUP never stops the server: it asks for a [`reload`]. The
/// thread only waits for signals: all I/O stays on the reactor.
///
/// SIGPIPE needs nothing here: the Rust runtime ignores it before `main`
/// in every binary, so a write to a peer that went away fails with EPIPE
/// on that connection instead of killing the process.
pub fn handle_signals(handle: ShutdownHandle) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::Builder::new()
        .name("wsd-signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                if sig == SIGHUP {
                    reload(&handle);
                    continue;
                }
                seen += 1;
                if seen == 1 {
                    log::info!("signal {sig}: draining (again to exit at once)");
                    handle.drain();
                } else {
                    log::warn!("signal {sig} again: exiting now");
                    std::process::exit(128 + sig);
                }
            }
        })?;
    Ok(())
}

/// SIGHUP, the daemon convention for "reread your files" (`systemctl
/// reload`): the TLS certificate and key are read and checked here, on the
/// signal thread, and a good pair is handed to the reactors for their next
/// handshakes; no connection is dropped. A bad pair is logged and counted,
/// and the old one stays. Without TLS there is nothing to read, and SIGHUP
/// only says so: its default action (terminate) would drop every client.
///
/// The `--auth-key` files are reread the same way: a good set checks new
/// upgrades, a bad file is logged by name (never its contents) and the old
/// keys stay.
fn reload(handle: &ShutdownHandle) {
    let auth = handle.reload_auth();
    match &auth {
        None => {}
        Some(Ok(keys)) => log::info!(
            "SIGHUP: {} auth keys reloaded; new upgrades are checked with them",
            keys.len()
        ),
        Some(Err(e)) => log::error!("SIGHUP: auth key reload failed, keeping the old keys: {e}"),
    }
    match handle.reload_tls() {
        None if auth.is_none() && !handle.has_api_keys() => log::info!("SIGHUP: nothing to reload"),
        None => {}
        Some(Ok(loaded)) => log::info!(
            "SIGHUP: certificate reloaded ({} in the chain); new handshakes use it",
            loaded.chain
        ),
        Some(Err(e)) => {
            log::error!("SIGHUP: certificate reload failed, still serving the old one: {e}")
        }
    }
    reload_api_keys(handle);
}

/// SIGHUP rereads the `--api-key` files too: a rotated key is taken at
/// every reactor's next request; a file that does not load keeps the old
/// keys (the error names the file, never a key).
fn reload_api_keys(handle: &ShutdownHandle) {
    match handle.reload_api_keys() {
        None => {}
        Some(Ok(n)) => log::info!("SIGHUP: {n} API keys reloaded"),
        Some(Err(e)) => log::error!("SIGHUP: API key reload failed, still using the old keys: {e}"),
    }
}

/// Large buffers (a message of 4 MiB or more, being read or queued) get
/// pages of their own from the kernel, which go back when the buffer is
/// freed, and at most 4 MiB of freed heap is kept for reuse. glibc's
/// default raises its mmap threshold to the size of the last such buffer
/// freed, so that after one 16 MiB message the next ones came from the
/// heap and stayed resident after use. The read path relies on it too:
/// room it reserves past 1 MiB for a frame's rest is 4 MiB or more, so
/// pages no byte has landed on yet cost nothing (`net/buffer.rs`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn give_large_buffers_back() {
    const LARGE: libc::c_int = 4 << 20;
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE);
        libc::mallopt(libc::M_TRIM_THRESHOLD, LARGE);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_large_buffers_back() {}
