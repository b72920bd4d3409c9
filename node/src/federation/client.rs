//! Outbound HTTP: the fetch client (every GET signed by the instance actor) and the delivery
//! client. Outside dev mode both refuse private and loopback addresses, including IP literals
//! that DNS validation never sees.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use activitypub_federation::resolver::ValidatingDnsResolver;
use ferry_protocol::signatures::{PrivateKey, sign_request};
use http::Extensions;
use reqwest::redirect::Policy;
use reqwest::{Request, Response};
use reqwest_middleware::{ClientWithMiddleware, Middleware, Next};
use url::Url;

use super::dns::CachingResolver;
use super::one_shot::OneShotClient;
use crate::config::Config;
use crate::error::AppError;

pub(super) const USER_AGENT: &str = concat!("Ferry/", env!("CARGO_PKG_VERSION"));

/// The client for deliveries: no redirects (an inbox that redirects is misconfigured, and
/// following would re-send a signed body elsewhere), bounded time.
pub fn delivery_client(config: &Config) -> reqwest::Client {
    delivery_builder(config)
        .pool_max_idle_per_host(64)
        .build()
        .expect("static client configuration")
}

/// How deliveries to servers that get one at a time go out.
pub enum OneShot {
    /// Ferry's own one-request client (`one_shot`): each connection closes after its answer,
    /// so a fan-out to thousands of servers leaves no idle connections (each holds a
    /// descriptor and ~25 KB).
    Direct(OneShotClient),
    /// reqwest without keep-alive, when the environment names an outbound proxy (reqwest
    /// honours `HTTPS_PROXY` and the like; the lean client does not speak to proxies).
    Proxied(reqwest::Client),
}

/// The one-shot delivery client. Its requests say `Connection: close`, so the server can
/// close at once instead of waiting for another request (the sink of B2 spent about 20 µs
/// less per delivery).
pub fn one_shot_delivery_client(config: &Config) -> Result<OneShot, rustls::Error> {
    if proxy_configured(|name| std::env::var_os(name)) {
        let close = http::HeaderMap::from_iter([(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        )]);
        let client = delivery_builder(config)
            .pool_max_idle_per_host(0)
            .default_headers(close)
            .build()
            .expect("static client configuration");
        return Ok(OneShot::Proxied(client));
    }
    OneShotClient::new(delivery_resolver(config), Vec::new(), config.delivery.request_timeout)
        .map(OneShot::Direct)
}

/// Whether reqwest would send through a proxy named in the environment (`var` reads it).
fn proxy_configured(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|name| var(name).is_some_and(|v| !v.is_empty()))
}

/// Each one-shot delivery is a new connection, so each would resolve its server again.
fn delivery_resolver(config: &Config) -> CachingResolver<ValidatingDnsResolver> {
    CachingResolver::new(ValidatingDnsResolver::new(Vec::new(), !config.dev_http))
}

fn delivery_builder(config: &Config) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .redirect(Policy::none())
        .timeout(config.delivery.request_timeout)
        .connect_timeout(super::one_shot::CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(30))
        .dns_resolver(Arc::new(delivery_resolver(config)))
}

/// The client activitypub_federation fetches with; signs every request.
pub fn fetch_client(config: &Config, key_id: String, key: Arc<PrivateKey>) -> ClientWithMiddleware {
    let inner = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        // activitypub_federation follows one redirect itself and checks the final id.
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .dns_resolver(Arc::new(ValidatingDnsResolver::new(Vec::new(), !config.dev_http)))
        .build()
        .expect("static client configuration");
    reqwest_middleware::ClientBuilder::new(inner)
        .with(SignFetches { key_id, key, dev_http: config.dev_http })
        .build()
}

/// Adds a draft-cavage signature to each GET (authorized-fetch servers require it).
struct SignFetches {
    key_id: String,
    key: Arc<PrivateKey>,
    dev_http: bool,
}

#[async_trait::async_trait]
impl Middleware for SignFetches {
    async fn handle(
        &self,
        mut req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        if let Err(e) = check_target(req.url(), self.dev_http) {
            return Err(reqwest_middleware::Error::middleware(e));
        }
        let signed = sign_request(
            req.method().as_str(),
            req.url(),
            None,
            &self.key_id,
            &self.key,
            SystemTime::now(),
        );
        let headers = req.headers_mut();
        for (name, value) in
            [("date", signed.date), ("signature", signed.signature), ("host", signed.host)]
        {
            if let Ok(value) = value.parse() {
                headers.insert(name, value);
            }
        }
        next.run(req, extensions).await
    }
}

/// Refuses a URL the node must not contact: wrong scheme, or (outside dev mode) an IP literal
/// in a private, loopback or link-local range. Host names are checked at DNS resolution.
pub fn check_target(url: &Url, dev_http: bool) -> Result<(), AppError> {
    match url.scheme() {
        "https" => {}
        "http" if dev_http => {}
        other => return Err(AppError::Invalid(format!("refusing {other}:// URL {url}"))),
    }
    if dev_http {
        return Ok(());
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(d))
            if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") =>
        {
            return Err(AppError::Invalid(format!("refusing local address {url}")));
        }
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(AppError::Invalid(format!("URL without host: {url}"))),
    };
    if is_public_ip(ip) {
        Ok(())
    } else {
        Err(AppError::Invalid(format!("refusing private address {url}")))
    }
}

fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| !is_public_ip(IpAddr::V4(v4))))
        }
    }
}

/// Reads a response body, failing once it passes `max` bytes (a hostile server cannot make
/// us buffer an endless body).
pub async fn read_limited(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, AppError> {
    if response.content_length().is_some_and(|len| len as usize > max) {
        return Err(AppError::Remote(format!(
            "response from {} is larger than {max} bytes",
            response.url()
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| AppError::Remote(format!("reading response: {e}")))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > max {
            return Err(AppError::Remote(format!(
                "response from {} is larger than {max} bytes",
                response.url()
            )));
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_in_the_environment_is_noticed() {
        let env = |set: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                set.iter().find(|(n, _)| *n == name).map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(!proxy_configured(env(&[])));
        assert!(!proxy_configured(env(&[("HTTPS_PROXY", ""), ("NO_PROXY", "*")])));
        assert!(proxy_configured(env(&[("https_proxy", "http://proxy:3128")])));
        assert!(proxy_configured(env(&[("ALL_PROXY", "socks5://127.0.0.1:1080")])));
    }

    #[test]
    fn private_targets_are_refused_outside_dev_mode() {
        for bad in [
            "http://example.com/inbox",
            "https://127.0.0.1/inbox",
            "https://10.1.2.3/inbox",
            "https://[::1]/inbox",
            "https://192.168.0.1/",
            "https://localhost/inbox",
            "https://[::ffff:127.0.0.1]/",
            "ftp://example.com/",
        ] {
            assert!(check_target(&Url::parse(bad).unwrap(), false).is_err(), "{bad}");
        }
        assert!(check_target(&Url::parse("https://example.com/inbox").unwrap(), false).is_ok());
        assert!(check_target(&Url::parse("https://8.8.8.8/inbox").unwrap(), false).is_ok());
        assert!(check_target(&Url::parse("http://127.0.0.1:8081/inbox").unwrap(), true).is_ok());
    }
}
