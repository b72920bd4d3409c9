//! One-shot deliveries: a signed POST on a fresh connection that closes after the answer.
//!
//! Most of a fan-out sends one delivery to each server. A pooled client (reqwest over hyper)
//! drives each connection as a task of its own behind its connector and pool; for a single
//! request that machinery cost about 110 µs of CPU per exchange more than writing the request
//! and reading the answer's head (docs/benchmarks.md, sessions 21 and 22), some 8 % of a
//! delivery. This client does only what a one-shot delivery needs: resolve through the same
//! validating DNS cache, connect, TLS (rustls with the platform's roots, as reqwest has), write
//! the request at once, read the status line and headers, drain a short body, close.

use std::io;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use activitypub_federation::resolver::ValidatingDnsResolver;
use ferry_protocol::signatures::host_header;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use reqwest::dns::{Name, Resolve};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use url::{Host, Position, Url};

use super::dns::CachingResolver;

/// The most an answer's status line and headers may take.
const MAX_HEAD: usize = 16 * 1024;

/// Headers an answer may have (nginx, a CDN and the server's own add up to thirty or so).
const MAX_HEADERS: usize = 96;

/// How much of an answer's body is read before closing, and for how long. The status decides
/// the delivery; reading a short body (most inboxes send none) lets the connection close
/// cleanly, while a long or slow one is cut off instead of holding a delivery slot.
const DRAIN_BYTES: usize = 64 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// What a delivery needs from the answer.
#[derive(Debug)]
pub struct Answer {
    pub status: http::StatusCode,
    pub retry_after: Option<String>,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("resolving {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("connecting to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("TLS with {host}: {source}")]
    Tls { host: String, source: io::Error },
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
    #[error("malformed answer: {0}")]
    Malformed(String),
    #[error("cannot send to {0}")]
    BadUrl(String),
}

/// The client; cheap to share (its TLS configuration keeps sessions for resumption).
pub struct OneShotClient {
    resolver: CachingResolver<ValidatingDnsResolver>,
    tls: TlsConnector,
    timeout: Duration,
}

/// How long one address may take to accept a connection (both delivery clients).
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the answer's body is delimited.
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

impl OneShotClient {
    /// A client that trusts the platform's roots and `extra_roots` (tests add their own CA).
    /// `resolver` refuses private addresses outside dev mode; IP literals are the caller's to
    /// check (`client::check_target`), as they are never resolved.
    pub fn new(
        resolver: CachingResolver<ValidatingDnsResolver>,
        extra_roots: Vec<CertificateDer<'static>>,
        timeout: Duration,
    ) -> Result<OneShotClient, rustls::Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // With no extra roots this is `Verifier::new`: the platform's roots alone.
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            extra_roots,
            provider.clone(),
        )?;
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(OneShotClient { resolver, tls: TlsConnector::from(Arc::new(tls)), timeout })
    }

    /// POSTs `body` to `url` with `headers` (values come from the signer and never hold line
    /// breaks). Adds `Host` (as the signer writes it, `host_header`), `User-Agent`,
    /// `Content-Length` and `Connection: close`. The whole exchange up to the answer's head is
    /// bounded by the client's timeout; what comes after cannot change the answer.
    pub async fn post(
        &self,
        url: &Url,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Answer, SendError> {
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(SendError::BadUrl(url.to_string())),
        };
        let request = encode(url, headers, body)?;
        let deadline = Instant::now() + self.timeout;
        let within = |_| SendError::TimedOut(self.timeout);
        let tcp = tokio::time::timeout_at(deadline, self.connect(url)).await.map_err(within)??;
        if !tls {
            return exchange(tcp, &request, deadline, self.timeout, false).await;
        }
        let host = url.host_str().unwrap_or_default();
        let stream = tokio::time::timeout_at(deadline, self.tls.connect(server_name(url)?, tcp))
            .await
            .map_err(within)?
            .map_err(|source| SendError::Tls { host: host.to_owned(), source })?;
        exchange(stream, &request, deadline, self.timeout, true).await
    }

    /// A connection to the first of the server's addresses that answers.
    async fn connect(&self, url: &Url) -> Result<TcpStream, SendError> {
        let port = url.port_or_known_default().ok_or_else(|| SendError::BadUrl(url.to_string()))?;
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
            Some(Host::Domain(domain)) => {
                let fail = |reason: String| SendError::Resolve { host: domain.to_owned(), reason };
                let name = Name::from_str(domain).map_err(|e| fail(e.to_string()))?;
                let addrs = self.resolver.resolve(name).await.map_err(|e| fail(e.to_string()))?;
                addrs.map(|addr| SocketAddr::new(addr.ip(), port)).collect()
            }
            None => return Err(SendError::BadUrl(url.to_string())),
        };
        if addrs.is_empty() {
            return Err(SendError::Resolve {
                host: url.host_str().unwrap_or_default().to_owned(),
                reason: "no addresses".to_owned(),
            });
        }
        let stream = connect_any(interleave(addrs), CONNECT_TIMEOUT)
            .await
            .map_err(|(addr, source)| SendError::Connect { addr: addr.to_string(), source })?;
        // The request goes in one write; the TLS handshake's last flight should not wait for
        // an acknowledgement either.
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// How long an attempt to connect runs alone before the next address is tried beside it: a
/// server whose IPv6 address swallows packets is reached over IPv4 after this, not after
/// `CONNECT_TIMEOUT` (RFC 8305's "happy eyeballs", as reqwest's connector does).
const NEXT_ADDRESS_AFTER: Duration = Duration::from_millis(250);

