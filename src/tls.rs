//! The server's certificate: loading and checking the PEM files, and
//! swapping in a new pair on reload (SIGHUP) without dropping anyone.
//!
//! The files are read on the thread that asks (at start, main; on SIGHUP,
//! the signal thread), never on a reactor. A good pair becomes a new
//! `Arc<ServerConfig>` in the [`TlsSlot`] every reactor shares; a reactor
//! takes the current one when it accepts a connection, so new handshakes
//! get the new certificate while established sessions keep the config
//! they began with. A bad pair leaves the slot as it was.
//!
//! The config is rustls's safe defaults with the ring provider: TLS 1.2
//! and 1.3 only, no client certificates, ALPN `http/1.1` (what a browser
//! needs to hear for `wss://` and `https://`).

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// Certificate and key files larger than this are refused: a chain is a
/// few KiB, and a wrong path (a log, a disk image) should not be read whole.
const MAX_PEM_FILE: u64 = 1 << 20;

/// A certificate chain and its key, as loaded.
pub struct Loaded {
    /// The rustls config serving them.
    pub config: Arc<ServerConfig>,
    /// Certificates in the chain (the server's first).
    pub chain: usize,
}

/// Loads and checks a certificate chain and its private key (PEM; the key
/// PKCS#8, PKCS#1 RSA or SEC1 EC) into a server config. The error is one
/// line naming the file and what is wrong with it.
pub fn load(cert: &Path, key: &Path) -> Result<Loaded, String> {
    let cert_pem = read_pem(cert, "--tls-cert")?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no CERTIFICATE block in the file",
            cert.display()
        ));
    }
    let key_pem = read_pem(key, "--tls-key")?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        format!(
            "--tls-key {}: {e} (expected a PEM private key: PKCS#8, RSA or EC)",
            key.display()
        )
    })?;
    let n = chain.len();
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        // Parses the key and checks it belongs to the first certificate.
        .with_single_cert(chain, key_der)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => format!(
                "--tls-key {} is not the private key of the first certificate in --tls-cert {} \
                 (give the key the certificate was made with, and the server's own \
                 certificate first in the chain)",
                key.display(),
                cert.display()
            ),
            e => format!(
                "--tls-cert {} with --tls-key {}: {e}",
                cert.display(),
                key.display()
            ),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        chain: n,
    })
}

/// A file's bytes, refusing what cannot be a PEM certificate or key.
fn read_pem(path: &Path, flag: &str) -> Result<Vec<u8>, String> {
    let fail = |e: &dyn fmt::Display| format!("{flag} {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(&e))?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(fail(&format_args!(
            "larger than {} KiB: not a PEM file",
            MAX_PEM_FILE >> 10
        )));
    }
    Ok(bytes)
}

/// What a reload did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReloadResult {
    /// The new pair is in use for new handshakes.
    Ok,
    /// The files were bad: the old pair stays.
    Error,
}

#[derive(Debug)]
struct Inner {
    cert: PathBuf,
    key: PathBuf,
    current: Mutex<Arc<ServerConfig>>,
    reloads_ok: AtomicU64,
    reloads_error: AtomicU64,
}

/// The certificate every reactor serves, shared, and replaceable by
/// [`TlsSlot::reload`] from another thread. Cloning shares it.
#[derive(Clone)]
pub struct TlsSlot(Arc<Inner>);

impl fmt::Debug for TlsSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSlot")
            .field("cert", &self.0.cert)
            .field("key", &self.0.key)
            .finish_non_exhaustive()
    }
}

impl TlsSlot {
    /// Loads the pair (see [`load`]) into a new slot that knows where to
    /// reload it from.
    pub fn open(cert: &Path, key: &Path) -> Result<(TlsSlot, Loaded), String> {
        let loaded = load(cert, key)?;
        let slot = TlsSlot(Arc::new(Inner {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: Mutex::new(loaded.config.clone()),
            reloads_ok: AtomicU64::new(0),
            reloads_error: AtomicU64::new(0),
        }));
        Ok((slot, loaded))
    }

    /// The config new connections get. A lock and a reference count, once
    /// per accepted connection.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.0
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the files again; a good pair replaces the current one for new
    /// handshakes, a bad one is refused (the error says why) and the old
    /// pair stays. Either way it is counted. Does file I/O: call it from
    /// any thread but a reactor's.
    pub fn reload(&self) -> Result<Loaded, String> {
        match load(&self.0.cert, &self.0.key) {
            Ok(loaded) => {
                *self
                    .0
                    .current
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = loaded.config.clone();
                self.0.reloads_ok.fetch_add(1, Ordering::Relaxed);
                Ok(loaded)
            }
            Err(e) => {
                self.0.reloads_error.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Reloads so far with `result`.
    pub fn reloads(&self, result: ReloadResult) -> u64 {
        match result {
            ReloadResult::Ok => self.0.reloads_ok.load(Ordering::Relaxed),
            ReloadResult::Error => self.0.reloads_error.load(Ordering::Relaxed),
        }
    }

    /// The certificate file, for messages.
    pub fn cert_path(&self) -> &Path {
        &self.0.cert
    }
}
