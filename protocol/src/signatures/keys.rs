//! RSA private keys for signing, and parsed public keys (RSA or Ed25519) for verifying.

use std::fmt;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    ED25519, KeyPair as _, ParsedPublicKey, RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
    RSA_PKCS1_SHA256, RSA_PSS_2048_8192_SHA512, UnparsedPublicKey,
};

use super::{SignatureError, pem};

/// A signature algorithm as named by a request, resolved against the key at verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256: cavage `rsa-sha256`, RFC 9421 `rsa-v1_5-sha256`.
    RsaSha256,
    /// RSASSA-PSS with SHA-512: RFC 9421 `rsa-pss-sha512`.
    RsaPssSha512,
    /// Ed25519: RFC 9421 `ed25519`.
    Ed25519,
    /// No algorithm named (cavage `hs2019`, or RFC 9421 without `alg`): the key decides.
    FromKey,
}

/// An RSA private key (an actor's signing key).
///
/// Cloning copies a handle to the same key material; share it behind an `Arc` all the same,
/// since the node keeps one per local actor. `Debug` never prints key material.
#[derive(Clone)]
pub struct PrivateKey {
    key: KeyPair,
}

impl PrivateKey {
    /// Generates a new RSA-2048 key, the size Mastodon and every other server uses.
    ///
    /// This takes about 90 ms of one core; the node should generate keys off the request path.
    pub fn generate() -> Result<PrivateKey, SignatureError> {
        let key = KeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| SignatureError::BadKey("RSA key generation failed".to_owned()))?;
        Ok(PrivateKey { key })
    }

    /// Parses a PEM private key: PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<PrivateKey, SignatureError> {
        let (label, der) = pem::decode(pem)?;
        let key = match label {
            "PRIVATE KEY" => KeyPair::from_pkcs8(&der),
            "RSA PRIVATE KEY" => KeyPair::from_der(&der),
            other => {
                return Err(SignatureError::BadKey(format!("unsupported PEM label {other:?}")));
            }
        }
        .map_err(|err| SignatureError::BadKey(format!("invalid RSA private key: {err}")))?;
        Ok(PrivateKey { key })
    }

    /// The key as PKCS#8 PEM (`PRIVATE KEY`), the form we store.
    pub fn to_pem(&self) -> String {
        let der = self.key.as_der().expect("a validated RSA key pair always serialises to PKCS#8");
        pem::encode("PRIVATE KEY", der.as_ref())
    }

    /// The public half as SPKI PEM (`PUBLIC KEY`), the form Mastodon publishes as `publicKeyPem`.
    pub fn public_key_pem(&self) -> String {
        let der =
            self.key.public_key().as_der().expect("an RSA public key always serialises to SPKI");
        pem::encode("PUBLIC KEY", der.as_ref())
    }

    /// The public half, parsed for verification.
    pub fn public_key(&self) -> PublicKey {
        // `as_ref` is the PKCS#1 `RSAPublicKey` DER, which the verifier parses directly.
        PublicKey::from_rsa_der(self.key.public_key().as_ref())
            .expect("our own public key is a valid RSA key")
    }

    /// Signs `data` with RSASSA-PKCS1-v1_5 and SHA-256 (`rsa-sha256`), returning the raw
    /// signature (256 bytes for RSA-2048).
    pub fn sign_rsa_sha256(&self, data: &[u8]) -> Vec<u8> {
        let mut signature = vec![0; self.key.public_modulus_len()];
        // aws-lc-rs ignores the RNG for PKCS#1 v1.5 (the padding is deterministic).
        self.key
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), data, &mut signature)
            .expect("signing with a validated RSA key into a modulus-sized buffer cannot fail");
        signature
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey").field("bits", &(self.key.public_modulus_len() * 8)).finish()
    }
}

/// A public key parsed once, ready to verify many signatures (parsing is about a fifth of the
/// cost of a verification, so the node should cache these per key id, not PEM strings).
///
/// RSA keys of 1024 to 8192 bits are accepted: real servers use 2048 or more, but old test
/// vectors (draft-cavage Appendix C) use 1024, and a weak key only endangers its own actor.
#[derive(Clone, Debug)]
pub struct PublicKey {
    kind: KeyKind,
}

