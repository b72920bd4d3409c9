//! Node configuration: `ferry.toml` overlaid with `FERRY_*` environment variables, validated once.
//!
//! Every key can be set either way; the environment wins. A bad value is refused at start with
//! a message naming the key, so a typo never becomes a silently different node.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

/// A configuration error that names the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("configuration key `{key}` (env {env}): {reason}")]
pub struct ConfigError {
    /// The key as written in `ferry.toml`.
    pub key: String,
    /// The environment variable that sets it.
    pub env: String,
    /// What is wrong.
    pub reason: String,
}

/// How logs are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Delivery queue tuning; the retry schedule is configurable so tests can use seconds.
#[derive(Clone, Debug)]
pub struct DeliveryConfig {
    /// Requests in flight across all destinations.
    pub max_in_flight: usize,
    /// Upper bound of the per-destination window (requests in flight to one server).
    pub max_per_domain: usize,
    /// Window a destination starts with.
    pub initial_per_domain: usize,
    /// First retry delay; doubled per attempt.
    pub retry_base: Duration,
    /// Largest delay between two attempts.
    pub retry_max: Duration,
    /// A delivery still failing this long after it was queued is marked failed.
    pub give_up_after: Duration,
    /// Timeout of one delivery request.
    pub request_timeout: Duration,
}

/// The whole configuration of one node.
#[derive(Clone, Debug)]
pub struct Config {
    /// Public host name, possibly with a port (`127.0.0.1:8081`).
    pub domain: String,
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Where uploaded media files are stored.
    pub media_dir: PathBuf,
    /// The inbox journal's directory (`federation::journal`), or `None` (`off`): then an inbox
    /// POST is answered only once its activity is committed.
    pub inbox_journal_dir: Option<PathBuf>,
    /// Development mode: `http://` URLs and loopback peers allowed. Never in production.
    pub dev_http: bool,
    /// Log format.
    pub log_format: LogFormat,
    /// Whether `POST /api/v1/accounts` accepts sign-ups.
    pub registrations_open: bool,
    /// Require signed fetches for notes and collections (Mastodon's authorized-fetch mode).
    pub authorized_fetch: bool,
    /// Largest accepted inbox POST body.
    pub inbox_max_bytes: usize,
    /// Largest accepted client API body (media uploads have their own limit).
    pub api_max_bytes: usize,
    /// Largest accepted media upload.
    pub media_max_bytes: usize,
    /// Largest account archive accepted for import.
    pub archive_max_bytes: u64,
    /// Largest clock difference accepted in a signed request's date.
    pub signature_max_skew: Duration,
    /// RSA keys kept ready for sign-ups.
    pub key_pool_size: usize,
    /// Instance name shown by the client API.
    pub instance_title: String,
    /// Instance description shown by the client API.
    pub instance_description: String,
    /// Delivery queue tuning.
    pub delivery: DeliveryConfig,
}

/// The file form: every key optional, defaults applied in `Config::from_parts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    domain: Option<String>,
    listen: Option<String>,
    database_url: Option<String>,
    media_dir: Option<String>,
    inbox_journal_dir: Option<String>,
    dev_http: Option<bool>,
    log_format: Option<String>,
    registrations_open: Option<bool>,
    authorized_fetch: Option<bool>,
    inbox_max_bytes: Option<u64>,
    api_max_bytes: Option<u64>,
    media_max_bytes: Option<u64>,
    archive_max_bytes: Option<u64>,
    signature_max_skew_secs: Option<u64>,
    key_pool_size: Option<u64>,
    instance_title: Option<String>,
    instance_description: Option<String>,
    delivery_max_in_flight: Option<u64>,
    delivery_max_per_domain: Option<u64>,
    delivery_initial_per_domain: Option<u64>,
    delivery_retry_base_secs: Option<f64>,
    delivery_retry_max_secs: Option<f64>,
    delivery_give_up_after_secs: Option<f64>,
    delivery_request_timeout_secs: Option<f64>,
}

