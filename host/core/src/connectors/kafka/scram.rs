//! The client side of SCRAM (RFC 5802, as Kafka's `SCRAM-SHA-256` and `SCRAM-SHA-512`
//! mechanisms use it, without channel binding): pure, so that the exchange is tested
//! against the RFC's vectors; [`protocol`](super::protocol) carries its messages.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// The hash a SCRAM mechanism is named for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ScramHash {
    Sha256,
    Sha512,
}

impl ScramHash {
    /// The mechanism's name in Kafka's `sasl.mechanism`.
    pub(super) fn mechanism(self) -> &'static str {
        match self {
            ScramHash::Sha256 => "SCRAM-SHA-256",
            ScramHash::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => mac::<Hmac<Sha256>>(key, data),
            ScramHash::Sha512 => mac::<Hmac<Sha512>>(key, data),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => Sha256::digest(data).to_vec(),
            ScramHash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `Hi(password, salt, iterations)`: PBKDF2 with this hash's HMAC.
    fn salted(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramHash::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password, salt, iterations).to_vec()
            }
            ScramHash::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password, salt, iterations).to_vec()
            }
        }
    }
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// Kafka's floor on the server's iteration count (its `ScramMechanism.minIterations`): a
/// server asking for fewer is not trusted.
const MIN_ITERATIONS: u32 = 4096;

/// What went wrong in an exchange.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum ScramError {
    #[error("the server's SCRAM message is malformed: {0}")]
    Malformed(String),
    #[error("the server refused the SCRAM exchange: {0}")]
    Refused(String),
    #[error("the server's SCRAM signature is wrong: it does not know this user's password")]
    BadServerSignature,
}

/// One SCRAM exchange: [`first`](Self::first) → the server's first message →
/// [`last`](Self::last) → the server's final message → [`verify`](Self::verify).
pub(super) struct ScramClient {
    hash: ScramHash,
    password: String,
    nonce: String,
    /// `n=<user>,r=<nonce>`, part of the signed message.
    first_bare: String,
}

/// The client's final message and what the server must answer to prove itself.
pub(super) struct ScramFinal {
    pub message: String,
    server_signature: Vec<u8>,
}

impl ScramClient {
    /// An exchange for `username` with a client nonce (printable, without commas).
    pub(super) fn new(hash: ScramHash, username: &str, password: &str, nonce: String) -> Self {
        let user = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            hash,
            password: password.to_owned(),
            first_bare: format!("n={user},r={nonce}"),
            nonce,
        }
    }

    /// A random client nonce.
    pub(super) fn random_nonce() -> String {
        BASE64.encode(rand::random::<[u8; 24]>())
    }

    /// The client's first message: no channel binding, no authorization identity.
    pub(super) fn first(&self) -> String {
        format!("n,,{}", self.first_bare)
    }

    /// The client's final message, answering the server's first.
    pub(super) fn last(&self, server_first: &str) -> Result<ScramFinal, ScramError> {
        let fields = attributes(server_first);
        if let Some(error) = fields.get("e") {
            return Err(ScramError::Refused((*error).to_owned()));
        }
        let field = |name: &str| {
            fields
                .get(name)
                .copied()
                .ok_or_else(|| ScramError::Malformed(format!("no {name}= in {server_first:?}")))
        };
        let nonce = field("r")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(ScramError::Malformed(
                "the server's nonce does not extend the client's".into(),
            ));
        }
        let salt = BASE64
            .decode(field("s")?)
            .map_err(|e| ScramError::Malformed(format!("salt: {e}")))?;
        let iterations: u32 = field("i")?
            .parse()
            .map_err(|e| ScramError::Malformed(format!("iteration count: {e}")))?;
        if iterations < MIN_ITERATIONS {
            return Err(ScramError::Malformed(format!(
                "{iterations} iterations, fewer than {MIN_ITERATIONS}"
            )));
        }
        let hash = self.hash;
        let salted = hash.salted(self.password.as_bytes(), &salt, iterations);
        let client_key = hash.hmac(&salted, b"Client Key");
        let stored_key = hash.hash(&client_key);
        // "biws" is base64 of the GS2 header "n,,".
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.first_bare);
        let signature = hash.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = hash.hmac(&salted, b"Server Key");
        Ok(ScramFinal {
            message: format!("{without_proof},p={}", BASE64.encode(proof)),
            server_signature: hash.hmac(&server_key, auth_message.as_bytes()),
        })
    }
}

impl ScramFinal {
    /// Checks the server's final message: it must prove it knows the password too.
    pub(super) fn verify(&self, server_final: &str) -> Result<(), ScramError> {
        let fields = attributes(server_final);
        if let Some(error) = fields.get("e") {
            return Err(ScramError::Refused((*error).to_owned()));
        }
        let verifier = fields
            .get("v")
            .ok_or_else(|| ScramError::Malformed(format!("no v= in {server_final:?}")))?;
        let signature = BASE64
            .decode(verifier)
            .map_err(|e| ScramError::Malformed(format!("server signature: {e}")))?;
        if signature == self.server_signature {
            Ok(())
        } else {
            Err(ScramError::BadServerSignature)
        }
    }
}

/// `a=x,b=y` as a map from attribute to value (values may contain `=`).
fn attributes(message: &str) -> std::collections::HashMap<&str, &str> {
    message
        .split(',')
        .filter_map(|field| field.split_once('='))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example exchange for SCRAM-SHA-256.
    #[test]
    fn the_rfc_7677_exchange() {
        let client = ScramClient::new(
            ScramHash::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(client.first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let last = client
            .last(
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                 s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap();
        assert_eq!(
            last.message,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert_eq!(
            last.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Ok(())
        );
        assert_eq!(
            last.verify("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::BadServerSignature)
        );
    }

    #[test]
    fn names_are_escaped_and_servers_checked() {
        let client = ScramClient::new(ScramHash::Sha512, "a=b,c", "pw", "abc".into());
        assert_eq!(client.first(), "n,,n=a=3Db=2Cc,r=abc");
        for (server_first, error) in [
            ("e=unknown-user", "refused"),
            ("r=xyz1,s=QUJD,i=4096", "does not extend"),
            ("r=abc,s=QUJD,i=4096", "does not extend"),
            ("r=abcd,s=QUJD,i=10", "fewer than"),
            ("r=abcd,i=4096", "no s="),
            ("r=abcd,s=!!,i=4096", "salt"),
        ] {
            let Err(e) = client.last(server_first) else {
                panic!("{server_first} accepted");
            };
            assert!(e.to_string().contains(error), "{server_first}: {e}");
        }
        assert!(client.last("r=abcd,s=QUJD,i=4096").is_ok());
    }
}
