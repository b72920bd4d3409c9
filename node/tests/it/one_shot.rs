//! `federation::one_shot`, the one-shot delivery client, against real servers on 127.0.0.1:
//! TLS with a certificate authority and a server certificate that the `openssl` command makes
//! for each run (nothing here can reach a public CA), served by rustls.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use activitypub_federation::resolver::ValidatingDnsResolver;
use ferry_node::federation::dns::CachingResolver;
use ferry_node::federation::one_shot::{OneShotClient, SendError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use url::Url;

const OPENSSL_CONFIG: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = Ferry test CA
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command (.ci/run installs it)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A test CA, and a certificate for `localhost` (only) signed by it: (CA, leaf, leaf's key).
fn certificates(
    dir: &Path,
) -> (CertificateDer<'static>, CertificateDer<'static>, PrivateKeyDer<'static>) {
    std::fs::write(dir.join("openssl.cnf"), OPENSSL_CONFIG).expect("openssl.cnf written");
    let key = ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out"];
    openssl(dir, &[&key[..], &["ca.key"]].concat());
    openssl(dir, &[&key[..], &["leaf.key"]].concat());
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-config",
            "openssl.cnf",
            "-extensions",
            "ca",
            "-days",
            "2",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            "leaf.key",
            "-config",
            "openssl.cnf",
            "-subj",
            "/CN=localhost",
            "-out",
            "leaf.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "leaf",
            "-out",
            "leaf.pem",
        ],
    );
    let read = |name: &str| std::fs::read(dir.join(name)).expect("openssl wrote it");
    (
        CertificateDer::from_pem_slice(&read("ca.pem")).expect("CA certificate"),
        CertificateDer::from_pem_slice(&read("leaf.pem")).expect("server certificate"),
        PrivateKeyDer::from_pem_slice(&read("leaf.key")).expect("server key"),
    )
}

/// What a test server saw: the request's head and body.
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// Serves one connection on `listener`: reads a request (head, then `Content-Length` bytes),
/// answers `answer`, and reports the request (None when the connection failed first, as when
/// the client refuses the certificate).
async fn serve_one<S>(stream: S, answer: &'static str) -> Option<Seen>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut stream = stream;
    let mut buf = Vec::new();
    let end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8(buf[..end].to_vec()).expect("a UTF-8 head");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map(|v| v.parse().expect("a numeric Content-Length"))
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    stream.write_all(answer.as_bytes()).await.ok()?;
    let _ = stream.shutdown().await;
    Some(Seen { head, body })
}

/// A TLS server on 127.0.0.1 for one connection; its port, and what it saw.
async fn tls_server(
    leaf: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    answer: &'static str,
) -> (u16, oneshot::Receiver<Option<Seen>>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf], key)
        .expect("server certificate and key");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = listener.local_addr().expect("bound").port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("a connection");
        let seen = match acceptor.accept(tcp).await {
            Ok(tls) => serve_one(tls, answer).await,
            Err(_) => None,
        };
        let _ = tx.send(seen);
    });
    (port, rx)
}

fn client(dev: bool, roots: Vec<CertificateDer<'static>>, timeout: Duration) -> OneShotClient {
    let resolver = CachingResolver::new(ValidatingDnsResolver::new(Vec::new(), !dev));
    OneShotClient::new(resolver, roots, timeout).expect("client")
}

const BODY: &[u8] = br#"{"type":"Create","id":"https://a.example/1"}"#;

const HEADERS: &[(&str, &str)] = &[
    ("Content-Type", "application/activity+json"),
    ("Date", "Mon, 07 Dec 2026 02:00:00 GMT"),
    ("Signature", "keyId=\"k\",signature=\"s\""),
];

