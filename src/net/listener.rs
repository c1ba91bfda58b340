//! The listening socket, set up with socket2 so the options that matter to a
//! server (address reuse, port sharing, backlog) are explicit.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Binds a non-blocking listener on `addr`.
///
/// SO_REUSEADDR lets a restarted server bind while old connections linger in
/// TIME_WAIT; SO_REUSEPORT (optional) lets several processes or reactors
/// share the port with the kernel spreading connections between them.
pub fn bind(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<mio::net::TcpListener> {
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
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(mio::net::TcpListener::from_std(socket.into()))
}
