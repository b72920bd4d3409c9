//! RFC 9421 HTTP Message Signatures, inbound: `Signature-Input` and `Signature` parsed, the
//! signature base rebuilt per §2.5, and `created`/`expires`/`Content-Digest` checked.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use url::form_urlencoded;

use super::digest::{check_content_digest, check_digest};
use super::keys::Algorithm;
use super::sfv::{self, BareItem, Item, Member, Params};
use super::{
    Coverage, IncomingRequest, ParsedSignature, SignatureError, SignatureScheme, check_skew,
    has_body, unix_time,
};

/// The most components one signature may cover.
const MAX_COMPONENTS: usize = 32;

/// Parses the signature in `input`/`signature` that we can verify.
///
/// A message may carry several signatures (RFC 9421 §4.3). We take the first whose `alg` we
/// support, or failing that the first without `alg` (the key then decides); a signature whose
/// `alg` we do not support is never chosen.
pub(super) fn parse(
    req: &IncomingRequest<'_>,
    input: &str,
    signature: &str,
    now: SystemTime,
    max_skew: Duration,
    coverage: Coverage,
) -> Result<ParsedSignature, SignatureError> {
    let inputs = sfv::parse_dictionary(input)
        .map_err(|err| SignatureError::Malformed(format!("signature-input: {err}")))?;
    let (label, components, params, algorithm) = choose(&inputs)?;

    let signatures = sfv::parse_dictionary(signature)
        .map_err(|err| SignatureError::Malformed(format!("signature: {err}")))?;
    let signature = match signatures.iter().find(|(name, _)| name == label) {
        Some((_, Member::Item(Item { bare: BareItem::Bytes(bytes), .. }))) => bytes.clone(),
        Some(_) => {
            return Err(SignatureError::Malformed(format!("signature {label} is not bytes")));
        }
        None => return Err(SignatureError::Malformed(format!("no signature labelled {label}"))),
    };

    let key_id = match sfv::param(params, "keyid") {
        Some(BareItem::String(key_id)) => key_id.clone(),
        _ => return Err(SignatureError::Malformed("missing keyid".to_owned())),
    };
    let created = integer_param(params, "created")?;
    let expires = integer_param(params, "expires")?;

    // Real signatures cover a handful of components; the cap keeps the duplicate check below
    // (quadratic, but allocation-free) cheap on hostile input.
    if components.len() > MAX_COMPONENTS {
        return Err(SignatureError::Malformed(format!("more than {MAX_COMPONENTS} components")));
    }
    let mut names: Vec<&str> = Vec::with_capacity(components.len());
    for component in components {
        let BareItem::String(name) = &component.bare else {
            return Err(SignatureError::Malformed(
                "component identifiers must be strings".to_owned(),
            ));
        };
        if components.iter().filter(|other| *other == component).count() > 1 {
            return Err(SignatureError::Malformed(format!("component {name} is covered twice")));
        }
        names.push(name);
    }
    let covers = |name: &str| names.contains(&name);

    if coverage == Coverage::Required {
        if !covers("@method") {
            return Err(SignatureError::MissingHeader("@method".to_owned()));
        }
        if !covers("@target-uri") && !covers("@path") && !covers("@request-target") {
            return Err(SignatureError::MissingHeader("@target-uri".to_owned()));
        }
        if !covers("@authority") && !covers("@target-uri") && !covers("host") {
            return Err(SignatureError::MissingHeader("@authority".to_owned()));
        }
        if has_body(req) && !covers("content-digest") && !covers("digest") {
            return Err(SignatureError::MissingHeader("content-digest".to_owned()));
        }
        if created.is_none() && !covers("date") {
            return Err(SignatureError::MissingHeader("created".to_owned()));
        }
    }

    let signing_string = signature_base(req, components, params)?;

    if let Some(created) = created {
        check_skew(now, unix_time(created)?, max_skew)?;
    }
    if let Some(expires) = expires
        && now > unix_time(expires)?
    {
        return Err(SignatureError::Expired);
    }
    if covers("date") {
        let date = req.header("date").unwrap_or_default();
        let date = httpdate::parse_http_date(date.trim())
            .map_err(|_| SignatureError::Malformed(format!("invalid date {date:?}")))?;
        check_skew(now, date, max_skew)?;
    }
    if covers("content-digest") {
        check_content_digest(req.header("content-digest").unwrap_or_default(), req.body)?;
    }
    if covers("digest") {
        check_digest(req.header("digest").unwrap_or_default(), req.body)?;
    }

    Ok(ParsedSignature {
        key_id,
        scheme: SignatureScheme::Rfc9421,
        algorithm,
        signature,
        signing_string,
    })
}

type Chosen<'m> = (&'m str, &'m [Item], &'m Params, Algorithm);

