//! HTTP signatures: signing outbound requests and verifying inbound ones.
//!
//! Outbound, we sign as Mastodon does: draft-cavage-http-signatures-12 with `rsa-sha256`
//! ([`sign_request`]). Inbound, we accept that scheme (also when labelled `hs2019`, or sent as
//! `Authorization: Signature ...`) and RFC 9421 HTTP Message Signatures (`Signature-Input`).
//!
//! Verifying is two steps so that the caller can fetch the key in between:
//! [`ParsedSignature::parse`] checks what the signature covers, the body digest and the
//! request's age, rebuilds the signing string and yields the `key_id` to look up; then
//! [`ParsedSignature::verify`] checks the signature against that actor's [`PublicKey`].
//!
//! What `parse` insists on, for either scheme: the method and target, the host and a date
//! (`Date`, cavage `(created)` or RFC 9421 `created`) are covered; requests with a body cover
//! `Digest` or `Content-Digest` and it matches the body; dates are within `max_skew` of `now`
//! in either direction and `expires` has not passed.
//!
//! Keys are RSA through aws-lc-rs (never the RustCrypto `rsa` crate, which is slower and
//! whose signing is not constant-time, RUSTSEC-2023-0071); Ed25519 keys verify RFC 9421
//! signatures.

mod cavage;
mod digest;
mod keys;
mod pem;
mod rfc9421;
mod sfv;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

pub use cavage::{SignedHeaders, host_header, sign_request};
pub use digest::digest_header;
pub use keys::{PrivateKey, PublicKey};

use keys::Algorithm;

/// Standard base64 that also accepts unpadded input, since some signers drop the padding.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a signature was not accepted, or a key not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The request carries no `Signature`, `Signature-Input` or `Authorization: Signature`.
    #[error("request is not signed")]
    Missing,
    /// A signature header, or a value it refers to, could not be parsed.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// A header or component the signature must cover is not covered, or is covered but
    /// absent from the request (e.g. `digest` on a POST, `date`, `host`).
    #[error("required signed header {0} is not covered or not present")]
    MissingHeader(String),
    /// The `Digest` or `Content-Digest` header does not match the body.
    #[error("body digest does not match")]
    DigestMismatch,
    /// The signature's date is more than `max_skew` away from now, or its `expires` has passed.
    #[error("signature has expired or is dated in the future")]
    Expired,
    /// The signature (or digest) algorithm is not one we support.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The key could not be parsed or generated, or does not suit the signature's algorithm.
    #[error("unusable key: {0}")]
    BadKey(String),
    /// The signature does not verify against the key.
    #[error("signature does not verify")]
    Invalid,
}

/// An inbound request, as much of it as signature checking needs.
///
/// Header lookup is a closure so that this crate does not depend on `http`.
#[derive(Clone, Copy)]
pub struct IncomingRequest<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// `https` or `http`, as the node is reached from outside (not necessarily what a reverse
    /// proxy forwards). Only RFC 9421 `@target-uri` and `@scheme` use it.
    pub scheme: &'a str,
    /// Path and query as received, e.g. `/users/alice/inbox` or `/search?q=x`.
    pub path_and_query: &'a str,
    /// The host (and non-default port) the node is reached at, e.g. `example.com` or
    /// `127.0.0.1:8081`. This, not the request's `Host` header, is what a signed `host` must
    /// equal, so a request signed for another server never verifies here.
    pub authority: &'a str,
    /// Looks a header up by name, case-insensitively; names are passed in lowercase. A
    /// header sent several times should be returned joined with `", "`.
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
    /// The body as received.
    pub body: &'a [u8],
}

impl<'a> IncomingRequest<'a> {
    fn header(&self, name: &str) -> Option<&'a str> {
        (self.header)(name)
    }
}

/// Which specification a signature follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    /// draft-cavage-http-signatures (`Signature` or `Authorization: Signature`).
    Cavage,
    /// RFC 9421 HTTP Message Signatures (`Signature-Input` and `Signature`).
    Rfc9421,
}

