//! Certificates made on the spot for the TLS tests (no private key is
//! committed): a test CA, server certificates for `localhost` and
//! 127.0.0.1 signed by it, PEM files in a scratch directory, and rustls
//! client configs that trust the CA.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;

use super::Scratch;

/// A test certificate authority.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its key, as PEM.
pub struct ServerCert {
    /// The server's certificate, then the CA's: a chain of two.
    pub chain_pem: String,
    /// The key, PKCS#8 PEM.
    pub key_pem: String,
    /// The server certificate alone, DER (what a client sees first).
    pub der: CertificateDer<'static>,
}

impl TestCa {
    /// A fresh CA named `name` with an ECDSA P-256 key.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `localhost` and 127.0.0.1, with
    /// `common_name` to tell it apart.
    pub fn server_cert(&self, common_name: &str) -> ServerCert {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerCert {
            chain_pem: format!("{}{}", cert.pem(), self.issuer.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A rustls client config that trusts this CA alone, offering ALPN
    /// `http/1.1` as browsers do.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        client_config(&[self])
    }
}

/// A client config trusting every CA in `cas`, with the ring provider.
pub fn client_config(cas: &[&TestCa]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots.add(ca.der()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl Scratch {
    /// Writes a server certificate's chain and key: their paths.
    pub fn write_pair(&self, cert: &ServerCert) -> (PathBuf, PathBuf) {
        (
            self.write("cert.pem", &cert.chain_pem),
            self.write("key.pem", &cert.key_pem),
        )
    }
}

/// A TLS slot for an in-process server, from a pair of files.
pub fn slot(cert: &Path, key: &Path) -> wsd::tls::TlsSlot {
    wsd::tls::TlsSlot::open(cert, key).unwrap().0
}

/// The first bytes a real TLS client sends: a whole ClientHello record
/// (rustls's, for `localhost`).
pub fn client_hello(config: Arc<rustls::ClientConfig>) -> Vec<u8> {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).unwrap();
    }
    hello
}

/// A PKCS#8 EC private key (PEM) as SEC1 (`EC PRIVATE KEY`): the
/// ECPrivateKey is the PKCS#8 structure's inner octet string.
pub fn pkcs8_ec_to_sec1(pkcs8_pem: &str) -> String {
    use base64::Engine as _;
    let b64: String = pkcs8_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    // SEQUENCE { INTEGER 0, SEQUENCE { OID, OID }, OCTET STRING { ... } }
    let (body, _) = der_item(&der, 0x30);
    let (_version, rest) = der_item(body, 0x02);
    let (_algorithm, rest) = der_item(rest, 0x30);
    let (sec1, _) = der_item(rest, 0x04);
    let b64 = base64::engine::general_purpose::STANDARD.encode(sec1);
    let mut pem = String::from("-----BEGIN EC PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END EC PRIVATE KEY-----\n");
    pem
}

/// One DER item of type `tag` at the start of `der`: its contents and what
/// follows it.
fn der_item(der: &[u8], tag: u8) -> (&[u8], &[u8]) {
    assert_eq!(der[0], tag, "DER tag");
    let (len, at) = match der[1] {
        n if n < 0x80 => (usize::from(n), 2),
        0x81 => (usize::from(der[2]), 3),
        0x82 => (usize::from(u16::from_be_bytes([der[2], der[3]])), 4),
        n => panic!("DER length form {n:#x}"),
    };
    (&der[at..at + len], &der[at + len..])
}

/// `GET path` over https; the answer, after which the server closed.
pub fn https_get(
    addr: SocketAddr,
    client: Arc<rustls::ClientConfig>,
    path: &str,
) -> super::HttpResponse {
    let mut c = super::Client::connect_tls_raw(addr, client);
    c.send_raw(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    let resp = c.read_http_response();
    c.expect_eof();
    resp
}

/// The value of the sample `series` (name and labels as written) in a
/// metrics text.
pub fn sample(body: &[u8], series: &str) -> f64 {
    let text = std::str::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in {text}"))
        .parse()
        .unwrap()
}