/// The first of `addrs` to accept a connection; attempts start `NEXT_ADDRESS_AFTER` apart, or
/// at once when the previous one fails, each bounded by `timeout`. The error is the last one.
async fn connect_any(
    addrs: Vec<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream, (SocketAddr, io::Error)> {
    let attempt = |addr: SocketAddr| async move {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(result) => (addr, result),
            Err(_) => (addr, Err(io::ErrorKind::TimedOut.into())),
        }
    };
    let mut addrs = addrs.into_iter();
    let first = addrs.next().expect("connect_any needs an address");
    if addrs.len() == 0 {
        // One address, most servers: no stagger to run.
        let (addr, result) = attempt(first).await;
        return result.map_err(|e| (addr, e));
    }
    let mut running = FuturesUnordered::new();
    running.push(attempt(first));
    let mut last: (SocketAddr, io::Error);
    loop {
        let more = addrs.len() > 0;
        tokio::select! {
            Some((addr, result)) = running.next() => match result {
                Ok(stream) => return Ok(stream),
                Err(e) => {
                    last = (addr, e);
                    if let Some(next) = addrs.next() {
                        running.push(attempt(next));
                    } else if running.is_empty() {
                        break;
                    }
                }
            },
            () = tokio::time::sleep(NEXT_ADDRESS_AFTER), if more => {
                if let Some(next) = addrs.next() {
                    running.push(attempt(next));
                }
            }
        }
    }
    Err(last)
}

/// The addresses with the families taking turns, starting with the resolver's first choice, so
/// the second attempt is over the other family.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    if addrs.len() < 2 {
        return addrs;
    }
    let first_v6 = addrs[0].is_ipv6();
    let len = addrs.len();
    let (preferred, other): (Vec<_>, Vec<_>) =
        addrs.into_iter().partition(|a| a.is_ipv6() == first_v6);
    let (mut preferred, mut other) = (preferred.into_iter(), other.into_iter());
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        out.extend(preferred.next());
        out.extend(other.next());
    }
    out
}

fn server_name(url: &Url) -> Result<ServerName<'static>, SendError> {
    let bad = || SendError::BadUrl(url.to_string());
    match url.host().ok_or_else(bad)? {
        Host::Domain(domain) => ServerName::try_from(domain.to_owned()).map_err(|_| bad()),
        Host::Ipv4(ip) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(ip).into())),
        Host::Ipv6(ip) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(ip).into())),
    }
}

/// The request's bytes: head and body in one buffer, so they go out in one write.
fn encode(url: &Url, headers: &[(&str, &str)], body: &[u8]) -> Result<Vec<u8>, SendError> {
    let target = &url[Position::BeforePath..Position::AfterQuery];
    let mut out = Vec::with_capacity(512 + body.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host_header(url).as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if value.bytes().any(|b| b == b'\r' || b == b'\n') {
            return Err(SendError::BadUrl(format!("header {name} holds a line break")));
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"User-Agent: ");
    out.extend_from_slice(super::client::USER_AGENT.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b"Connection: close\r\nContent-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

/// Writes the request, reads the answer's head before `deadline`, then drains a short body
/// and closes (with TLS's close_notify when `tls`).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
    deadline: Instant,
    timeout: Duration,
    tls: bool,
) -> Result<Answer, SendError> {
    let head = async {
        stream.write_all(request).await?;
        stream.flush().await?;
        read_head(&mut stream).await
    };
    let (answer, framing, buffered) = tokio::time::timeout_at(deadline, head)
        .await
        .map_err(|_| SendError::TimedOut(timeout))??;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        drain(&mut stream, framing, buffered).await;
        if tls {
            let _ = stream.shutdown().await;
        }
    })
    .await;
    Ok(answer)
}

