//! The listening socket, set up with socket2 so the options that matter to a
//! server (address reuse, port sharing, backlog, TCP keepalive) are explicit.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, TcpKeepalive, Type};

/// Unanswered TCP keepalive probes after which the kernel drops a peer.
const KEEPALIVE_PROBES: u32 = 4;

/// Binds a non-blocking listener on `addr`. An error names the address
/// (`127.0.0.1:9001: Address in use`) and keeps its kind.
///
/// SO_REUSEADDR lets a restarted server bind while old connections linger in
/// TIME_WAIT; SO_REUSEPORT (optional) lets several processes or reactors
/// share the port with the kernel spreading connections between them.
///
/// `keepalive` turns on TCP keepalive: after that much silence the kernel
/// probes the peer every `keepalive / 4` (at least a second), and after
/// [`KEEPALIVE_PROBES`] unanswered probes the socket fails, which the
/// reactor sees as an error. Set on the listener, Linux copies it to every
/// accepted socket, so it costs no system call per connection.
pub fn bind(
    addr: SocketAddr,
    backlog: i32,
    reuse_port: bool,
    keepalive: Option<Duration>,
) -> io::Result<mio::net::TcpListener> {
    bind_socket(addr, backlog, reuse_port, keepalive)
        .map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))
}

fn bind_socket(
    addr: SocketAddr,
    backlog: i32,
    reuse_port: bool,
    keepalive: Option<Duration>,
) -> io::Result<mio::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        // Listen on IPv6 only when given an IPv6 address; the operator can
        // add an IPv4 listener explicitly.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if let Some(idle) = keepalive {
        // The kernel counts in whole seconds.
        let interval = Duration::from_secs((idle.as_secs() / 4).max(1));
        socket.set_tcp_keepalive(
            &TcpKeepalive::new()
                .with_time(idle)
                .with_interval(interval)
                .with_retries(KEEPALIVE_PROBES),
        )?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_use_is_named_in_the_error() {
        let taken = bind("127.0.0.1:0".parse().unwrap(), 16, false, None).unwrap();
        let addr = taken.local_addr().unwrap();
        let e = bind(addr, 16, false, None).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().starts_with(&format!("{addr}: ")), "{e}");
    }

    #[test]
    fn accepted_sockets_inherit_the_listeners_keepalive() {
        let idle = Duration::from_secs(60);
        for keepalive in [Some(idle), None] {
            let l = bind("127.0.0.1:0".parse().unwrap(), 16, false, keepalive).unwrap();
            let addr = l.local_addr().unwrap();
            let _client = std::net::TcpStream::connect(addr).unwrap();
            let accepted = loop {
                match l.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            };
            let sock = socket2::SockRef::from(&accepted);
            assert_eq!(sock.keepalive().unwrap(), keepalive.is_some());
            if keepalive.is_some() {
                assert_eq!(sock.keepalive_time().unwrap(), idle);
                assert_eq!(sock.keepalive_interval().unwrap(), Duration::from_secs(15));
                assert_eq!(sock.keepalive_retries().unwrap(), KEEPALIVE_PROBES);
            }
        }
    }
}