#[tokio::test]
async fn a_delivery_over_tls_reaches_a_server_signed_by_a_trusted_authority() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf, key) = certificates(dir.path());
    let (port, seen) = tls_server(
        leaf,
        key,
        "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .await;
    let url = Url::parse(&format!("https://localhost:{port}/users/bob/inbox?via=test")).unwrap();
    let host = format!("localhost:{port}");
    let answer =
        client(true, vec![ca], Duration::from_secs(10)).post(&url, HEADERS, BODY).await.unwrap();
    assert_eq!(answer.status, 202);
    let seen = seen.await.unwrap().expect("the server got the request");
    assert!(seen.head.starts_with("POST /users/bob/inbox?via=test HTTP/1.1\r\n"), "{}", seen.head);
    for line in [
        format!("Host: {host}"),
        "Connection: close".to_owned(),
        format!("Content-Length: {}", BODY.len()),
        "Signature: keyId=\"k\",signature=\"s\"".to_owned(),
        "Content-Type: application/activity+json".to_owned(),
    ] {
        assert!(seen.head.contains(&format!("\r\n{line}\r\n")), "{line} missing: {}", seen.head);
    }
    assert_eq!(seen.body, BODY);
}

#[tokio::test]
async fn a_throttled_answer_over_tls_carries_its_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, leaf, key) = certificates(dir.path());
    let (port, seen) = tls_server(
        leaf,
        key,
        "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nslow\r\n0\r\n\r\n",
    )
    .await;
    let url = Url::parse(&format!("https://localhost:{port}/inbox")).unwrap();
    let answer =
        client(true, vec![ca], Duration::from_secs(10)).post(&url, HEADERS, BODY).await.unwrap();
    assert_eq!(answer.status, 429);
    assert_eq!(answer.retry_after.as_deref(), Some("30"));
    assert!(seen.await.unwrap().is_some());
}

/// A delivery to a TLS server with the test certificate (for `localhost`), at `host`, trusting
/// the test CA or not: refused in the handshake, with nothing sent.
async fn refused_in_the_handshake(host: &str, trust_the_ca: bool) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (ca, leaf, key) = certificates(dir.path());
    let (port, seen) = tls_server(leaf, key, "HTTP/1.1 202 Accepted\r\n\r\n").await;
    let url = Url::parse(&format!("https://{host}:{port}/inbox")).expect("a URL");
    let roots = if trust_the_ca { vec![ca] } else { Vec::new() };
    let result = client(true, roots, Duration::from_secs(10)).post(&url, HEADERS, BODY).await;
    assert!(matches!(result, Err(SendError::Tls { .. })), "{result:?}");
    assert!(seen.await.expect("the server reports").is_none(), "the request went out");
}

#[tokio::test]
async fn a_server_without_a_trusted_certificate_gets_nothing() {
    // Only the platform's roots: the test CA is not among them.
    refused_in_the_handshake("localhost", false).await;
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused() {
    // The certificate names localhost, not the address.
    refused_in_the_handshake("127.0.0.1", true).await;
}

#[tokio::test]
async fn loopback_names_are_refused_outside_dev_mode() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = Url::parse(&format!("https://localhost:{port}/inbox")).unwrap();
    let result = client(false, Vec::new(), Duration::from_secs(10)).post(&url, HEADERS, BODY).await;
    assert!(matches!(result, Err(SendError::Resolve { .. })), "{result:?}");
    let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
    assert!(accepted.is_err(), "the client connected");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    // Accepts and reads, never answers.
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    });
    let url = Url::parse(&format!("http://127.0.0.1:{port}/inbox")).unwrap();
    let result =
        client(true, Vec::new(), Duration::from_millis(300)).post(&url, HEADERS, BODY).await;
    assert!(matches!(result, Err(SendError::TimedOut(_))), "{result:?}");
    server.abort();
}

#[tokio::test]
async fn a_plain_http_delivery_reads_an_answer_that_keeps_the_connection_open() {
    // A server that ignores `Connection: close`: the answer is taken from its head and
    // length, without waiting for the connection to end.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut stream = stream;
        let mut request = Vec::new();
        let mut buf = vec![0u8; 8192];
        while !request.ends_with(BODY) {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the request ended early");
            request.extend_from_slice(&buf[..n]);
        }
        stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}").await.unwrap();
        // Hold the connection until the client closes it.
        let closed = stream.read(&mut buf).await.map(|n| n == 0).unwrap_or(true);
        let _ = tx.send(closed);
    });
    let url = Url::parse(&format!("http://127.0.0.1:{port}/inbox")).unwrap();
    let answer =
        client(true, Vec::new(), Duration::from_secs(30)).post(&url, HEADERS, BODY).await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(rx.await.unwrap(), "the client did not close the connection");
}
