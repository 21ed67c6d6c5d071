//! TLS for `serve --tls-cert FILE --tls-key FILE`: the certificate and key, checked at
//! start-up. Handshakes run in each connection's own task, under the same deadline and
//! connection limit as plain HTTP (see `serve.rs`), so a slow or silent client never holds
//! up the others.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no PEM certificate.
    #[error("--tls-cert {path}: {reason}")]
    Certificate { path: String, reason: String },
    /// The key file is missing, unreadable or holds no PEM private key.
    #[error("--tls-key {path}: {reason}")]
    Key { path: String, reason: String },
    /// The key does not belong to the certificate, or rustls refused them.
    #[error("TLS certificate and key: {0}")]
    Mismatch(String),
}

/// A server certificate chain and key, checked and ready to serve.
#[derive(Clone)]
pub struct TlsConfig(Arc<rustls::ServerConfig>);

impl TlsConfig {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<_, _>>())
            .map_err(|err| TlsError::Certificate {
                path: cert.display().to_string(),
                reason: err.to_string(),
            })?;
        if certs.is_empty() {
            return Err(TlsError::Certificate {
                path: cert.display().to_string(),
                reason: "no PEM certificate in the file".to_owned(),
            });
        }
        let private = PrivateKeyDer::from_pem_file(key).map_err(|err| TlsError::Key {
            path: key.display().to_string(),
            reason: err.to_string(),
        })?;
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, private)
            .map_err(|err| TlsError::Mismatch(err.to_string()))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsConfig(Arc::new(config)))
    }

    pub(crate) fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.0.clone()
    }
}