/// A signature header parsed and its signing string rebuilt, not yet checked against a key.
#[derive(Clone, Debug)]
pub struct ParsedSignature {
    /// The key id to fetch the public key by: for ActivityPub, the actor's key URL.
    pub key_id: String,
    /// The specification the signature follows.
    pub scheme: SignatureScheme,
    algorithm: Algorithm,
    signature: Vec<u8>,
    signing_string: String,
}

/// How much of the request a signature must cover. Production always uses `Required`;
/// `AsSigned` exists for published test vectors, which sign less than we demand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coverage {
    Required,
    #[cfg_attr(not(test), allow(dead_code))]
    AsSigned,
}

impl ParsedSignature {
    /// Parses the request's signature headers and rebuilds the string that was signed.
    ///
    /// `Signature-Input` selects RFC 9421; otherwise `Signature`, then `Authorization:
    /// Signature ...`, is read as draft-cavage. `max_skew` bounds how far a signed date may be
    /// from `now` either way (Mastodon uses 12 hours). See the module docs for what must be
    /// covered.
    pub fn parse(
        req: &IncomingRequest<'_>,
        now: SystemTime,
        max_skew: Duration,
    ) -> Result<ParsedSignature, SignatureError> {
        ParsedSignature::parse_with(req, now, max_skew, Coverage::Required)
    }

    fn parse_with(
        req: &IncomingRequest<'_>,
        now: SystemTime,
        max_skew: Duration,
        coverage: Coverage,
    ) -> Result<ParsedSignature, SignatureError> {
        if let Some(input) = req.header("signature-input") {
            let signature = req.header("signature").ok_or(SignatureError::Missing)?;
            return rfc9421::parse(req, input, signature, now, max_skew, coverage);
        }
        if let Some(signature) = req.header("signature") {
            return cavage::parse(req, signature, now, max_skew, coverage);
        }
        if let Some(authorization) = req.header("authorization")
            && let Some((scheme, params)) = authorization.trim_start().split_once(' ')
            && scheme.eq_ignore_ascii_case("signature")
        {
            return cavage::parse(req, params, now, max_skew, coverage);
        }
        Err(SignatureError::Missing)
    }

    /// Checks the signature against the signer's public key.
    ///
    /// `rsa-sha256` / `rsa-v1_5-sha256` need an RSA key, `ed25519` an Ed25519 key. When the
    /// signature names no algorithm (`hs2019`, or RFC 9421 without `alg`) the key decides:
    /// Ed25519, or for RSA either PKCS#1 v1.5 SHA-256 or PSS SHA-512.
    pub fn verify(&self, key: &PublicKey) -> Result<(), SignatureError> {
        key.verify(self.algorithm, self.signing_string.as_bytes(), &self.signature)
    }

    /// The rebuilt signing string (cavage) or signature base (RFC 9421), for diagnostics.
    pub fn signing_string(&self) -> &str {
        &self.signing_string
    }
}

/// Whether the request has, or by its method should have, a body that a digest must cover.
fn has_body(req: &IncomingRequest<'_>) -> bool {
    !req.body.is_empty()
        || ["POST", "PUT", "PATCH"].iter().any(|method| req.method.eq_ignore_ascii_case(method))
}

/// Fails with `Expired` when `at` is more than `max_skew` before or after `now`.
fn check_skew(now: SystemTime, at: SystemTime, max_skew: Duration) -> Result<(), SignatureError> {
    let skew = match now.duration_since(at) {
        Ok(age) => age,
        Err(err) => err.duration(),
    };
    if skew > max_skew { Err(SignatureError::Expired) } else { Ok(()) }
}

/// Converts a Unix timestamp from a signature parameter.
fn unix_time(seconds: i64) -> Result<SystemTime, SignatureError> {
    u64::try_from(seconds)
        .ok()
        .and_then(|seconds| UNIX_EPOCH.checked_add(Duration::from_secs(seconds)))
        .ok_or_else(|| SignatureError::Malformed(format!("invalid timestamp {seconds}")))
}
