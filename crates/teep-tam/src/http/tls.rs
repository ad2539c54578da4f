//! TLS for the TEEP-over-HTTP server: rustls on aws-lc-rs, a certificate chain and key read
//! from PEM. otrp-over-http §7 recommends HTTPS; the TEEP messages are signed end to end
//! either way, so TLS adds confidentiality of the TC list and server authentication.

use std::path::Path;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS configuration could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file holds no PEM certificate (or cannot be read).
    #[error("certificate {path}: {source}")]
    Certificate {
        /// The file.
        path: String,
        /// What the PEM reader said.
        source: rustls::pki_types::pem::Error,
    },
    /// The key file holds no PEM private key (or cannot be read).
    #[error("private key {path}: {source}")]
    Key {
        /// The file.
        path: String,
        /// What the PEM reader said.
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the pair (the key does not match the certificate, unsupported key).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The TLS configuration of [`super::ServerConfig::tls`]: the server's certificate chain
/// (leaf first) and private key, both PEM files; TLS 1.2 and 1.3 with rustls' safe defaults,
/// no client authentication (the Agent authenticates by signing its TEEP messages), ALPN
/// `http/1.1` (the server speaks HTTP/1.1 only).
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .and_then(|c: Vec<_>| {
            if c.is_empty() {
                Err(rustls::pki_types::pem::Error::NoItemsFound)
            } else {
                Ok(c)
            }
        })
        .map_err(|source| TlsError::Certificate {
            path: cert.display().to_string(),
            source,
        })?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        path: key.display().to_string(),
        source,
    })?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
