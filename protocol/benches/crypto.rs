//! Single-thread throughput of `ferry_protocol::signatures`: the crate's own calibration
//! figures (performance.md §0.1 and §10 ask every benchmark to report against them).
//!
//! Run with `cargo bench -p ferry-protocol --bench crypto`. Each operation runs for about two
//! seconds on one thread; an optional argument runs only the operations whose name contains it.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

use ferry_protocol::signatures::{
    IncomingRequest, ParsedSignature, PrivateKey, PublicKey, sign_request,
};
use url::Url;

const BUDGET: Duration = Duration::from_secs(2);
const MAX_SKEW: Duration = Duration::from_secs(12 * 3600);

fn main() {
    // `cargo bench` passes `--bench`; any other argument is a name filter.
    let filter = std::env::args().skip(1).find(|arg| !arg.starts_with('-')).unwrap_or_default();
    let run = |name: &str, op: &mut dyn FnMut()| {
        if name.contains(&filter) {
            measure(name, op);
        }
    };

    let key = PrivateKey::generate().expect("key generation");
    let public_pem = key.public_key_pem();
    let public = PublicKey::from_pem(&public_pem).expect("our own public key parses");
    let body = activity();
    let url = Url::parse("https://remote.example/users/bob/inbox").expect("valid URL");
    let key_id = "https://local.example/users/alice#main-key";
    let now = SystemTime::now();

    // A signing string of the size `sign_request` produces for a POST.
    let signed = sign_request("POST", &url, Some(&body), key_id, &key, now);
    let signing_string = format!(
        "(request-target): post {}\nhost: {}\ndate: {}\ndigest: {}",
        url.path(),
        signed.host,
        signed.date,
        signed.digest.as_deref().unwrap_or_default()
    );
    let signature = key.sign_rsa_sha256(signing_string.as_bytes());

    println!("ferry-protocol signatures, one thread, RSA-2048, {}-byte body", body.len());
    run("rsa-2048 sign (sign_rsa_sha256)", &mut || {
        black_box(key.sign_rsa_sha256(black_box(signing_string.as_bytes())));
    });
    run("rsa-2048 verify, pre-parsed key", &mut || {
        public
            .verify_rsa_sha256(black_box(signing_string.as_bytes()), black_box(&signature))
            .expect("valid signature");
    });
    run("rsa-2048 verify, key parsed from PEM each time", &mut || {
        let public = PublicKey::from_pem(black_box(&public_pem)).expect("valid key");
        public.verify_rsa_sha256(signing_string.as_bytes(), &signature).expect("valid signature");
    });
    run("sign_request (POST with digest)", &mut || {
        black_box(sign_request("POST", &url, Some(black_box(&body)), key_id, &key, now));
    });

    let lookup = |name: &str| match name {
        "host" => Some(signed.host.as_str()),
        "date" => Some(signed.date.as_str()),
        "digest" => signed.digest.as_deref(),
        "signature" => Some(signed.signature.as_str()),
        "content-type" => Some("application/activity+json"),
        _ => None,
    };
    let request = IncomingRequest {
        method: "POST",
        scheme: "https",
        path_and_query: url.path(),
        authority: "remote.example",
        header: &lookup,
        body: &body,
    };
    run("ParsedSignature::parse + verify", &mut || {
        let parsed = ParsedSignature::parse(black_box(&request), now, MAX_SKEW).expect("parses");
        parsed.verify(&public).expect("verifies");
    });
    run("ParsedSignature::parse only", &mut || {
        black_box(ParsedSignature::parse(black_box(&request), now, MAX_SKEW).expect("parses"));
    });
    run("rsa-2048 key generation", &mut || {
        black_box(PrivateKey::generate().expect("key generation"));
    });
}

/// Runs `op` for about [`BUDGET`] and prints its rate.
fn measure(name: &str, op: &mut dyn FnMut()) {
    op();
    let start = Instant::now();
    let mut count: u32 = 0;
    while start.elapsed() < BUDGET {
        op();
        count += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let rate = f64::from(count) / elapsed;
    let micros = elapsed * 1e6 / f64::from(count);
    println!("{name:<48} {rate:>10.0} /s {micros:>10.1} µs/op  ({count} in {elapsed:.2} s)");
}

/// A Mastodon-sized `Create(Note)`, about 1 KB.
fn activity() -> Vec<u8> {
    let content = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(8);
    format!(
        r#"{{"@context":["https://www.w3.org/ns/activitystreams",{{"sensitive":"as:sensitive"}}],"id":"https://local.example/users/alice/statuses/1/activity","type":"Create","actor":"https://local.example/users/alice","published":"2024-05-01T12:00:00Z","to":["https://www.w3.org/ns/activitystreams#Public"],"cc":["https://local.example/users/alice/followers"],"object":{{"id":"https://local.example/users/alice/statuses/1","type":"Note","attributedTo":"https://local.example/users/alice","content":"<p>{content}</p>","to":["https://www.w3.org/ns/activitystreams#Public"],"cc":["https://local.example/users/alice/followers"],"sensitive":false}}}}"#
    )
    .into_bytes()
}
