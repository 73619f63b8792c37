//! How [`protocol`](super::protocol)'s own connections reach a secured cluster, read from the
//! same `properties.*` librdkafka takes, so that a restore's transaction calls go where the
//! sink's producers go: `security.protocol` (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`,
//! `SASL_SSL`), TLS verified against `ssl.ca.location` / `ssl.ca.pem` or the system's
//! roots, and SASL `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` with `sasl.username` and
//! `sasl.password`. What it cannot speak (GSSAPI, OAUTHBEARER, client certificates, turned
//! off verification) is refused by name, before the job runs.

use std::sync::Arc;

use rdkafka::ClientConfig;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::scram::ScramHash;

/// The way to a cluster's brokers.
#[derive(Debug, Clone)]
pub(super) struct Security {
    /// TLS on every connection, verified with this configuration.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// SASL authentication after connecting (and after TLS).
    pub sasl: Option<Sasl>,
}

/// A SASL mechanism and its credentials.
#[derive(Clone)]
pub(super) struct Sasl {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mechanism {
    Plain,
    Scram(ScramHash),
}

impl Mechanism {
    pub(super) fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(hash) => hash.mechanism(),
        }
    }
}

impl Security {
    /// The connections `config` asks for, or why Cairn's own client cannot make them.
    pub(super) fn from_config(config: &ClientConfig) -> Result<Security, String> {
        let protocol = config
            .get("security.protocol")
            .unwrap_or("plaintext")
            .to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => {
                return Err(format!(
                    "security.protocol {other} is unknown (PLAINTEXT, SSL, SASL_PLAINTEXT, \
                     SASL_SSL)"
                ));
            }
        };
        Ok(Security {
            tls: if tls { Some(tls_config(config)?) } else { None },
            sasl: if sasl {
                Some(sasl_config(config)?)
            } else {
                None
            },
        })
    }
}

/// The SASL settings, as librdkafka reads them (`sasl.mechanisms` is the older name of
/// `sasl.mechanism`; GSSAPI is librdkafka's default).
fn sasl_config(config: &ClientConfig) -> Result<Sasl, String> {
    let name = config
        .get("sasl.mechanism")
        .or_else(|| config.get("sasl.mechanisms"))
        .unwrap_or("GSSAPI");
    let mechanism = match name.to_ascii_uppercase().as_str() {
        "PLAIN" => Mechanism::Plain,
        "SCRAM-SHA-256" => Mechanism::Scram(ScramHash::Sha256),
        "SCRAM-SHA-512" => Mechanism::Scram(ScramHash::Sha512),
        _ => {
            return Err(format!(
                "sasl.mechanism {name} is not one a restore can authenticate with in this \
                 version (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)"
            ));
        }
    };
    let credential = |key: &str| {
        config
            .get(key)
            .map(str::to_owned)
            .ok_or_else(|| format!("sasl.mechanism {name} needs {key}"))
    };
    Ok(Sasl {
        mechanism,
        username: credential("sasl.username")?,
        password: credential("sasl.password")?,
    })
}

/// A TLS client verifying brokers as librdkafka does by default: against the CA
/// certificates of `ssl.ca.location` (a PEM file) or `ssl.ca.pem`, or else the system's,
/// and for the host name the broker is reached by.
fn tls_config(config: &ClientConfig) -> Result<Arc<rustls::ClientConfig>, String> {
    for (key, refused) in [
        ("enable.ssl.certificate.verification", "false"),
        ("ssl.endpoint.identification.algorithm", "none"),
    ] {
        if config
            .get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case(refused))
        {
            return Err(format!(
                "{key}={refused}: a restore verifies brokers' certificates in this version"
            ));
        }
    }
    for key in [
        "ssl.certificate.location",
        "ssl.certificate.pem",
        "ssl.key.location",
        "ssl.key.pem",
        "ssl.keystore.location",
    ] {
        if config.get(key).is_some() {
            return Err(format!(
                "{key}: a restore does not present client certificates in this version"
            ));
        }
    }
    let mut roots = rustls::RootCertStore::empty();
    let certificates: Vec<CertificateDer<'static>> =
        match (config.get("ssl.ca.location"), config.get("ssl.ca.pem")) {
            (Some(path), _) if path != "probe" => CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect())
                .map_err(|e| format!("ssl.ca.location {path}: {e}"))?,
            (_, Some(pem)) => CertificateDer::pem_slice_iter(pem.as_bytes())
                .collect::<Result<_, _>>()
                .map_err(|e| format!("ssl.ca.pem: {e}"))?,
            _ => {
                let native = rustls_native_certs::load_native_certs();
                if native.certs.is_empty() {
                    return Err(format!(
                        "no ssl.ca.location given and no system CA certificates found{}",
                        native
                            .errors
                            .first()
                            .map(|e| format!(" ({e})"))
                            .unwrap_or_default()
                    ));
                }
                native.certs
            }
        };
    if certificates.is_empty() {
        return Err("the CA certificates given hold no certificate".into());
    }
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|e| format!("a CA certificate: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in pairs {
            config.set(*key, *value);
        }
        config
    }

    #[test]
    fn protocols_and_mechanisms() {
        let plain = Security::from_config(&config(&[])).unwrap();
        assert!(plain.tls.is_none() && plain.sasl.is_none());
        let sasl = Security::from_config(&config(&[
            ("security.protocol", "sasl_plaintext"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "u"),
            ("sasl.password", "p"),
        ]))
        .unwrap();
        assert!(sasl.tls.is_none());
        let sasl = sasl.sasl.unwrap();
        assert_eq!(sasl.mechanism, Mechanism::Scram(ScramHash::Sha512));
        assert!(!format!("{sasl:?}").contains("password"), "{sasl:?}");
    }

    #[test]
    fn what_a_restore_cannot_speak_is_refused_by_name() {
        for (pairs, error) in [
            (vec![("security.protocol", "tcp")], "security.protocol TCP"),
            (
                vec![("security.protocol", "SASL_PLAINTEXT")],
                "sasl.mechanism GSSAPI",
            ),
            (
                vec![
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "PLAIN"),
                    ("sasl.username", "u"),
                ],
                "needs sasl.password",
            ),
            (
                vec![
                    ("security.protocol", "SSL"),
                    ("ssl.endpoint.identification.algorithm", "none"),
                ],
                "verifies brokers",
            ),
            (
                vec![
                    ("security.protocol", "SSL"),
                    ("ssl.certificate.location", "/c.pem"),
                ],
                "client certificates",
            ),
            (
                vec![
                    ("security.protocol", "SSL"),
                    ("ssl.ca.location", "/no/such/ca.pem"),
                ],
                "ssl.ca.location /no/such/ca.pem",
            ),
            (
                vec![("security.protocol", "SSL"), ("ssl.ca.pem", "not a pem")],
                "hold no certificate",
            ),
        ] {
            let e = Security::from_config(&config(&pairs)).unwrap_err();
            assert!(e.contains(error), "{pairs:?}: {e}");
        }
    }
}