fn choose(inputs: &[(String, Member)]) -> Result<Chosen<'_>, SignatureError> {
    let mut without_alg = None;
    let mut unsupported = None;
    for (label, member) in inputs {
        let Member::InnerList(components, params) = member else {
            return Err(SignatureError::Malformed(format!(
                "signature-input {label} is not a list"
            )));
        };
        match sfv::param(params, "alg") {
            None => {
                without_alg.get_or_insert((
                    label.as_str(),
                    components.as_slice(),
                    params,
                    Algorithm::FromKey,
                ));
            }
            Some(BareItem::String(alg)) => match algorithm(alg) {
                Some(algorithm) => return Ok((label, components, params, algorithm)),
                None => {
                    unsupported.get_or_insert(alg.as_str());
                }
            },
            Some(_) => {
                return Err(SignatureError::Malformed(format!("alg of {label} is not a string")));
            }
        }
    }
    match (without_alg, unsupported) {
        (Some(chosen), _) => Ok(chosen),
        (None, Some(alg)) => Err(SignatureError::UnsupportedAlgorithm(alg.to_owned())),
        (None, None) => Err(SignatureError::Missing),
    }
}

fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "rsa-v1_5-sha256" => Some(Algorithm::RsaSha256),
        "rsa-pss-sha512" => Some(Algorithm::RsaPssSha512),
        "ed25519" => Some(Algorithm::Ed25519),
        _ => None,
    }
}

fn integer_param(params: &Params, name: &str) -> Result<Option<i64>, SignatureError> {
    match sfv::param(params, name) {
        None => Ok(None),
        Some(BareItem::Integer(value)) => Ok(Some(*value)),
        Some(_) => Err(SignatureError::Malformed(format!("{name} is not an integer"))),
    }
}

/// Builds the signature base (RFC 9421 §2.5): one `"identifier": value` line per covered
/// component, then the `@signature-params` line, re-serialised canonically.
fn signature_base(
    req: &IncomingRequest<'_>,
    components: &[Item],
    params: &Params,
) -> Result<String, SignatureError> {
    let (path, query) = match req.path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (req.path_and_query, None),
    };
    let path = if path.is_empty() { "/" } else { path };
    let authority = req.authority.to_ascii_lowercase();

    let mut base = String::with_capacity(512);
    for component in components {
        let BareItem::String(name) = &component.bare else {
            return Err(SignatureError::Malformed(
                "component identifiers must be strings".to_owned(),
            ));
        };
        let mut line = |value: &str| {
            sfv::serialize_item(component, &mut base);
            base.push_str(": ");
            base.push_str(value);
            base.push('\n');
        };
        // Only `@query-param` takes a parameter we understand; any other parameter (`sf`,
        // `key`, `bs`, `req`, `tr`) changes the value in ways we do not reproduce.
        let allowed_params = if name == "@query-param" { 1 } else { 0 };
        if component.params.len() > allowed_params
            || (allowed_params == 1 && sfv::param(&component.params, "name").is_none())
        {
            return Err(SignatureError::Malformed(format!(
                "unsupported parameters on component {name}"
            )));
        }
        match name.as_str() {
            "@method" => line(req.method),
            "@target-uri" => line(&format!(
                "{}://{authority}{}",
                req.scheme.to_ascii_lowercase(),
                if req.path_and_query.is_empty() { "/" } else { req.path_and_query }
            )),
            "@authority" => line(&authority),
            "@scheme" => line(&req.scheme.to_ascii_lowercase()),
            "@request-target" => line(req.path_and_query),
            "@path" => line(path),
            "@query" => line(&format!("?{}", query.unwrap_or_default())),
            "@query-param" => {
                let Some(BareItem::String(wanted)) = sfv::param(&component.params, "name") else {
                    return Err(SignatureError::Malformed(
                        "@query-param name is not a string".to_owned(),
                    ));
                };
                let mut values = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                    .filter(|(key, _)| percent_encode(key) == *wanted)
                    .map(|(_, value)| value);
                // RFC 9421 §2.2.8: a parameter that occurs more than once must not be signed.
                match (values.next(), values.next()) {
                    (Some(value), None) => line(&percent_encode(&value)),
                    (None, _) => {
                        return Err(SignatureError::MissingHeader(format!(
                            "@query-param {wanted}"
                        )));
                    }
                    (Some(_), Some(_)) => {
                        return Err(SignatureError::Malformed(format!(
                            "@query-param {wanted} occurs more than once"
                        )));
                    }
                }
            }
            name if name.starts_with('@') => {
                return Err(SignatureError::Malformed(format!("unsupported component {name}")));
            }
            // As for cavage, `host` is the host we are reached at.
            "host" => line(&authority),
            field => {
                let value = req
                    .header(field)
                    .ok_or_else(|| SignatureError::MissingHeader(field.to_owned()))?;
                line(value.trim());
            }
        }
    }
    base.push_str("\"@signature-params\": ");
    sfv::serialize_inner_list(components, params, &mut base);
    Ok(base)
}

/// Percent-encodes with the `application/x-www-form-urlencoded` percent-encode set, as RFC 9421
/// §2.2.8 requires for `@query-param` names and values (space becomes `%20`, not `+`).
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}