#[derive(Clone, Debug)]
enum KeyKind {
    /// Parsed for PKCS#1 v1.5 with SHA-256, the only RSA scheme the fediverse uses.
    Rsa(ParsedPublicKey),
    Ed25519(ParsedPublicKey),
}

impl PublicKey {
    /// Parses a PEM public key: SPKI (`PUBLIC KEY`, RSA or Ed25519) as Mastodon publishes it,
    /// or PKCS#1 (`RSA PUBLIC KEY`) as some servers do.
    pub fn from_pem(pem: &str) -> Result<PublicKey, SignatureError> {
        let (label, der) = pem::decode(pem)?;
        match label {
            // aws-lc-rs parses RSA keys from either SPKI or PKCS#1 DER.
            "RSA PUBLIC KEY" => PublicKey::from_rsa_der(&der),
            "PUBLIC KEY" => PublicKey::from_rsa_der(&der).or_else(|_| {
                ParsedPublicKey::new(&ED25519, &der)
                    .map(|key| PublicKey { kind: KeyKind::Ed25519(key) })
                    .map_err(|_| {
                        SignatureError::BadKey("not an RSA or Ed25519 public key".to_owned())
                    })
            }),
            other => Err(SignatureError::BadKey(format!("unsupported PEM label {other:?}"))),
        }
    }

    fn from_rsa_der(der: &[u8]) -> Result<PublicKey, SignatureError> {
        ParsedPublicKey::new(&RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, der)
            .map(|key| PublicKey { kind: KeyKind::Rsa(key) })
            .map_err(|err| SignatureError::BadKey(format!("invalid RSA public key: {err}")))
    }

    /// Whether this is an Ed25519 key (otherwise it is RSA).
    pub fn is_ed25519(&self) -> bool {
        matches!(self.kind, KeyKind::Ed25519(_))
    }

    /// Verifies an RSASSA-PKCS1-v1_5 SHA-256 (`rsa-sha256`) signature of `data`.
    pub fn verify_rsa_sha256(&self, data: &[u8], sig: &[u8]) -> Result<(), SignatureError> {
        self.verify(Algorithm::RsaSha256, data, sig)
    }

    /// Verifies `sig` over `data` with `algorithm`, which must suit the key.
    pub(crate) fn verify(
        &self,
        algorithm: Algorithm,
        data: &[u8],
        sig: &[u8],
    ) -> Result<(), SignatureError> {
        let verified = match (&self.kind, algorithm) {
            (KeyKind::Rsa(key), Algorithm::RsaSha256) => key.verify_sig(data, sig),
            (KeyKind::Rsa(key), Algorithm::RsaPssSha512) => verify_pss(key, data, sig),
            // "The key decides" is ambiguous for RSA: the fediverse means PKCS#1 v1.5, some
            // hs2019 and RFC 9421 signers mean PSS. Accepting either is safe (both are sound
            // schemes over the same key) and costs a second attempt only for PSS signers and
            // for signatures that are invalid anyway.
            (KeyKind::Rsa(key), Algorithm::FromKey) => {
                key.verify_sig(data, sig).or_else(|_| verify_pss(key, data, sig))
            }
            (KeyKind::Ed25519(key), Algorithm::Ed25519 | Algorithm::FromKey) => {
                key.verify_sig(data, sig)
            }
            (KeyKind::Rsa(_), Algorithm::Ed25519) => {
                return Err(SignatureError::BadKey("ed25519 signature but an RSA key".to_owned()));
            }
            (KeyKind::Ed25519(_), Algorithm::RsaSha256 | Algorithm::RsaPssSha512) => {
                return Err(SignatureError::BadKey("RSA signature but an Ed25519 key".to_owned()));
            }
        };
        verified.map_err(|_| SignatureError::Invalid)
    }
}

/// PSS is rare enough that the key is re-parsed for it rather than kept parsed twice.
fn verify_pss(
    key: &ParsedPublicKey,
    data: &[u8],
    sig: &[u8],
) -> Result<(), aws_lc_rs::error::Unspecified> {
    UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA512, key.as_ref()).verify(data, sig)
}
