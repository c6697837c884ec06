//! What the driver is told: sockets, TLS material, connection limits, debug logging.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sip_core::Transport;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The driver's configuration; built by the binary from `[sip]`.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// The sockets to bind: UDP sockets and TCP/TLS listeners. Port 0 binds an
    /// ephemeral port; [`crate::Bound::local_addrs`] tells which.
    pub listen: Vec<(Transport, SocketAddr)>,
    /// Certificates for TLS listeners and for connections we open over TLS. Required
    /// when `listen` has a TLS entry or the engine may send over TLS.
    pub tls: Option<TlsConfig>,
    /// A TCP/TLS connection with no traffic either way for this long is closed, so dead
    /// peers do not hold file descriptors forever. Default 300 s.
    pub idle_timeout: Duration,
    /// At most this many accepted connections from one remote IP; the next one is closed
    /// at once. Bounds what one host can take of our descriptors. Default 32.
    pub max_connections_per_source: usize,
    /// How long opening a connection (TCP connect plus TLS handshake, either direction)
    /// may take before it counts as a transport error. Default 10 s.
    pub connect_timeout: Duration,
    /// Log every SIP message in and out, with its peer, at `info` on the `sip` target
    /// (chan_sip's `sip set debug on`).
    pub sip_debug: bool,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            listen: Vec::new(),
            tls: None,
            idle_timeout: Duration::from_secs(300),
            max_connections_per_source: 32,
            connect_timeout: Duration::from_secs(10),
            sip_debug: false,
        }
    }
}

/// PEM files for TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Our certificate chain, leaf first.
    pub certificate: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// Trust anchors for the servers we connect to. `None` trusts the certificates of
    /// `certificate` itself: enough for a deployment whose peers share one CA or one
    /// self-signed certificate, and it needs no system root store (webpki roots would
    /// be the choice for public SIP trunks; add them here when one needs it).
    pub trust: Option<PathBuf>,
}

/// Ready-built rustls configurations, one per direction.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    /// For TLS listeners (no client certificate asked for).
    pub server: Arc<rustls::ServerConfig>,
    /// For connections we open. The server is verified against its IP address (the
    /// engine's flows carry no host name yet, see the crate docs).
    pub client: Arc<rustls::ClientConfig>,
}

impl TlsConfig {
    /// Loads certificate, key and trust anchors from PEM files. The client side presents
    /// the same certificate, for peers that ask for one (mutual TLS between servers).
    pub fn from_files(files: &TlsFiles) -> Result<TlsConfig, DriverError> {
        let chain = read_certificates(&files.certificate)?;
        let key = PrivateKeyDer::from_pem_file(&files.private_key).map_err(|e| pem_error(&files.private_key, e))?;
        let anchors = match &files.trust {
            Some(path) => read_certificates(path)?,
            None => chain.clone(),
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in anchors {
            roots.add(cert).map_err(DriverError::Tls)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain.clone(), key.clone_key())?;
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
        Ok(TlsConfig { server: Arc::new(server), client: Arc::new(client) })
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, DriverError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(DriverError::TlsFile { path: path.to_owned(), reason: "no certificate in the file".into() });
    }
    Ok(certs)
}

fn pem_error(path: &Path, e: rustls::pki_types::pem::Error) -> DriverError {
    DriverError::TlsFile { path: path.to_owned(), reason: e.to_string() }
}

/// Why the driver could not start.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A socket could not be bound (address in use, not ours, no permission).
    #[error("cannot bind {transport} on {addr}: {source}")]
    Bind {
        /// The transport of the socket.
        transport: Transport,
        /// The address asked for.
        addr: SocketAddr,
        /// The system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A TLS listener was asked for without [`DriverConfig::tls`].
    #[error("TLS listener on {0} needs a TLS configuration")]
    NoTlsConfig(SocketAddr),
    /// A PEM file could not be read or holds nothing usable.
    #[error("cannot load {path}: {reason}")]
    TlsFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// rustls refused the certificate, key or protocol versions.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}
