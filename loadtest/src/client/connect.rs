//! Opening a connection: the non-blocking connect (from a chosen source
//! address, with TLS if asked), its registration, and the first writable
//! edge that queues the upgrade request.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use socket2::{Domain, Protocol, Socket, Type};
use wsd::proto::handshake::client_key;
use wsd::proto::{Role, Session};

use super::{io_failure, Conn, Failure, Phase};
use crate::stats::{ErrorKind, Wire};
use crate::tls::TlsConfig;
use crate::upgrade::Upgrade;

impl Conn {
    /// Starts a non-blocking connect to `addr`, from `source` if given,
    /// with TLS if `tls` gives a config and the name the server's
    /// certificate must have. `seed` seeds the session's masking keys and
    /// the handshake nonce.
    pub fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        seed: u32,
        tls: Option<(&TlsConfig, &str)>,
    ) -> io::Result<Conn> {
        let tls = match tls {
            Some((config, name)) => {
                let name = ServerName::try_from(name.to_string())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let conn = ClientConnection::new(config.0.clone(), name)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                Some(Box::new(conn))
            }
            None => None,
        };
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        socket.set_nodelay(true)?;
        if let Some(ip) = source {
            bind_no_port(&socket)?;
            socket.bind(&SocketAddr::new(ip, 0).into())?;
        }
        match socket.connect(&addr.into()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let stream = TcpStream::from_std(std::net::TcpStream::from(socket));
        let mut nonce = [0u8; 16];
        for (i, chunk) in nonce.chunks_exact_mut(4).enumerate() {
            let word = seed.rotate_left(8 * i as u32) ^ (0x9E37_79B9u32.wrapping_mul(i as u32 + 1));
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Ok(Conn {
            stream,
            tls,
            phase: Phase::Connecting,
            key: client_key(nonce),
            session: Session::with_seed(Role::Client, seed),
            rbuf: Vec::new(),
            rlen: 0,
            out: Vec::new(),
            wpos: 0,
            deflate: None,
            sealed_to: 0,
            wire: Wire::default(),
            started: Instant::now(),
            closed_at: None,
            api: false,
        })
    }

    /// Registers for readable and writable edges.
    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(
            &mut self.stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        )
    }

    /// On the first writable edge: checks the connect worked and queues
    /// the upgrade request for `path` on `host` (an API connection is
    /// Open at once instead).
    pub fn on_connected(&mut self, host: &str, path: &str, up: &Upgrade) -> Result<(), Failure> {
        if let Some(e) = self.stream.take_error().map_err(|e| io_failure(&e))? {
            return Err(io_failure(&e));
        }
        // Writable without an error can still mean "not yet": peer_addr
        // answers NotConnected until the three-way handshake is done.
        match self.stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotConnected => return Ok(()),
            Err(e) => return Err(io_failure(&e)),
        }
        if self.api {
            // No upgrade: requests flow as soon as TCP (and TLS) is up.
            self.phase = Phase::Open;
            return Ok(());
        }
        up.write_request(&mut self.out, host, path, &self.key)
            .map_err(|e| (ErrorKind::Io, e))?;
        self.phase = Phase::Handshake;
        Ok(())
    }
}

/// IP_BIND_ADDRESS_NO_PORT: with a source address bound, let connect()
/// pick the port per destination, so each source address is good for a
/// full ephemeral range towards each server port.
fn bind_no_port(socket: &Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket fd and a pointer to a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::addr_of!(one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
