//! draft-cavage-http-signatures-12, the scheme Mastodon and most of the fediverse speak:
//! signing outbound requests and parsing inbound `Signature` headers.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use url::Url;

use super::digest::{check_content_digest, check_digest, digest_header};
use super::keys::Algorithm;
use super::{
    BASE64, Coverage, IncomingRequest, ParsedSignature, PrivateKey, SignatureError,
    SignatureScheme, check_skew, has_body, unix_time,
};

/// The headers to add to an outbound request signed by [`sign_request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `Date`, in IMF-fixdate form; it is covered by the signature.
    pub date: String,
    /// `Digest` (`SHA-256=<base64>`), present when the request has a body.
    pub digest: Option<String>,
    /// `Signature`.
    pub signature: String,
    /// `Host`; send exactly this value, since it is covered by the signature.
    pub host: String,
}

/// Signs a request the way Mastodon does (draft-cavage-http-signatures-12, `rsa-sha256`).
///
/// The signature covers `(request-target) host date digest` when there is a body (`Digest` is
/// then `SHA-256=<base64>`) and `(request-target) host date` otherwise. `key_id` is the actor's
/// key id URL (`https://example.com/users/alice#main-key`); it must not contain `"`, which a
/// serialised URL never does.
pub fn sign_request(
    method: &str,
    url: &Url,
    body: Option<&[u8]>,
    key_id: &str,
    key: &PrivateKey,
    now: SystemTime,
) -> SignedHeaders {
    let date = httpdate::fmt_http_date(now);
    let host = host_header(url);
    let digest = body.map(digest_header);

    let mut signing_string = String::with_capacity(256);
    signing_string.push_str("(request-target): ");
    signing_string.push_str(&method.to_ascii_lowercase());
    signing_string.push(' ');
    signing_string.push_str(url.path());
    if let Some(query) = url.query() {
        signing_string.push('?');
        signing_string.push_str(query);
    }
    signing_string.push_str("\nhost: ");
    signing_string.push_str(&host);
    signing_string.push_str("\ndate: ");
    signing_string.push_str(&date);
    let headers = match &digest {
        Some(digest) => {
            signing_string.push_str("\ndigest: ");
            signing_string.push_str(digest);
            "(request-target) host date digest"
        }
        None => "(request-target) host date",
    };

    let signature = BASE64.encode(key.sign_rsa_sha256(signing_string.as_bytes()));
    let signature = format!(
        r#"keyId="{key_id}",algorithm="rsa-sha256",headers="{headers}",signature="{signature}""#
    );
    SignedHeaders { date, digest, signature, host }
}

/// The `Host` value for a URL: the host, plus `:port` when the port is not the scheme's
/// default (so a node at `http://127.0.0.1:8081` signs `127.0.0.1:8081`).
pub fn host_header(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The parameters of a cavage `Signature` header, borrowed from it.
#[derive(Default)]
struct Params<'a> {
    key_id: Option<&'a str>,
    algorithm: Option<&'a str>,
    headers: Option<&'a str>,
    signature: Option<&'a str>,
    created: Option<&'a str>,
    expires: Option<&'a str>,
}

/// Parses `keyId="...",algorithm="...",headers="...",signature="..."`. Parameter names are
/// matched case-insensitively and unknown ones ignored, as the draft asks.
fn parse_params(value: &str) -> Result<Params<'_>, SignatureError> {
    let malformed = |what: &str| SignatureError::Malformed(format!("signature header: {what}"));
    let mut params = Params::default();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Ok(params);
        }
        let (name, after) = rest.split_once('=').ok_or_else(|| malformed("expected name=value"))?;
        let after = after.trim_start();
        let (param_value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').ok_or_else(|| malformed("unterminated quote"))?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim_end(), &after[end..])
            }
        };
        if !next.is_empty() && !next.starts_with([',', ' ', '\t']) {
            return Err(malformed("expected ',' after a value"));
        }
        let name = name.trim();
        let slot = if name.eq_ignore_ascii_case("keyId") {
            &mut params.key_id
        } else if name.eq_ignore_ascii_case("algorithm") {
            &mut params.algorithm
        } else if name.eq_ignore_ascii_case("headers") {
            &mut params.headers
        } else if name.eq_ignore_ascii_case("signature") {
            &mut params.signature
        } else if name.eq_ignore_ascii_case("created") {
            &mut params.created
        } else if name.eq_ignore_ascii_case("expires") {
            &mut params.expires
        } else {
            rest = next;
            continue;
        };
        if slot.replace(param_value).is_some() {
            return Err(malformed(&format!("duplicate parameter {name}")));
        }
        rest = next;
    }
}

