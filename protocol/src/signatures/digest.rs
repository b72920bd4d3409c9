//! Body digests: the legacy `Digest` header (RFC 3230) that cavage signatures cover, and
//! `Content-Digest` (RFC 9530) that RFC 9421 signatures cover.

use aws_lc_rs::digest::{self, Algorithm, SHA256, SHA512};
use base64::Engine as _;

use super::sfv::{self, BareItem, Member};
use super::{BASE64, SignatureError};

/// The `Digest` header value for `body`, as Mastodon sends it: `SHA-256=<base64>`.
pub fn digest_header(body: &[u8]) -> String {
    let hash = digest::digest(&SHA256, body);
    format!("SHA-256={}", BASE64.encode(hash.as_ref()))
}

/// Checks a `Digest` header (`SHA-256=<base64>`, possibly several comma-separated entries)
/// against `body`. Every entry we can compute must match; at least one must be computable.
pub(crate) fn check_digest(value: &str, body: &[u8]) -> Result<(), SignatureError> {
    let mut checked = false;
    for entry in value.split(',') {
        let (name, encoded) = entry
            .trim()
            .split_once('=')
            .ok_or_else(|| SignatureError::Malformed(format!("invalid digest entry {entry:?}")))?;
        let Some(algorithm) = algorithm(name) else { continue };
        let expected = BASE64
            .decode(encoded.trim())
            .map_err(|_| SignatureError::Malformed(format!("invalid digest entry {entry:?}")))?;
        compare(algorithm, &expected, body)?;
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err(SignatureError::UnsupportedAlgorithm(format!("digest {value}")))
    }
}

/// Checks a `Content-Digest` header (`sha-256=:<base64>:`, a structured dictionary) against
/// `body`, with the same rule as [`check_digest`].
pub(crate) fn check_content_digest(value: &str, body: &[u8]) -> Result<(), SignatureError> {
    let members = sfv::parse_dictionary(value)
        .map_err(|err| SignatureError::Malformed(format!("content-digest: {err}")))?;
    let mut checked = false;
    for (name, member) in &members {
        let Some(algorithm) = algorithm(name) else { continue };
        let Member::Item(sfv::Item { bare: BareItem::Bytes(expected), .. }) = member else {
            return Err(SignatureError::Malformed(format!("content-digest {name} is not bytes")));
        };
        compare(algorithm, expected, body)?;
        checked = true;
    }
    if checked {
        Ok(())
    } else {
        Err(SignatureError::UnsupportedAlgorithm(format!("content-digest {value}")))
    }
}

fn algorithm(name: &str) -> Option<&'static Algorithm> {
    if name.eq_ignore_ascii_case("sha-256") {
        Some(&SHA256)
    } else if name.eq_ignore_ascii_case("sha-512") {
        Some(&SHA512)
    } else {
        None
    }
}

fn compare(
    algorithm: &'static Algorithm,
    expected: &[u8],
    body: &[u8],
) -> Result<(), SignatureError> {
    // The digest is of public data, so a plain comparison leaks nothing.
    if digest::digest(algorithm, body).as_ref() == expected {
        Ok(())
    } else {
        Err(SignatureError::DigestMismatch)
    }
}