fn env_name(key: &str) -> String {
    format!("FERRY_{}", key.to_ascii_uppercase())
}

fn err(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError { key: key.to_owned(), env: env_name(key), reason: reason.into() }
}

/// Reads a key: the environment (through `env`) wins over the file value.
struct Layer<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Layer<'_> {
    fn string(&self, key: &str, file: Option<String>) -> Option<String> {
        (self.env)(&env_name(key)).or(file)
    }

    fn parsed<T: std::str::FromStr>(
        &self,
        key: &str,
        file: Option<T>,
    ) -> Result<Option<T>, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match (self.env)(&env_name(key)) {
            Some(raw) => {
                raw.trim().parse().map(Some).map_err(|e| err(key, format!("{raw:?}: {e}")))
            }
            None => Ok(file),
        }
    }

    fn boolean(&self, key: &str, file: Option<bool>) -> Result<Option<bool>, ConfigError> {
        match (self.env)(&env_name(key)) {
            Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(Some(true)),
                "0" | "false" | "no" | "off" | "" => Ok(Some(false)),
                _ => Err(err(key, format!("{raw:?} is not a boolean (use true or false)"))),
            },
            None => Ok(file),
        }
    }
}

impl Config {
    /// Loads `path` if given (it must exist then) and applies the process environment.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match path {
            Some(path) => Some(std::fs::read_to_string(path).map_err(|e| ConfigError {
                key: "--config".to_owned(),
                env: "-".to_owned(),
                reason: format!("cannot read {}: {e}", path.display()),
            })?),
            None => None,
        };
        Config::from_parts(text.as_deref(), &|name| std::env::var(name).ok())
    }

    /// Builds a configuration from file text and an environment lookup (tests pass their own).
    pub fn from_parts(
        file: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = match file {
            Some(text) => toml::from_str(text).map_err(|e| {
                let message = e.message().to_owned();
                // toml names unknown keys in its message; keep it whole.
                ConfigError { key: "ferry.toml".to_owned(), env: "-".to_owned(), reason: message }
            })?,
            None => RawConfig::default(),
        };
        let l = Layer { env };
        let secs = |key: &str, file: Option<f64>, default: f64| -> Result<Duration, ConfigError> {
            let value = l.parsed(key, file)?.unwrap_or(default);
            if !(value.is_finite() && value > 0.0) {
                return Err(err(key, "must be a positive number of seconds"));
            }
            Ok(Duration::from_secs_f64(value))
        };
        let positive = |key: &str, file: Option<u64>, default: u64| -> Result<usize, ConfigError> {
            let value = l.parsed(key, file)?.unwrap_or(default);
            if value == 0 {
                return Err(err(key, "must be at least 1"));
            }
            usize::try_from(value).map_err(|_| err(key, "too large"))
        };

        let domain = l
            .string("domain", raw.domain)
            .unwrap_or_else(|| "localhost:8080".to_owned())
            .trim()
            .to_ascii_lowercase();
        validate_domain(&domain).map_err(|reason| err("domain", reason))?;
        let listen_raw =
            l.string("listen", raw.listen).unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = listen_raw
            .parse()
            .map_err(|e| err("listen", format!("{listen_raw:?} is not an address:port ({e})")))?;
        let database_url = l
            .string("database_url", raw.database_url)
            .unwrap_or_else(|| "sqlite://ferry.db".to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(err("database_url", "must start with sqlite: or postgres://"));
        }
        // The node opens several connections to a SQLite database (readers, the writer, the
        // inbox writer's own, the checkpointer); each in-memory database is private to its
        // connection, so the others would not see what one wrote.
        if database_url.starts_with("sqlite:")
            && (database_url.contains(":memory:") || database_url.contains("mode=memory"))
        {
            return Err(err(
                "database_url",
                "an in-memory SQLite database is private to one connection, and the node opens \
                 several; use a file (sqlite://ferry.db)",
            ));
        }
        let log_format = match l.string("log_format", raw.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => return Err(err("log_format", format!("{other:?}: use text or json"))),
        };
        let delivery = DeliveryConfig {
            max_in_flight: positive("delivery_max_in_flight", raw.delivery_max_in_flight, 2048)?,
            max_per_domain: positive("delivery_max_per_domain", raw.delivery_max_per_domain, 256)?,
            initial_per_domain: positive(
                "delivery_initial_per_domain",
                raw.delivery_initial_per_domain,
                32,
            )?,
            retry_base: secs("delivery_retry_base_secs", raw.delivery_retry_base_secs, 60.0)?,
            retry_max: secs("delivery_retry_max_secs", raw.delivery_retry_max_secs, 6.0 * 3600.0)?,
            give_up_after: secs(
                "delivery_give_up_after_secs",
                raw.delivery_give_up_after_secs,
                3.0 * 86400.0,
            )?,
            request_timeout: secs(
                "delivery_request_timeout_secs",
                raw.delivery_request_timeout_secs,
                15.0,
            )?,
        };
        let media_dir = PathBuf::from(
            l.string("media_dir", raw.media_dir).unwrap_or_else(|| "media".to_owned()),
        );
        let inbox_journal_dir = match l.string("inbox_journal_dir", raw.inbox_journal_dir) {
            Some(dir) if dir.trim().eq_ignore_ascii_case("off") => None,
            Some(dir) if dir.trim().is_empty() => {
                return Err(err("inbox_journal_dir", "is empty: give a directory, or off"));
            }
            Some(dir) => Some(PathBuf::from(dir)),
            None => default_journal_dir(&database_url),
        };
        Ok(Config {
            domain,
            listen,
            database_url,
            media_dir,
            inbox_journal_dir,
            dev_http: l.boolean("dev_http", raw.dev_http)?.unwrap_or(false),
            log_format,
            registrations_open: l
                .boolean("registrations_open", raw.registrations_open)?
                .unwrap_or(false),
            authorized_fetch: l.boolean("authorized_fetch", raw.authorized_fetch)?.unwrap_or(false),
            inbox_max_bytes: positive("inbox_max_bytes", raw.inbox_max_bytes, 1 << 20)?,
            api_max_bytes: positive("api_max_bytes", raw.api_max_bytes, 1 << 20)?,
            media_max_bytes: positive("media_max_bytes", raw.media_max_bytes, 16 << 20)?,
            archive_max_bytes: positive("archive_max_bytes", raw.archive_max_bytes, 1 << 30)?
                as u64,
            signature_max_skew: Duration::from_secs(
                l.parsed("signature_max_skew_secs", raw.signature_max_skew_secs)?
                    .unwrap_or(12 * 3600),
            ),
            key_pool_size: l.parsed("key_pool_size", raw.key_pool_size)?.unwrap_or(8) as usize,
            instance_title: l
                .string("instance_title", raw.instance_title)
                .unwrap_or_else(|| "Ferry".to_owned()),
            instance_description: l
                .string("instance_description", raw.instance_description)
                .unwrap_or_else(|| "A Ferry node".to_owned()),
            delivery,
        })
    }

    /// `http` in dev mode, `https` otherwise.
    pub fn scheme(&self) -> &'static str {
        if self.dev_http { "http" } else { "https" }
    }

    /// The node's base URL, ending in `/`.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("{}://{}/", self.scheme(), self.domain))
            .expect("domain validated at load")
    }
}