/// Parses a cavage `Signature` header value (or the part of `Authorization` after
/// `Signature `), rebuilds the signing string and checks freshness and the body digest.
pub(super) fn parse(
    req: &IncomingRequest<'_>,
    value: &str,
    now: SystemTime,
    max_skew: Duration,
    coverage: Coverage,
) -> Result<ParsedSignature, SignatureError> {
    let params = parse_params(value)?;
    let key_id =
        params.key_id.ok_or_else(|| SignatureError::Malformed("missing keyId".to_owned()))?;
    let signature = params
        .signature
        .ok_or_else(|| SignatureError::Malformed("missing signature".to_owned()))?;
    let signature = BASE64
        .decode(signature)
        .map_err(|err| SignatureError::Malformed(format!("signature is not base64 ({err})")))?;
    let algorithm = match params.algorithm {
        // `hs2019` means "whatever the key is"; senders that omit the parameter mean the same.
        None => Algorithm::FromKey,
        Some(name) if name.eq_ignore_ascii_case("hs2019") => Algorithm::FromKey,
        Some(name) if name.eq_ignore_ascii_case("rsa-sha256") => Algorithm::RsaSha256,
        Some(name) => return Err(SignatureError::UnsupportedAlgorithm(name.to_owned())),
    };
    // Without `headers`, draft-cavage (and Mastodon) sign the date alone.
    let headers: Vec<String> = params
        .headers
        .unwrap_or("date")
        .split_ascii_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    if headers.is_empty() {
        return Err(SignatureError::Malformed("empty headers list".to_owned()));
    }
    let covers = |name: &str| headers.iter().any(|header| header == name);

    if coverage == Coverage::Required {
        if !covers("(request-target)") {
            return Err(SignatureError::MissingHeader("(request-target)".to_owned()));
        }
        if !covers("host") {
            return Err(SignatureError::MissingHeader("host".to_owned()));
        }
        if !covers("date") && !covers("(created)") {
            return Err(SignatureError::MissingHeader("date".to_owned()));
        }
        if has_body(req) && !covers("digest") && !covers("content-digest") {
            return Err(SignatureError::MissingHeader("digest".to_owned()));
        }
    }

    let mut signing_string = String::with_capacity(256);
    for name in &headers {
        let value: Cow<'_, str> = match name.as_str() {
            "(request-target)" => {
                format!("{} {}", req.method.to_ascii_lowercase(), req.path_and_query).into()
            }
            "(created)" => params.created.ok_or_else(|| missing_param("created"))?.into(),
            "(expires)" => params.expires.ok_or_else(|| missing_param("expires"))?.into(),
            // The host we are reached at, not whatever `Host` says: a request signed for
            // another server must not verify here.
            "host" => req.authority.into(),
            other => req
                .header(other)
                .ok_or_else(|| SignatureError::MissingHeader(other.to_owned()))?
                .trim()
                .into(),
        };
        if !signing_string.is_empty() {
            signing_string.push('\n');
        }
        signing_string.push_str(name);
        signing_string.push_str(": ");
        signing_string.push_str(&value);
    }

    if covers("date") {
        let date =
            req.header("date").ok_or_else(|| SignatureError::MissingHeader("date".to_owned()))?;
        let date = httpdate::parse_http_date(date.trim())
            .map_err(|_| SignatureError::Malformed(format!("invalid date {date:?}")))?;
        check_skew(now, date, max_skew)?;
    }
    if let Some(created) = params.created {
        check_skew(now, unix_time(parse_seconds(created)?)?, max_skew)?;
    }
    if let Some(expires) = params.expires
        && now > unix_time(parse_seconds(expires)?)?
    {
        return Err(SignatureError::Expired);
    }
    if covers("digest") {
        let value = req
            .header("digest")
            .ok_or_else(|| SignatureError::MissingHeader("digest".to_owned()))?;
        check_digest(value, req.body)?;
    }
    if covers("content-digest") {
        let value = req
            .header("content-digest")
            .ok_or_else(|| SignatureError::MissingHeader("content-digest".to_owned()))?;
        check_content_digest(value, req.body)?;
    }

    Ok(ParsedSignature {
        key_id: key_id.to_owned(),
        scheme: SignatureScheme::Cavage,
        algorithm,
        signature,
        signing_string,
    })
}

fn missing_param(name: &str) -> SignatureError {
    SignatureError::Malformed(format!("({name}) is covered but the {name} parameter is absent"))
}

/// Parses `created`/`expires`, which draft-cavage allows to carry a fractional part.
fn parse_seconds(value: &str) -> Result<i64, SignatureError> {
    let whole = value.split_once('.').map_or(value, |(whole, _)| whole);
    whole.parse().map_err(|_| SignatureError::Malformed(format!("invalid timestamp {value:?}")))
}
