//! The TLS client side of `wss://` targets: which certificates to trust
//! (`--ca-file`, else the system's store; `--insecure`: none checked), the
//! rustls client config every connection of a run shares, and the reads
//! and writes through rustls that [`crate::client`] does.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use mio::net::TcpStream;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

/// A run's TLS client config, shared by its connections. Two are equal
/// when they are the same config.
#[derive(Clone)]
pub struct TlsConfig(pub Arc<ClientConfig>);

impl PartialEq for TlsConfig {
    fn eq(&self, other: &TlsConfig) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TlsConfig {}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsConfig")
    }
}

/// The client config: trust the CA certificates in `ca_file` (PEM), or the
/// system's store; with `insecure`, trust any certificate (the handshake's
/// signatures are still checked, so the cost of a real handshake is paid).
/// ALPN offers `http/1.1`, as browsers do for wss://.
pub fn client_config(ca_file: Option<&Path>, insecure: bool) -> Result<TlsConfig, String> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(roots(ca_file)?)
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConfig(Arc::new(config)))
}

/// The trusted roots: `ca_file`'s certificates, or the system's.
fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let certs: Vec<CertificateDer<'static>> = match ca_file {
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect())
            .map_err(|e| format!("--ca-file {}: {e}", path.display()))?,
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                return Err(format!(
                    "no trusted certificates found on this system ({:?}): use --ca-file or --insecure",
                    found.errors
                ));
            }
            found.certs
        }
    };
    if certs.is_empty() {
        return Err(format!(
            "--ca-file {}: no CERTIFICATE block in the file",
            ca_file.map_or(String::new(), |p| p.display().to_string())
        ));
    }
    for cert in certs {
        // A system store may hold certificates webpki cannot use: skip those.
        if let Err(e) = roots.add(cert) {
            if ca_file.is_some() {
                return Err(format!("--ca-file: {e}"));
            }
        }
    }
    Ok(roots)
}

/// `--insecure`: any certificate is accepted, but the handshake signature
/// is verified, so the work is the same as a real client's.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// Sends the TLS records rustls holds until none is left (`Ok`) or the
/// socket would block (`WouldBlock`).
pub fn write_tls(tls: &mut ClientConnection, stream: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A `Read` that notes whether the socket gave less than asked.
struct Probe<'a> {
    stream: &'a mut TcpStream,
    short: bool,
}

impl Read for Probe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

/// Reads plaintext into `buf` through TLS: what rustls holds, then more
/// records, until `buf` is full or the socket is drained, so that a short
/// count still means "drained" as on a plain socket. `Ok(0)` is the end
/// (close_notify, or TCP EOF); `WouldBlock` when nothing came. Handshake
/// messages are answered on the way.
pub fn read_tls(
    tls: &mut ClientConnection,
    stream: &mut TcpStream,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut n = 0;
    let (mut short, mut blocked) = (false, false);
    loop {
        if n == buf.len() {
            return Ok(n);
        }
        match tls.reader().read(&mut buf[n..]) {
            Ok(0) => return Ok(n),
            Ok(k) => {
                n += k;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // TCP EOF without close_notify: the end all the same.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(n),
            Err(e) => return Err(e),
        }
        if blocked {
            return if n > 0 {
                Ok(n)
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            };
        }
        if short && n > 0 {
            return Ok(n);
        }
        let mut probe = Probe {
            stream: &mut *stream,
            short: false,
        };
        match tls.read_tls(&mut probe) {
            Ok(_) => short = probe.short,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => blocked = true,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        if let Err(e) = tls.process_new_packets() {
            // The alert rustls queued goes out, best effort.
            let _ = write_tls(tls, stream);
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        match write_tls(tls, stream) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
    }
}
