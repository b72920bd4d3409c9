//! Identity and integrity proofs: Ed25519 keys named as `did:key`, and Data Integrity proofs
//! with the `eddsa-jcs-2022` cryptosuite (FEP-c390 identity statements on actors, FEP-8b32
//! proofs on activities).
//!
//! `eddsa-jcs-2022` (W3C vc-di-eddsa §3.3): the document without `proof` and the proof's
//! options without `proofValue` (carrying the document's `@context`, if any) are each put in
//! JSON canonical form (RFC 8785) and hashed with SHA-256; the Ed25519 signature covers
//! `hash(options) || hash(document)`, and `proofValue` is its base58btc multibase (`z…`).

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// The multicodec prefix of an Ed25519 public key (`0xed`, varint-encoded).
const ED25519_MULTICODEC: [u8; 2] = [0xed, 0x01];
/// The proof type and cryptosuite this module makes and checks.
pub const CRYPTOSUITE: &str = "eddsa-jcs-2022";

/// Why a proof did not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    /// No `proof` object, or one missing a field.
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
    /// A cryptosuite other than `eddsa-jcs-2022`.
    #[error("unsupported cryptosuite {0:?}")]
    Unsupported(String),
    /// The verification method is not an Ed25519 `did:key`.
    #[error("verification method {0:?} is not an Ed25519 did:key")]
    BadKey(String),
    /// The signature does not match.
    #[error("the proof's signature does not verify")]
    Invalid,
}

/// An Ed25519 identity key.
pub struct IdentityKey {
    pair: Ed25519KeyPair,
    seed: [u8; 32],
}

impl std::fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IdentityKey({})", self.did())
    }
}

impl IdentityKey {
    /// A new random key.
    pub fn generate() -> Result<IdentityKey, ProofError> {
        let mut seed = [0u8; 32];
        SystemRandom::new().fill(&mut seed).map_err(|_| ProofError::Malformed("no randomness"))?;
        IdentityKey::from_seed(&seed)
    }

    /// The key with this 32-byte seed (what is stored, and what an archive carries encrypted).
    pub fn from_seed(seed: &[u8]) -> Result<IdentityKey, ProofError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| ProofError::Malformed("an Ed25519 seed has 32 bytes"))?;
        let seed: [u8; 32] =
            seed.try_into().map_err(|_| ProofError::Malformed("an Ed25519 seed has 32 bytes"))?;
        Ok(IdentityKey { pair, seed })
    }

    /// The 32-byte seed.
    pub fn seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// `did:key:z6Mk…`.
    pub fn did(&self) -> String {
        did_key(self.pair.public_key().as_ref())
    }

    /// A Data Integrity proof of `document` (which must not carry one yet), made at `created`.
    pub fn prove(&self, document: &Value, created: DateTime<Utc>) -> Value {
        let mut options = json!({
            "type": "DataIntegrityProof",
            "cryptosuite": CRYPTOSUITE,
            "created": created.to_rfc3339_opts(SecondsFormat::Secs, true),
            "verificationMethod": self.did(),
            "proofPurpose": "assertionMethod",
        });
        let signature = self.pair.sign(&hash_data(document, &mut options));
        options["proofValue"] = Value::String(format!("z{}", base58_encode(signature.as_ref())));
        if let Some(options) = options.as_object_mut() {
            options.remove("@context");
        }
        options
    }
}

/// `did:key` for an Ed25519 public key.
pub fn did_key(public_key: &[u8]) -> String {
    let mut bytes = ED25519_MULTICODEC.to_vec();
    bytes.extend_from_slice(public_key);
    format!("did:key:z{}", base58_encode(&bytes))
}

/// The Ed25519 public key a `did:key` names (a `#fragment` is ignored).
pub fn did_key_public(did: &str) -> Result<[u8; 32], ProofError> {
    let bad = || ProofError::BadKey(did.to_owned());
    let id = did.split('#').next().unwrap_or_default();
    let encoded = id.strip_prefix("did:key:z").ok_or_else(bad)?;
    let bytes = base58_decode(encoded).ok_or_else(bad)?;
    let key = bytes.strip_prefix(&ED25519_MULTICODEC[..]).ok_or_else(bad)?;
    key.try_into().map_err(|_| bad())
}