/// The inbox journal's directory when none is configured: beside a SQLite database's file
/// (`ferry.db.inbox`). On PostgreSQL it is off unless configured: in B1 there it made the
/// open-loop ramp worse (docs/benchmarks.md, session 33).
fn default_journal_dir(database_url: &str) -> Option<PathBuf> {
    database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))
        .map(|rest| rest.split('?').next().unwrap_or_default())
        .filter(|file| !file.is_empty())
        .map(|file| PathBuf::from(format!("{file}.inbox")))
}

/// A host name, optionally with a port; nothing else (no scheme, path or user info).
fn validate_domain(domain: &str) -> Result<(), String> {
    let url = Url::parse(&format!("http://{domain}/")).map_err(|e| format!("{domain:?}: {e}"))?;
    let rebuilt = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    if rebuilt != domain.to_ascii_lowercase() || domain.is_empty() {
        return Err(format!("{domain:?} must be a bare host name with an optional :port"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(file: Option<&str>, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> =
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::from_parts(file, &|name| env.get(name).cloned())
    }

    #[test]
    fn defaults_run_on_embedded_sqlite() {
        let config = load(None, &[]).unwrap();
        assert_eq!(config.database_url, "sqlite://ferry.db");
        assert!(!config.dev_http);
        assert_eq!(config.inbox_max_bytes, 1 << 20);
        assert_eq!(config.inbox_journal_dir, Some(PathBuf::from("ferry.db.inbox")));
    }

    #[test]
    fn the_inbox_journal_sits_beside_the_data_unless_switched_off() {
        let at = |env: &[(&str, &str)]| load(None, env).unwrap().inbox_journal_dir;
        let db = "sqlite:///var/lib/ferry/node.db?mode=rwc";
        assert_eq!(
            at(&[("FERRY_DATABASE_URL", db)]),
            Some(PathBuf::from("/var/lib/ferry/node.db.inbox"))
        );
        let pg = [("FERRY_DATABASE_URL", "postgres://db/ferry")];
        assert_eq!(at(&pg), None, "off on PostgreSQL unless configured");
        let pg = [pg[0], ("FERRY_INBOX_JOURNAL_DIR", "/srv/journal")];
        assert_eq!(at(&pg), Some(PathBuf::from("/srv/journal")));
        assert_eq!(at(&[("FERRY_INBOX_JOURNAL_DIR", "/j")]), Some(PathBuf::from("/j")));
        assert_eq!(at(&[("FERRY_INBOX_JOURNAL_DIR", "off")]), None);
        let e = load(None, &[("FERRY_INBOX_JOURNAL_DIR", " ")]).unwrap_err();
        assert_eq!(e.key, "inbox_journal_dir");
    }

    #[test]
    fn environment_overrides_file() {
        let file = "domain = \"a.example\"\nlisten = \"127.0.0.1:9000\"\ndev_http = false\n";
        let config =
            load(Some(file), &[("FERRY_DOMAIN", "127.0.0.1:8081"), ("FERRY_DEV_HTTP", "1")])
                .unwrap();
        assert_eq!(config.domain, "127.0.0.1:8081");
        assert!(config.dev_http);
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.base_url().as_str(), "http://127.0.0.1:8081/");
    }

    #[test]
    fn bad_values_name_the_key() {
        let e = load(None, &[("FERRY_LISTEN", "nowhere")]).unwrap_err();
        assert_eq!(e.key, "listen");
        assert!(e.to_string().contains("FERRY_LISTEN"), "{e}");
        let e = load(None, &[("FERRY_DEV_HTTP", "maybe")]).unwrap_err();
        assert_eq!(e.key, "dev_http");
        let e = load(None, &[("FERRY_DOMAIN", "https://x.example/path")]).unwrap_err();
        assert_eq!(e.key, "domain");
        let e = load(Some("no_such_key = 1"), &[]).unwrap_err();
        assert!(e.reason.contains("no_such_key"), "{e}");
        let e = load(None, &[("FERRY_DATABASE_URL", "mysql://x")]).unwrap_err();
        assert_eq!(e.key, "database_url");
        for memory in ["sqlite::memory:", "sqlite://ferry.db?mode=memory"] {
            let e = load(None, &[("FERRY_DATABASE_URL", memory)]).unwrap_err();
            assert_eq!(e.key, "database_url", "{memory}");
            assert!(e.reason.contains("in-memory"), "{e}");
        }
    }
}
