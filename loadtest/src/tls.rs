//! The TLS client side of `wss://` targets: which certificates to trust
//! (`--ca-file`, its certificates as CAs or as the server's own; else the
//! system's store; `--insecure`: none checked), the
//! rustls client config every connection of a run shares, and the reads
//! and writes through rustls that [`crate::client`] does.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::{ring, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, DistinguishedName,
    RootCertStore, SignatureScheme,
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
///
/// A certificate in `ca_file` is also trusted as the server's own
/// certificate, the way curl, Python and `openssl s_client` trust it: the
/// self-signed certificate `openssl req -x509` makes carries `CA:TRUE`,
/// which webpki refuses as an end entity ([`PinnedOrWebPki`]).
pub fn client_config(ca_file: Option<&Path>, insecure: bool) -> Result<TlsConfig, String> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let mut config = match (insecure, ca_file) {
        (true, _) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(
                provider.signature_verification_algorithms,
            )))
            .with_no_client_auth(),
        (false, Some(path)) => {
            let certs = ca_certs(path)?;
            let mut roots = RootCertStore::empty();
            for cert in &certs {
                roots
                    .add(cert.clone())
                    .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedOrWebPki {
                    webpki,
                    pinned: certs,
                }))
                .with_no_client_auth()
        }
        (false, None) => builder
            .with_root_certificates(system_roots()?)
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConfig(Arc::new(config)))
}

/// The certificates of a `--ca-file`: at least one.
fn ca_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("--ca-file {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "--ca-file {}: no CERTIFICATE block in the file",
            path.display()
        ));
    }
    Ok(certs)
}

/// The system's trusted roots.
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        return Err(format!(
            "no trusted certificates found on this system ({:?}): use --ca-file or --insecure",
            found.errors
        ));
    }
    let mut roots = RootCertStore::empty();
    // A system store may hold certificates webpki cannot use: skip those.
    roots.add_parsable_certificates(found.certs);
    Ok(roots)
}

/// `--ca-file`: webpki's verification against the file's certificates, or,
/// when the server presents one of those very certificates, trust by
/// identity: the bytes match a certificate the user named, so no chain is
/// built and its `CA:TRUE` does not matter. The name and the validity
/// period are still checked, as curl and `openssl s_client` check them.
#[derive(Debug)]
struct PinnedOrWebPki {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinnedOrWebPki {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let err =
            match self
                .webpki
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
        if !self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            return Err(err);
        }
        check_validity(end_entity, now)?;
        verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}

/// Whether `now` is within the certificate's validity period.
fn check_validity(cert: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    let (not_before, not_after) = validity(cert).ok_or(rustls::Error::InvalidCertificate(
        CertificateError::BadEncoding,
    ))?;
    let unix = |s: i64| UnixTime::since_unix_epoch(Duration::from_secs(s.max(0).unsigned_abs()));
    let time = now;
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let e = if now < not_before {
        CertificateError::NotValidYetContext {
            time,
            not_before: unix(not_before),
        }
    } else if now > not_after {
        CertificateError::ExpiredContext {
            time,
            not_after: unix(not_after),
        }
    } else {
        return Ok(());
    };
    Err(rustls::Error::InvalidCertificate(e))
}

/// A DER certificate's validity period, notBefore and notAfter in seconds
/// since the Unix epoch (RFC 5280 section 4.1.2.5); `None` if it is not a
/// certificate. yasna (which rcgen writes certificates with) reads the DER.
fn validity(der: &[u8]) -> Option<(i64, i64)> {
    use yasna::models::{GeneralizedTime, UTCTime};
    use yasna::{BERReader, Tag};
    fn time(r: BERReader) -> yasna::ASN1Result<i64> {
        if r.lookahead_tag()? == yasna::tags::TAG_UTCTIME {
            r.read_utctime()
                .map(|t: UTCTime| t.datetime().unix_timestamp())
        } else {
            r.read_generalized_time()
                .map(|t: GeneralizedTime| t.datetime().unix_timestamp())
        }
    }
    yasna::parse_der(der, |r| {
        r.read_sequence(|cert| {
            let validity = cert.next().read_sequence(|tbs| {
                // TBSCertificate: [0] version, serialNumber, signature,
                // issuer, validity, then the rest.
                tbs.read_optional(|r| r.read_tagged(Tag::context(0), |r| r.read_der()))?;
                for _ in 0..3 {
                    tbs.next().read_der()?;
                }
                let v = tbs
                    .next()
                    .read_sequence(|v| Ok((time(v.next())?, time(v.next())?)))?;
                while tbs.read_optional(|r| r.read_der())?.is_some() {}
                Ok(v)
            })?;
            // signatureAlgorithm, signatureValue.
            cert.next().read_der()?;
            cert.next().read_der()?;
            Ok(validity)
        })
    })
    .ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rcgen::{date_time_ymd, CertificateParams, KeyPair};

    fn cert(from: (i32, u8, u8), to: (i32, u8, u8)) -> CertificateDer<'static> {
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        p.not_before = date_time_ymd(from.0, from.1, from.2);
        p.not_after = date_time_ymd(to.0, to.1, to.2);
        p.self_signed(&KeyPair::generate().expect("key"))
            .expect("certificate")
            .der()
            .clone()
    }

    #[test]
    fn the_validity_period_is_read_from_the_der() {
        // 2000-01-01 and 2060-01-01 (UTCTime before 2050, GeneralizedTime after).
        let c = cert((2000, 1, 1), (2060, 1, 1));
        assert_eq!(validity(&c), Some((946_684_800, 2_840_140_800)));
        let at = |s: u64| UnixTime::since_unix_epoch(Duration::from_secs(s));
        assert!(check_validity(&c, at(1_700_000_000)).is_ok());
        assert_eq!(
            check_validity(&c, at(900_000_000)),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYetContext {
                    time: at(900_000_000),
                    not_before: at(946_684_800)
                }
            ))
        );
        assert_eq!(
            check_validity(&c, at(2_900_000_000)),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ExpiredContext {
                    time: at(2_900_000_000),
                    not_after: at(2_840_140_800)
                }
            ))
        );
    }

    #[test]
    fn a_truncated_certificate_has_no_validity() {
        let c = cert((2000, 1, 1), (2030, 1, 1));
        for n in 0..c.len() {
            assert_eq!(validity(&c[..n]), None, "{n} bytes");
        }
    }

    proptest! {
        #[test]
        fn any_bytes_are_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = validity(&bytes);
        }
    }
}