/// Checks the `proof` of `document`; returns its verification method (the `did:key`, without
/// fragment) when the signature holds.
pub fn verify(document: &Value) -> Result<String, ProofError> {
    let proof = document
        .get("proof")
        .and_then(Value::as_object)
        .ok_or(ProofError::Malformed("no proof"))?;
    let suite = proof.get("cryptosuite").and_then(Value::as_str).unwrap_or_default();
    if suite != CRYPTOSUITE {
        return Err(ProofError::Unsupported(suite.to_owned()));
    }
    let value = proof
        .get("proofValue")
        .and_then(Value::as_str)
        .ok_or(ProofError::Malformed("no proofValue"))?;
    let method = proof
        .get("verificationMethod")
        .and_then(Value::as_str)
        .ok_or(ProofError::Malformed("no verificationMethod"))?;
    let key = did_key_public(method)?;
    let signature = value
        .strip_prefix('z')
        .and_then(base58_decode)
        .ok_or(ProofError::Malformed("proofValue is not base58btc"))?;
    let mut unsecured = document.clone();
    if let Some(map) = unsecured.as_object_mut() {
        map.remove("proof");
    }
    let mut options = Value::Object(proof.clone());
    if let Some(map) = options.as_object_mut() {
        map.remove("proofValue");
    }
    UnparsedPublicKey::new(&ED25519, key)
        .verify(&hash_data(&unsecured, &mut options), &signature)
        .map_err(|_| ProofError::Invalid)?;
    Ok(method.split('#').next().unwrap_or_default().to_owned())
}

/// `sha256(jcs(options)) || sha256(jcs(document))`, with the document's `@context` copied
/// into the options first (as the cryptosuite requires).
fn hash_data(document: &Value, options: &mut Value) -> Vec<u8> {
    if let (Some(context), Some(map)) = (document.get("@context"), options.as_object_mut()) {
        map.insert("@context".to_owned(), context.clone());
    }
    let mut out = digest(&SHA256, jcs(options).as_bytes()).as_ref().to_vec();
    out.extend_from_slice(digest(&SHA256, jcs(document).as_bytes()).as_ref());
    out
}

/// A FEP-c390 identity statement linking `actor_id` to `key`'s `did:key`, proved at `created`.
pub fn identity_statement(key: &IdentityKey, actor_id: &str, created: DateTime<Utc>) -> Value {
    let mut statement = json!({
        "type": "VerifiableIdentityStatement",
        "subject": key.did(),
        "alsoKnownAs": actor_id,
    });
    let proof = key.prove(&statement, created);
    statement["proof"] = proof;
    statement
}

/// The `did:key` an actor proves it holds: the subject of a `VerifiableIdentityStatement` in
/// its `attachment` whose `alsoKnownAs` is the actor, whose proof verifies, and whose
/// verification method is the subject. Statements that fail any check are ignored.
pub fn verified_identity(attachment: &[Value], actor_id: &str) -> Option<String> {
    attachment.iter().find_map(|item| {
        if item.get("type").and_then(Value::as_str) != Some("VerifiableIdentityStatement")
            || item.get("alsoKnownAs").and_then(Value::as_str) != Some(actor_id)
        {
            return None;
        }
        let subject = item.get("subject").and_then(Value::as_str)?;
        (verify(item).ok()? == subject).then(|| subject.to_owned())
    })
}

/// RFC 8785 JSON canonical form: object members sorted by their UTF-16 code units, no
/// whitespace, strings escaped as ECMAScript does. Numbers are written as serde_json writes
/// them, which is the canonical form for integers (the documents signed here have no others).
pub fn jcs(value: &Value) -> String {
    let mut out = String::new();
    write_jcs(value, &mut out);
    out
}

fn write_jcs(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => write_object(map, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_jcs(item, out);
            }
            out.push(']');
        }
        // Strings, numbers, booleans and null: serde_json's compact form is the canonical one.
        other => out.push_str(&other.to_string()),
    }
}

