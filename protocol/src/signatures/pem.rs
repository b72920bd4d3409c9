//! Minimal PEM (RFC 7468) encoding and decoding: one labelled base64 block, no encryption.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::SignatureError;

/// Decodes the first PEM block in `text`, returning its label and DER bytes.
///
/// Whitespace inside the block is ignored, so keys copied out of JSON with odd line breaks or
/// indentation still parse. Blocks with RFC 1421 headers (encrypted keys) are rejected.
pub(crate) fn decode(text: &str) -> Result<(&str, Vec<u8>), SignatureError> {
    let bad = |what: &str| SignatureError::BadKey(format!("invalid PEM: {what}"));
    let start = text.find("-----BEGIN ").ok_or_else(|| bad("no BEGIN line"))?;
    let rest = &text[start + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or_else(|| bad("unterminated BEGIN line"))?;
    let label = &rest[..label_end];
    let body = &rest[label_end + "-----".len()..];
    let end_line = format!("-----END {label}-----");
    let body_end = body.find(&end_line).ok_or_else(|| bad("no matching END line"))?;
    let body = &body[..body_end];
    if body.contains(':') {
        return Err(SignatureError::BadKey("encrypted PEM keys are not supported".to_owned()));
    }
    let compact: Vec<u8> = body.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(compact).map_err(|err| bad(&format!("base64 ({err})")))?;
    Ok((label, der))
}

/// Encodes DER bytes as a PEM block with 64-character lines and a trailing newline, the layout
/// OpenSSL (and so Mastodon's `publicKeyPem`) uses.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let base64 = STANDARD.encode(der);
    let mut out = String::with_capacity(base64.len() + base64.len() / 64 + 2 * label.len() + 32);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    let mut line_start = 0;
    while line_start < base64.len() {
        let line_end = (line_start + 64).min(base64.len());
        out.push_str(&base64[line_start..line_end]);
        out.push('\n');
        line_start = line_end;
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}