/// Reads up to the end of the answer's head (skipping interim 1xx answers); returns it, how
/// its body is framed, and the body bytes read with it.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Answer, Framing, Vec<u8>), SendError> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    // Whether `buf` may hold a whole head: after an interim answer, the next may be there too.
    let mut parse_first = false;
    loop {
        if !std::mem::take(&mut parse_first) {
            if buf.len() >= MAX_HEAD {
                return Err(SendError::Malformed(format!("head longer than {MAX_HEAD} bytes")));
            }
            buf.reserve(1024);
            if stream.read_buf(&mut buf).await? == 0 {
                return Err(SendError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the answer",
                )));
            }
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        let len = match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => continue,
            Err(e) => return Err(SendError::Malformed(e.to_string())),
        };
        let code = response.code.unwrap_or_default();
        let status = http::StatusCode::from_u16(code)
            .map_err(|_| SendError::Malformed(format!("status {code}")))?;
        if status.is_informational() {
            buf.drain(..len);
            parse_first = !buf.is_empty();
            continue;
        }
        let header = |name: &str| {
            response
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .and_then(|h| std::str::from_utf8(h.value).ok())
                .map(str::trim)
        };
        let retry_after = header("retry-after").map(str::to_owned);
        let framing =
            if status == http::StatusCode::NO_CONTENT || status == http::StatusCode::NOT_MODIFIED {
                Framing::Empty
            } else if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
                Framing::Chunked
            } else if let Some(length) = header("content-length") {
                length
                    .parse()
                    .map(Framing::Length)
                    .map_err(|_| SendError::Malformed(format!("Content-Length {length}")))?
            } else {
                Framing::UntilClose
            };
        buf.drain(..len);
        return Ok((Answer { status, retry_after }, framing, buf));
    }
}