fn write_object(map: &Map<String, Value>, out: &mut String) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    out.push('{');
    for (i, key) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        write_jcs(&map[key], out);
    }
    out.push('}');
}

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Bitcoin's base58 (multibase `z`).
pub fn base58_encode(bytes: &[u8]) -> String {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    // Base-58 digits, least significant first.
    let mut digits: Vec<u8> = Vec::with_capacity(bytes.len() * 138 / 100 + 1);
    for &byte in &bytes[zeros..] {
        let mut carry = u32::from(byte);
        for digit in digits.iter_mut() {
            carry += u32::from(*digit) << 8;
            *digit = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut out = String::with_capacity(zeros + digits.len());
    out.extend(std::iter::repeat_n('1', zeros));
    out.extend(digits.iter().rev().map(|&d| BASE58[d as usize] as char));
    out
}

/// Decodes base58; `None` for a character outside the alphabet.
pub fn base58_decode(text: &str) -> Option<Vec<u8>> {
    let zeros = text.bytes().take_while(|&b| b == b'1').count();
    // Bytes, least significant first.
    let mut bytes: Vec<u8> = Vec::with_capacity(text.len() * 733 / 1000 + 1);
    for c in text.bytes().skip(zeros) {
        let mut carry = BASE58.iter().position(|&a| a == c)? as u32;
        for byte in bytes.iter_mut() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut out = vec![0u8; zeros];
    out.extend(bytes.iter().rev());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_round_trips_and_keeps_leading_zeros() {
        assert_eq!(base58_encode(b"hello world"), "StV1DL6CwTryKyV");
        assert_eq!(base58_decode("StV1DL6CwTryKyV").unwrap(), b"hello world");
        assert_eq!(base58_encode(&[0, 0, 1]), "112");
        assert_eq!(base58_decode("112").unwrap(), vec![0, 0, 1]);
        assert_eq!(base58_decode("0OIl"), None);
    }

    #[test]
    fn the_fep_c390_example_did_is_an_ed25519_key() {
        let key =
            did_key_public("did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2").unwrap();
        assert_eq!(did_key(&key), "did:key:z6MkrJVnaZkeFzdQyMZu1cgjg7k1pZZ6pvBQ7XJPt4swbTQ2");
        assert!(
            did_key_public("did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme").is_err(),
            "secp256k1"
        );
    }

    #[test]
    fn jcs_sorts_members_by_utf16_and_drops_whitespace() {
        let value: Value = serde_json::from_str(
            r#"{"b": [1, {"z": null, "a": true}], "a": "é\n", "\ufb01": 1, "\ud83d\ude00": 2}"#,
        )
        .unwrap();
        // U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB01 by UTF-16 code
        // units (though after it by code points).
        assert_eq!(
            jcs(&value),
            "{\"a\":\"é\\n\",\"b\":[1,{\"a\":true,\"z\":null}],\"😀\":2,\"ﬁ\":1}"
        );
    }

    #[test]
    fn statements_verify_and_tampering_is_caught() {
        let key = IdentityKey::generate().unwrap();
        let created = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let actor = "https://ferry.example/users/alice";
        let statement = identity_statement(&key, actor, created);
        assert_eq!(verify(&statement).unwrap(), key.did());
        assert_eq!(verified_identity(std::slice::from_ref(&statement), actor), Some(key.did()));
        assert_eq!(
            verified_identity(std::slice::from_ref(&statement), "https://evil.example/users/alice"),
            None
        );
        let mut forged = statement.clone();
        forged["alsoKnownAs"] = json!("https://evil.example/users/alice");
        assert_eq!(verify(&forged), Err(ProofError::Invalid));
        // The same seed gives the same key: what an archive carries is enough.
        let again = IdentityKey::from_seed(key.seed()).unwrap();
        assert_eq!(again.did(), key.did());
        // An activity with a @context is proved with the context in the options.
        let mut activity = json!({"@context": "https://www.w3.org/ns/activitystreams", "type": "Move", "actor": actor});
        let proof = key.prove(&activity, created);
        activity["proof"] = proof;
        assert_eq!(verify(&activity).unwrap(), key.did());
        assert!(activity["proof"].get("@context").is_none());
    }
}

#[cfg(test)]
mod vectors {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len() / 2)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn rfc_8032_test_1_key_and_signature() {
        let key = IdentityKey::from_seed(&hex(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        ))
        .unwrap();
        let public = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
        assert_eq!(did_key_public(&key.did()).unwrap().as_slice(), public.as_slice());
        assert_eq!(
            key.pair.sign(b"").as_ref(),
            hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b").as_slice()
        );
    }

    #[test]
    fn the_statement_in_federation_md_is_reproduced() {
        let key = IdentityKey::from_seed(&hex(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        ))
        .unwrap();
        let created = DateTime::from_timestamp(1_795_253_412, 0).unwrap();
        assert_eq!(created.to_rfc3339(), "2026-11-21T09:30:12+00:00");
        let statement = identity_statement(&key, "https://ferry.example/users/alice", created);
        assert_eq!(
            statement["subject"],
            "did:key:z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"
        );
        assert_eq!(
            statement["proof"]["proofValue"],
            "z3n8MNVaYSqYti8SCzWaJ5CcMQdcjLpE8iEuX7YkGF9Qdmuv8ftsscMYmMbCiWRfzRX9EDzR8p6Zz7MmJQ7FAkCin"
        );
    }
}
