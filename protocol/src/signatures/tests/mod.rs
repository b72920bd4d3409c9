//! Signature tests: published vectors first, then round trips through our own signer and the
//! ways a request must be rejected.

mod vectors;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use url::Url;

use super::{
    BASE64, Coverage, IncomingRequest, ParsedSignature, PrivateKey, PublicKey, SignatureError,
    SignatureScheme, digest_header, host_header, pem, sign_request,
};
use vectors::{
    B21_SIGNATURE, B21_SIGNATURE_INPUT, B22_BASE, B22_SIGNATURE, B22_SIGNATURE_INPUT, B23_BASE,
    B23_SIGNATURE, B23_SIGNATURE_INPUT, B26_BASE, B26_SIGNATURE, B26_SIGNATURE_INPUT,
    CAVAGE_C1_SIGNATURE, CAVAGE_C2_SIGNATURE, CAVAGE_C3_SIGNATURE, CAVAGE_PRIVATE_KEY,
    CAVAGE_PUBLIC_KEY, PROXY_BASE, PROXY_SIGNATURE, PROXY_SIGNATURE_INPUT, PROXY_SIGNATURE_VALUE,
    TEST_KEY_ED25519_PUBLIC, TEST_KEY_RSA_PRIVATE, TEST_KEY_RSA_PSS_PUBLIC, TEST_KEY_RSA_PUBLIC,
    TEST_REQUEST_CONTENT_DIGEST,
};

const TWELVE_HOURS: Duration = Duration::from_secs(12 * 3600);

/// An owned request that lends itself out as an [`IncomingRequest`].
#[derive(Clone)]
struct TestRequest {
    method: &'static str,
    scheme: &'static str,
    path_and_query: String,
    authority: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl TestRequest {
    fn new(method: &'static str, path_and_query: &str, authority: &'static str) -> TestRequest {
        TestRequest {
            method,
            scheme: "https",
            path_and_query: path_and_query.to_owned(),
            authority,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, name: &str, value: &str) -> TestRequest {
        self.set(name, value);
        self
    }

    fn body(mut self, body: &[u8]) -> TestRequest {
        self.body = body.to_vec();
        self
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    fn parse_with(
        &self,
        now: SystemTime,
        coverage: Coverage,
    ) -> Result<ParsedSignature, SignatureError> {
        let lookup = |name: &str| {
            self.headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        };
        let req = IncomingRequest {
            method: self.method,
            scheme: self.scheme,
            path_and_query: &self.path_and_query,
            authority: self.authority,
            header: &lookup,
            body: &self.body,
        };
        ParsedSignature::parse_with(&req, now, TWELVE_HOURS, coverage)
    }

    fn parse(&self, now: SystemTime) -> Result<ParsedSignature, SignatureError> {
        self.parse_with(now, Coverage::Required)
    }
}

fn at(unix_seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_seconds)
}

/// One generated key shared by the round-trip tests (generation takes about 0.1 s).
fn test_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::generate().expect("key generation"))
}

// draft-cavage-http-signatures-12, Appendix C.

/// `Sun, 05 Jan 2014 21:31:40 GMT`, the `Date` of the draft's example request.
const CAVAGE_NOW: u64 = 1_388_957_500;