/// Reads what is left of a short body, so the connection ends cleanly; errors do not matter.
async fn drain<S: AsyncRead + Unpin>(stream: &mut S, framing: Framing, mut body: Vec<u8>) {
    let done = |body: &[u8]| match framing {
        Framing::Empty => true,
        Framing::Length(n) => body.len() >= n || n > DRAIN_BYTES,
        // The last chunk; trailers are rare on an inbox's answer and only cut the drain short.
        Framing::Chunked => body.ends_with(b"0\r\n\r\n"),
        Framing::UntilClose => false,
    };
    while !done(&body) && body.len() < DRAIN_BYTES {
        body.reserve(4096);
        match stream.read_buf(&mut body).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn head(bytes: &[u8]) -> Result<(Answer, Framing, Vec<u8>), SendError> {
        read_head(&mut &bytes[..]).await
    }

    #[tokio::test]
    async fn the_head_gives_status_retry_after_and_framing() {
        let (answer, framing, rest) =
            head(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After:  30 \r\nContent-Length: 5\r\n\r\nslow!")
                .await
                .unwrap();
        assert_eq!(answer.status, 429);
        assert_eq!(answer.retry_after.as_deref(), Some("30"));
        assert!(matches!(framing, Framing::Length(5)));
        assert_eq!(rest, b"slow!");

        let (answer, framing, _) =
            head(b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
                .await
                .unwrap();
        assert_eq!(answer.status, 202);
        assert!(answer.retry_after.is_none());
        assert!(matches!(framing, Framing::Chunked));

        let (_, framing, _) = head(b"HTTP/1.1 200 OK\r\n\r\n").await.unwrap();
        assert!(matches!(framing, Framing::UntilClose));
        let (_, framing, _) = head(b"HTTP/1.1 204 No Content\r\n\r\n").await.unwrap();
        assert!(matches!(framing, Framing::Empty));
    }

    #[tokio::test]
    async fn interim_answers_are_skipped() {
        let (answer, _, rest) = head(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 201);
        assert_eq!(rest, b"{}");
    }

    #[tokio::test]
    async fn a_head_in_small_pieces_is_read_whole() {
        let (mut writer, mut reader) = tokio::io::duplex(3);
        let sender = tokio::spawn(async move {
            writer.write_all(b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\n\r\n").await.unwrap();
        });
        let (answer, _, _) = read_head(&mut reader).await.unwrap();
        sender.await.unwrap();
        assert_eq!(answer.status, 503);
        assert_eq!(answer.retry_after.as_deref(), Some("7"));
    }

    #[tokio::test]
    async fn broken_answers_are_errors() {
        for bad in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/1.1 2000 Huge\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Le",
            b"",
        ] {
            let result = head(bad).await;
            assert!(result.is_err(), "{:?} was taken", String::from_utf8_lossy(bad));
        }
        let endless = [b"HTTP/1.1 200 OK\r\n".as_slice(), &[b'X'; MAX_HEAD + 10]].concat();
        assert!(matches!(head(&endless).await, Err(SendError::Malformed(_))));
        let many_headers =
            [b"HTTP/1.1 200 OK\r\n".as_slice(), &b"A: b\r\n".repeat(MAX_HEADERS + 1), b"\r\n"]
                .concat();
        assert!(matches!(head(&many_headers).await, Err(SendError::Malformed(_))));
    }

    #[test]
    fn address_families_take_turns() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let mixed =
            vec![a("[::1]:1"), a("[::2]:1"), a("10.0.0.1:1"), a("[::3]:1"), a("10.0.0.2:1")];
        let order =
            vec![a("[::1]:1"), a("10.0.0.1:1"), a("[::2]:1"), a("10.0.0.2:1"), a("[::3]:1")];
        assert_eq!(interleave(mixed), order);
        assert_eq!(interleave(vec![a("10.0.0.1:1")]), vec![a("10.0.0.1:1")]);
    }

    /// A listener whose accept queue is full drops new SYNs, so a connection to it hangs: on
    /// 127.0.0.1 that is an address that swallows packets, as a broken IPv6 route does.
    async fn swallowing_address() -> (tokio::net::TcpListener, Vec<std::net::TcpStream>) {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut queued = Vec::new();
        // Fill the queue (backlog + 1 on Linux); each of these completes its handshake.
        for _ in 0..8 {
            let Ok(Ok(stream)) = tokio::time::timeout(
                Duration::from_millis(200),
                tokio::task::spawn_blocking(move || std::net::TcpStream::connect(addr)),
            )
            .await
            .map(|joined| joined.unwrap()) else {
                break;
            };
            queued.push(stream);
        }
        (listener, queued)
    }

    #[tokio::test]
    async fn a_second_address_is_tried_while_the_first_hangs() {
        let (hanging, _queued) = swallowing_address().await;
        let good = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addrs = vec![hanging.local_addr().unwrap(), good.local_addr().unwrap()];
        // Tried one after the other, the first address would hold the whole 5 s.
        let connected = tokio::time::timeout(
            Duration::from_secs(3),
            connect_any(addrs, Duration::from_secs(5)),
        )
        .await
        .expect("the second address was not tried in time")
        .expect("connected");
        assert_eq!(connected.peer_addr().unwrap(), good.local_addr().unwrap());
    }

    #[tokio::test]
    async fn the_last_error_is_reported_when_no_address_answers() {
        // Ports just bound and dropped: nothing listens there.
        let mut closed = Vec::new();
        for _ in 0..2 {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            closed.push(listener.local_addr().unwrap());
        }
        let (addr, error) = connect_any(closed.clone(), Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(addr, closed[1]);
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[test]
    fn the_request_is_one_buffer_with_the_path_and_query() {
        let url = Url::parse("https://example.com:8443/users/a/inbox?x=1#frag").unwrap();
        let request =
            encode(&url, &[("Date", "Sun, 06 Dec 2026 10:00:00 GMT")], b"{\"a\":1}").unwrap();
        let text = String::from_utf8(request).unwrap();
        assert!(text.starts_with("POST /users/a/inbox?x=1 HTTP/1.1\r\nHost: example.com:8443\r\n"));
        assert!(text.contains("\r\nConnection: close\r\nContent-Length: 7\r\n\r\n{\"a\":1}"));
        assert!(text.contains("\r\nUser-Agent: Ferry/"));
        assert!(encode(&url, &[("Date", "x\r\nInjected: 1")], b"").is_err());
    }
}
