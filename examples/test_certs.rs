//! Writes a throwaway certificate authority and a server certificate
//! signed by it, for the scripts that run wsd over TLS (interop, Autobahn
//! `--tls`, the browser check, benchmarks). Nothing here is for production:
//! the keys are made on the spot and live in the directory given.
//!
//! ```text
//! cargo run --example test_certs -- DIR
//! ```
//!
//! writes `DIR/ca.pem` (the CA certificate, to trust), `DIR/cert.pem` (the
//! server's chain: its certificate, then the CA's), `DIR/key.pem` (its
//! PKCS#8 key) and, with `--second`, `DIR/cert2.pem` and `DIR/key2.pem`
//! (another server pair from the same CA, for reload checks). The server
//! certificate names `localhost`, 127.0.0.1 and ::1.

use std::path::PathBuf;
use std::process::ExitCode;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: test_certs DIR [--second]");
        return ExitCode::from(2);
    };
    let second = args.next().as_deref() == Some("--second");
    match write(&dir, second) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("test_certs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write(dir: &std::path::Path, second: bool) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "wsd throwaway test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    let pairs: &[(&str, &str)] = if second {
        &[("cert.pem", "key.pem"), ("cert2.pem", "key2.pem")]
    } else {
        &[("cert.pem", "key.pem")]
    };
    for (n, (cert_file, key_file)) in pairs.iter().enumerate() {
        let key = KeyPair::generate()?;
        let names = ["localhost", "127.0.0.1", "::1"].map(String::from);
        let mut params = CertificateParams::new(names.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, format!("wsd test server {}", n + 1));
        let cert = params.signed_by(&key, &ca)?;
        std::fs::write(dir.join(cert_file), format!("{}{}", cert.pem(), ca.pem()))?;
        std::fs::write(dir.join(key_file), key.serialize_pem())?;
    }
    Ok(())
}