fn cavage_request(signature: &str) -> TestRequest {
    TestRequest::new("POST", "/foo?param=value&pet=dog", "example.com")
        .header("Host", "example.com")
        .header("Date", "Sun, 05 Jan 2014 21:31:40 GMT")
        .header("Content-Type", "application/json")
        .header("Digest", "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=")
        .header("Content-Length", "18")
        .header("Signature", signature)
        .body(br#"{"hello": "world"}"#)
}

#[test]
fn cavage_c1_default_test_verifies() {
    let key = PublicKey::from_pem(CAVAGE_PUBLIC_KEY).unwrap();
    let parsed =
        cavage_request(CAVAGE_C1_SIGNATURE).parse_with(at(CAVAGE_NOW), Coverage::AsSigned).unwrap();
    assert_eq!(parsed.key_id, "Test");
    assert_eq!(parsed.scheme, SignatureScheme::Cavage);
    assert_eq!(parsed.signing_string(), "date: Sun, 05 Jan 2014 21:31:40 GMT");
    parsed.verify(&key).unwrap();
}

#[test]
fn cavage_c1_in_authorization_header_verifies() {
    let mut request = cavage_request("");
    request.headers.retain(|(name, _)| name != "Signature");
    let request = request.header("Authorization", &format!("Signature {CAVAGE_C1_SIGNATURE}"));
    let parsed = request.parse_with(at(CAVAGE_NOW), Coverage::AsSigned).unwrap();
    parsed.verify(&PublicKey::from_pem(CAVAGE_PUBLIC_KEY).unwrap()).unwrap();
}

#[test]
fn cavage_c2_basic_test_verifies() {
    let key = PublicKey::from_pem(CAVAGE_PUBLIC_KEY).unwrap();
    let parsed =
        cavage_request(CAVAGE_C2_SIGNATURE).parse_with(at(CAVAGE_NOW), Coverage::AsSigned).unwrap();
    assert_eq!(
        parsed.signing_string(),
        "(request-target): post /foo?param=value&pet=dog\nhost: example.com\ndate: Sun, 05 Jan 2014 21:31:40 GMT"
    );
    parsed.verify(&key).unwrap();
}

#[test]
fn cavage_c3_all_headers_test_verifies_under_our_policy() {
    let key = PublicKey::from_pem(CAVAGE_PUBLIC_KEY).unwrap();
    let parsed = cavage_request(CAVAGE_C3_SIGNATURE).parse(at(CAVAGE_NOW)).unwrap();
    assert_eq!(
        parsed.signing_string(),
        "(request-target): post /foo?param=value&pet=dog\nhost: example.com\n\
         date: Sun, 05 Jan 2014 21:31:40 GMT\ncontent-type: application/json\n\
         digest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\ncontent-length: 18"
    );
    parsed.verify(&key).unwrap();
}

#[test]
fn cavage_vectors_that_sign_too_little_are_refused_by_policy() {
    let now = at(CAVAGE_NOW);
    assert_eq!(
        cavage_request(CAVAGE_C1_SIGNATURE).parse(now).unwrap_err(),
        SignatureError::MissingHeader("(request-target)".to_owned())
    );
    // C.2 is a POST with a body whose digest it does not sign.
    assert_eq!(
        cavage_request(CAVAGE_C2_SIGNATURE).parse(now).unwrap_err(),
        SignatureError::MissingHeader("digest".to_owned())
    );
}

#[test]
fn cavage_c3_fails_on_a_tampered_body_or_another_host() {
    let now = at(CAVAGE_NOW);
    let tampered = cavage_request(CAVAGE_C3_SIGNATURE).body(br#"{"hello": "moon"}"#);
    assert_eq!(tampered.parse(now).unwrap_err(), SignatureError::DigestMismatch);

    let mut elsewhere = cavage_request(CAVAGE_C3_SIGNATURE);
    elsewhere.authority = "other.example";
    let parsed = elsewhere.parse(now).unwrap();
    assert_eq!(
        parsed.verify(&PublicKey::from_pem(CAVAGE_PUBLIC_KEY).unwrap()),
        Err(SignatureError::Invalid)
    );
}

#[test]
fn digest_header_matches_the_published_example() {
    assert_eq!(
        digest_header(br#"{"hello": "world"}"#),
        "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
    );
}

// RFC 9421, Appendix B.2 and §4.3.

/// `created` of the B.2 examples (`Date: Tue, 20 Apr 2021 02:07:55 GMT` is two seconds later).
const RFC_NOW: u64 = 1_618_884_473;

/// `test-request` of RFC 9421 Appendix B.2, without signature headers.
fn rfc_request() -> TestRequest {
    TestRequest::new("POST", "/foo?param=Value&Pet=dog", "example.com")
        .header("Host", "example.com")
        .header("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
        .header("Content-Type", "application/json")
        .header("Content-Digest", TEST_REQUEST_CONTENT_DIGEST)
        .header("Content-Length", "18")
        .body(br#"{"hello": "world"}"#)
}

fn rfc_signed(input: &str, signature: &str) -> TestRequest {
    rfc_request().header("Signature-Input", input).header("Signature", signature)
}

#[test]
fn rfc9421_b21_minimal_rsa_pss_verifies() {
    let parsed = rfc_signed(B21_SIGNATURE_INPUT, B21_SIGNATURE)
        .parse_with(at(RFC_NOW), Coverage::AsSigned)
        .unwrap();
    assert_eq!(parsed.key_id, "test-key-rsa-pss");
    assert_eq!(parsed.scheme, SignatureScheme::Rfc9421);
    assert_eq!(
        parsed.signing_string(),
        r#""@signature-params": ();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd""#
    );
    // No `alg`: the RSA key is tried with PKCS#1 v1.5, then PSS.
    parsed.verify(&PublicKey::from_pem(TEST_KEY_RSA_PSS_PUBLIC).unwrap()).unwrap();
}

#[test]
fn rfc9421_b22_selective_components_with_query_param_verify() {
    let parsed = rfc_signed(B22_SIGNATURE_INPUT, B22_SIGNATURE)
        .parse_with(at(RFC_NOW), Coverage::AsSigned)
        .unwrap();
    assert_eq!(parsed.signing_string(), B22_BASE);
    parsed.verify(&PublicKey::from_pem(TEST_KEY_RSA_PSS_PUBLIC).unwrap()).unwrap();
}

#[test]
fn rfc9421_b23_full_coverage_verifies_under_our_policy() {
    let parsed = rfc_signed(B23_SIGNATURE_INPUT, B23_SIGNATURE).parse(at(RFC_NOW)).unwrap();
    assert_eq!(parsed.signing_string(), B23_BASE);
    parsed.verify(&PublicKey::from_pem(TEST_KEY_RSA_PSS_PUBLIC).unwrap()).unwrap();
}

#[test]
fn rfc9421_b26_ed25519_verifies() {
    let key = PublicKey::from_pem(TEST_KEY_ED25519_PUBLIC).unwrap();
    assert!(key.is_ed25519());
    let parsed = rfc_signed(B26_SIGNATURE_INPUT, B26_SIGNATURE)
        .parse_with(at(RFC_NOW), Coverage::AsSigned)
        .unwrap();
    assert_eq!(parsed.signing_string(), B26_BASE);
    parsed.verify(&key).unwrap();

    let tampered = rfc_signed(B26_SIGNATURE_INPUT, B26_SIGNATURE)
        .header("Content-Type", "text/plain")
        .parse_with(at(RFC_NOW), Coverage::AsSigned)
        .unwrap();
    assert_eq!(tampered.verify(&key), Err(SignatureError::Invalid));
    // B.2.6 signs a POST without its digest, which we do not accept in production.
    assert_eq!(
        rfc_signed(B26_SIGNATURE_INPUT, B26_SIGNATURE).parse(at(RFC_NOW)).unwrap_err(),
        SignatureError::MissingHeader("content-digest".to_owned())
    );
}

fn proxy_request() -> TestRequest {
    TestRequest::new("POST", "/foo?param=Value&Pet=dog", "origin.host.internal.example")
        .header("Host", "origin.host.internal.example")
        .header("Date", "Tue, 20 Apr 2021 02:07:56 GMT")
        .header("Content-Type", "application/json")
        .header("Content-Length", "18")
        .header("Forwarded", "for=192.0.2.123;host=example.com;proto=https")
        .header("Content-Digest", TEST_REQUEST_CONTENT_DIGEST)
        .header("Signature-Input", PROXY_SIGNATURE_INPUT)
        .header("Signature", PROXY_SIGNATURE)
        .body(br#"{"hello": "world"}"#)
}

#[test]
fn rfc9421_multiple_signatures_pick_the_supported_rsa_v1_5_one() {
    // `sig1` is ECDSA (no `alg`); `proxy_sig` names `rsa-v1_5-sha256`, so it is chosen.
    let parsed = proxy_request().parse(at(1_618_884_480 + 30)).unwrap();
    assert_eq!(parsed.key_id, "test-key-rsa");
    assert_eq!(parsed.signing_string(), PROXY_BASE);
    // test-key-rsa is published as PKCS#1 `RSA PUBLIC KEY`.
    parsed.verify(&PublicKey::from_pem(TEST_KEY_RSA_PUBLIC).unwrap()).unwrap();
    // `expires` is one minute after `created`.
    assert_eq!(proxy_request().parse(at(1_618_884_541)).unwrap_err(), SignatureError::Expired);
}

#[test]
fn pkcs1_private_key_signs_the_published_rsa_v1_5_signature() {
    // PKCS#1 v1.5 is deterministic, so our signer must reproduce RFC 9421 §4.3 byte for byte.
    let key = PrivateKey::from_pem(TEST_KEY_RSA_PRIVATE).unwrap();
    let signature = key.sign_rsa_sha256(PROXY_BASE.as_bytes());
    assert_eq!(BASE64.encode(signature), PROXY_SIGNATURE_VALUE);
}

#[test]
fn rfc9421_created_is_checked_against_the_skew() {
    let request = rfc_signed(B23_SIGNATURE_INPUT, B23_SIGNATURE);
    assert_eq!(request.parse(at(RFC_NOW + 13 * 3600)).unwrap_err(), SignatureError::Expired);
    assert_eq!(request.parse(at(RFC_NOW - 13 * 3600)).unwrap_err(), SignatureError::Expired);
}

#[test]
fn rfc9421_content_digest_is_checked_against_the_body() {
    let request = rfc_signed(B23_SIGNATURE_INPUT, B23_SIGNATURE).body(br#"{"hello": "moon"}"#);
    assert_eq!(request.parse(at(RFC_NOW)).unwrap_err(), SignatureError::DigestMismatch);
}

#[test]
fn rfc9421_unsupported_alg_is_refused() {
    let request = rfc_signed(
        r#"sig1=("@method" "@target-uri");created=1618884473;keyid="k";alg="hmac-sha256""#,
        "sig1=:AAAA:",
    );
    assert_eq!(
        request.parse_with(at(RFC_NOW), Coverage::AsSigned).unwrap_err(),
        SignatureError::UnsupportedAlgorithm("hmac-sha256".to_owned())
    );
}

#[test]
fn rfc9421_derived_components_follow_section_2_2() {
    // Values from the examples of RFC 9421 §2.2.2 (`@target-uri`), §2.2.6 (`@request-target`),
    // §2.2.8 (`@query-param`, including its encoding example) and §2.2.4 (`@scheme`).
    let mut request = TestRequest::new(
        "GET",
        "/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something",
        "www.example.com",
    )
    .header(
        "Signature-Input",
        r#"s=("@target-uri" "@request-target" "@scheme" "@query-param";name="var" "@query-param";name="bar" "@query-param";name="fa%C3%A7ade%22%3A%20");created=1618884473;keyid="k""#,
    )
    .header("Signature", "s=:AAAA:");
    request.scheme = "https";
    let parsed = request.parse_with(at(RFC_NOW), Coverage::AsSigned).unwrap();
    let lines: Vec<&str> = parsed.signing_string().lines().collect();
    assert_eq!(
        lines[..6],
        [
            "\"@target-uri\": https://www.example.com/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something",
            "\"@request-target\": /parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something",
            "\"@scheme\": https",
            "\"@query-param\";name=\"var\": this%20is%20a%20big%0Amultiline%20value",
            "\"@query-param\";name=\"bar\": with%20plus%20whitespace",
            "\"@query-param\";name=\"fa%C3%A7ade%22%3A%20\": something",
        ]
    );
}

// Round trips through our signer.

fn inbox_url() -> Url {
    Url::parse("https://remote.example/users/bob/inbox").unwrap()
}

/// A request as the node would receive what `sign_request` produced.
fn signed_post(key: &PrivateKey, body: &[u8], now: SystemTime) -> TestRequest {
    let url = inbox_url();
    let signed = sign_request(
        "POST",
        &url,
        Some(body),
        "https://local.example/users/alice#main-key",
        key,
        now,
    );
    TestRequest::new("POST", url.path(), "remote.example")
        .header("Host", &signed.host)
        .header("Date", &signed.date)
        .header("Digest", signed.digest.as_deref().unwrap())
        .header("Content-Type", "application/activity+json")
        .header("Signature", &signed.signature)
        .body(body)
}

const NOTE: &[u8] = br#"{"@context":"https://www.w3.org/ns/activitystreams","type":"Create","actor":"https://local.example/users/alice","object":{"type":"Note","content":"hello"}}"#;

#[test]
fn sign_request_round_trips() {
    let key = test_key();
    let now = SystemTime::now();
    let request = signed_post(key, NOTE, now);
    let parsed = request.parse(now).unwrap();
    assert_eq!(parsed.key_id, "https://local.example/users/alice#main-key");
    assert!(
        parsed
            .signing_string()
            .starts_with("(request-target): post /users/bob/inbox\nhost: remote.example\n")
    );
    parsed.verify(&key.public_key()).unwrap();
    parsed.verify(&PublicKey::from_pem(&key.public_key_pem()).unwrap()).unwrap();
}

#[test]
fn sign_request_get_round_trips() {
    let key = test_key();
    let now = SystemTime::now();
    let url = Url::parse("http://127.0.0.1:8081/users/bob?page=1").unwrap();
    let signed = sign_request("GET", &url, None, "https://local.example/actor#main-key", key, now);
    assert_eq!(signed.host, "127.0.0.1:8081");
    assert_eq!(signed.digest, None);
    assert!(
        signed
            .signature
            .contains(r#"algorithm="rsa-sha256",headers="(request-target) host date","#)
    );
    let request = TestRequest::new("GET", "/users/bob?page=1", "127.0.0.1:8081")
        .header("Host", &signed.host)
        .header("Date", &signed.date)
        .header("Signature", &signed.signature);
    request.parse(now).unwrap().verify(&key.public_key()).unwrap();
}

#[test]
fn tampered_body_is_a_digest_mismatch() {
    let now = SystemTime::now();
    let request = signed_post(test_key(), NOTE, now).body(br#"{"type":"Delete"}"#);
    assert_eq!(request.parse(now).unwrap_err(), SignatureError::DigestMismatch);
}

#[test]
fn tampered_digest_header_does_not_verify() {
    let now = SystemTime::now();
    let body = br#"{"type":"Delete"}"#;
    let request =
        signed_post(test_key(), NOTE, now).body(body).header("Digest", &digest_header(body));
    let parsed = request.parse(now).unwrap();
    assert_eq!(parsed.verify(&test_key().public_key()), Err(SignatureError::Invalid));
}

#[test]
fn wrong_key_is_invalid() {
    let now = SystemTime::now();
    let parsed = signed_post(test_key(), NOTE, now).parse(now).unwrap();
    let other = PublicKey::from_pem(TEST_KEY_RSA_PSS_PUBLIC).unwrap();
    assert_eq!(parsed.verify(&other), Err(SignatureError::Invalid));
    let ed25519 = PublicKey::from_pem(TEST_KEY_ED25519_PUBLIC).unwrap();
    assert!(matches!(parsed.verify(&ed25519), Err(SignatureError::BadKey(_))));
}

#[test]
fn dates_beyond_the_skew_are_expired() {
    let now = SystemTime::now();
    let old = signed_post(test_key(), NOTE, now - Duration::from_secs(13 * 3600));
    assert_eq!(old.parse(now).unwrap_err(), SignatureError::Expired);
    let future = signed_post(test_key(), NOTE, now + Duration::from_secs(13 * 3600));
    assert_eq!(future.parse(now).unwrap_err(), SignatureError::Expired);
    let recent = signed_post(test_key(), NOTE, now - Duration::from_secs(11 * 3600));
    recent.parse(now).unwrap().verify(&test_key().public_key()).unwrap();
}

/// Signs `headers` of `request` the way a remote server would, with our key.
fn sign_as(request: TestRequest, algorithm: &str, headers: &str) -> TestRequest {
    let lookup = |name: &str| match name {
        "(request-target)" => format!("post {}", request.path_and_query),
        "host" => request.authority.to_owned(),
        name => request
            .headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.clone())
            .unwrap(),
    };
    let signing_string: Vec<String> =
        headers.split(' ').map(|name| format!("{name}: {}", lookup(name))).collect();
    let signature = BASE64.encode(test_key().sign_rsa_sha256(signing_string.join("\n").as_bytes()));
    let value = format!(
        r#"keyId="https://mastodon.example/users/alice#main-key",algorithm="{algorithm}",headers="{headers}",signature="{signature}""#
    );
    request.header("Signature", &value)
}

fn mastodon_post(now: SystemTime) -> TestRequest {
    TestRequest::new("POST", "/users/bob/inbox", "ferry.example")
        .header("Host", "ferry.example")
        .header("Date", &httpdate::fmt_http_date(now))
        .header("Digest", &digest_header(NOTE))
        .header("Content-Type", "application/activity+json")
        .header("User-Agent", "http.rb/5.1.1 (Mastodon/4.3.0; +https://mastodon.example/)")
        .body(NOTE)
}

#[test]
fn mastodon_shaped_request_verifies() {
    // Mastodon signs `(request-target) host date digest content-type` on POST.
    let now = SystemTime::now();
    let headers = "(request-target) host date digest content-type";
    for algorithm in ["rsa-sha256", "hs2019"] {
        let request = sign_as(mastodon_post(now), algorithm, headers);
        let parsed = request.parse(now).unwrap();
        assert_eq!(parsed.key_id, "https://mastodon.example/users/alice#main-key");
        parsed.verify(&PublicKey::from_pem(&test_key().public_key_pem()).unwrap()).unwrap();
    }
}

#[test]
fn post_without_signed_digest_is_refused() {
    let now = SystemTime::now();
    let request = sign_as(mastodon_post(now), "rsa-sha256", "(request-target) host date");
    assert_eq!(request.parse(now).unwrap_err(), SignatureError::MissingHeader("digest".to_owned()));
}

#[test]
fn signed_headers_must_be_present() {
    let now = SystemTime::now();
    let mut request =
        sign_as(mastodon_post(now), "rsa-sha256", "(request-target) host date digest content-type");
    request.headers.retain(|(name, _)| name != "Content-Type");
    assert_eq!(
        request.parse(now).unwrap_err(),
        SignatureError::MissingHeader("content-type".to_owned())
    );
}

#[test]
fn unknown_algorithms_and_missing_signatures_are_refused() {
    let now = SystemTime::now();
    let request = sign_as(mastodon_post(now), "rsa-sha1", "(request-target) host date digest");
    assert_eq!(
        request.parse(now).unwrap_err(),
        SignatureError::UnsupportedAlgorithm("rsa-sha1".to_owned())
    );
    assert_eq!(mastodon_post(now).parse(now).unwrap_err(), SignatureError::Missing);
    let garbled = mastodon_post(now).header("Signature", "keyId=\"k\",signature=\"not base64!\"");
    assert!(matches!(garbled.parse(now), Err(SignatureError::Malformed(_))));
}

// Keys.

#[test]
fn spki_and_pkcs1_public_pems_both_parse_and_verify() {
    let key = test_key();
    let spki_pem = key.public_key_pem();
    assert!(spki_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(spki_pem.ends_with("-----END PUBLIC KEY-----\n"));
    // An RSA-2048 SPKI is a fixed 24-byte header around the PKCS#1 `RSAPublicKey`.
    let (_, spki) = pem::decode(&spki_pem).unwrap();
    let pkcs1_pem = pem::encode("RSA PUBLIC KEY", &spki[24..]);

    let signature = key.sign_rsa_sha256(b"data");
    for pem_text in [&spki_pem, &pkcs1_pem] {
        let public = PublicKey::from_pem(pem_text).unwrap();
        assert!(!public.is_ed25519());
        public.verify_rsa_sha256(b"data", &signature).unwrap();
        assert_eq!(public.verify_rsa_sha256(b"other", &signature), Err(SignatureError::Invalid));
    }
}

#[test]
fn generated_key_round_trips_through_pem() {
    let key = PrivateKey::generate().unwrap();
    let pem_text = key.to_pem();
    assert!(pem_text.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let parsed = PrivateKey::from_pem(&pem_text).unwrap();
    assert_eq!(parsed.to_pem(), pem_text);
    assert_eq!(parsed.public_key_pem(), key.public_key_pem());
    // PKCS#1 v1.5 signatures are deterministic, so equal keys sign equally.
    assert_eq!(parsed.sign_rsa_sha256(b"data"), key.sign_rsa_sha256(b"data"));
    assert_eq!(format!("{key:?}"), "PrivateKey { bits: 2048 }");
}

#[test]
fn bad_pems_are_refused() {
    for text in ["", "not a key", "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----\n"] {
        assert!(matches!(PublicKey::from_pem(text), Err(SignatureError::BadKey(_))), "{text:?}");
    }
    let certificate = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(matches!(PublicKey::from_pem(certificate), Err(SignatureError::BadKey(_))));
    assert!(matches!(PrivateKey::from_pem(TEST_KEY_RSA_PUBLIC), Err(SignatureError::BadKey(_))));
}

#[test]
fn host_header_omits_default_ports_only() {
    let host = |url: &str| host_header(&Url::parse(url).unwrap());
    assert_eq!(host("https://example.com/inbox"), "example.com");
    assert_eq!(host("https://example.com:443/inbox"), "example.com");
    assert_eq!(host("http://127.0.0.1:8081/inbox"), "127.0.0.1:8081");
    assert_eq!(host("https://example.com:8443/"), "example.com:8443");
    assert_eq!(host("http://[::1]:3000/"), "[::1]:3000");
}

#[test]
fn private_keys_under_2048_bits_are_refused() {
    // The draft-cavage test key verifies (above) but must never be used to sign.
    assert_eq!(
        PrivateKey::from_pem(CAVAGE_PRIVATE_KEY).unwrap_err(),
        SignatureError::BadKey("invalid RSA private key: TooSmall".to_owned())
    );
}
