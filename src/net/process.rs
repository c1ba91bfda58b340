//! A process of N reactors (`--threads N`), each a single-threaded
//! [`Server`] on its own thread with its own listener sockets, slab and
//! rooms, sharing only a [`Cluster`].
//!
//! Every reactor binds the same addresses with `SO_REUSEPORT`, and the
//! kernel spreads new connections over them by a hash of the address pair;
//! a reactor owns each connection it accepts for life. The first reactor
//! binds first, so that a port 0 is resolved once and the others bind the
//! port it got. It alone serves the `--metrics-listen` addresses.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::cluster::{Cluster, MAX_REACTORS};
use super::reactor::{Server, ShutdownHandle, Stats};
use crate::config::Config;

/// The running reactors of one process.
#[derive(Debug)]
pub struct Process {
    handle: ShutdownHandle,
    local_addrs: Vec<SocketAddr>,
    metrics_addrs: Vec<SocketAddr>,
    threads: Vec<JoinHandle<io::Result<Stats>>>,
}

/// What a reactor thread reports once bound: its listeners' addresses.
type Bound = io::Result<(Vec<SocketAddr>, Vec<SocketAddr>, ShutdownHandle)>;

impl Process {
    /// Binds and starts `threads` reactors (1 to 64). With one, it is the
    /// plain single-threaded server on a thread of its own.
    pub fn start(cfg: Config, threads: usize) -> io::Result<Process> {
        let n = threads.clamp(1, MAX_REACTORS);
        let cluster = Cluster::new(n);
        let mut first = cfg.clone();
        first.reuse_port |= n > 1;
        let (handle0, rx) = spawn(first, cluster.clone(), 0)?;
        let (local_addrs, metrics_addrs, handle) = match recv(&rx) {
            Ok(bound) => bound,
            Err(e) => {
                let _ = handle0.join();
                return Err(e);
            }
        };
        let mut process = Process {
            handle,
            local_addrs,
            metrics_addrs,
            threads: vec![handle0],
        };
        for me in 1..n {
            let mut rest = cfg.clone();
            rest.listen = process.local_addrs.clone();
            rest.metrics_listen = Vec::new();
            rest.reuse_port = true;
            let started = spawn(rest, cluster.clone(), me).and_then(|(thread, rx)| {
                process.threads.push(thread);
                recv(&rx)
            });
            if let Err(e) = started {
                process.handle.shutdown();
                let _ = process.wait();
                return Err(e);
            }
        }
        Ok(process)
    }

    /// The WebSocket listeners' addresses (the real ports if 0 was asked).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The `--metrics-listen` addresses.
    pub fn metrics_addrs(&self) -> &[SocketAddr] {
        &self.metrics_addrs
    }

    /// A handle that drains or stops every reactor.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.handle.clone()
    }

    /// Waits for every reactor to return; the process's counters, or the
    /// first reactor's error.
    pub fn wait(self) -> io::Result<Stats> {
        let mut total = Stats::default();
        let mut failed = None;
        for t in self.threads {
            match t.join() {
                Ok(Ok(stats)) => total.add(&stats),
                Ok(Err(e)) => {
                    failed.get_or_insert(e);
                }
                Err(_) => {
                    failed.get_or_insert(io::Error::other("a reactor thread panicked"));
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }
}

/// Starts reactor `me` on a thread of its own. A `Server` is not `Send`
/// (its broadcast frames are `Rc` within the reactor), so it is built on
/// that thread; only its addresses and handle come back.
fn spawn(
    cfg: Config,
    cluster: std::sync::Arc<Cluster>,
    me: usize,
) -> io::Result<(JoinHandle<io::Result<Stats>>, mpsc::Receiver<Bound>)> {
    let (tx, rx) = mpsc::channel::<Bound>();
    let thread = std::thread::Builder::new()
        .name(format!("wsd-reactor-{me}"))
        .spawn(move || {
            let mut server = match Server::bind_reactor(cfg, cluster, me) {
                Ok(server) => server,
                Err(e) => {
                    let kind = e.kind();
                    let _ = tx.send(Err(e));
                    return Err(io::Error::new(kind, "bind failed"));
                }
            };
            let bound = (
                server.local_addrs().to_vec(),
                server.metrics_addrs().to_vec(),
                server.shutdown_handle(),
            );
            let _ = tx.send(Ok(bound));
            server.run()?;
            Ok(server.stats().clone())
        })?;
    Ok((thread, rx))
}

/// The bind result of a reactor thread.
fn recv(rx: &mpsc::Receiver<Bound>) -> Bound {
    rx.recv()
        .unwrap_or_else(|_| Err(io::Error::other("a reactor thread ended before binding")))
}
