//! WebFinger (RFC 7033): the JRD documents servers exchange to turn `alice@example.org` into
//! an actor URL, and [`Handle`], the parsed form of such an address.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::context::accepts_activity_json;

/// A JSON Resource Descriptor, the body of a WebFinger response.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Jrd {
    /// The resource described, normally `acct:alice@example.org`.
    pub subject: String,
    /// Other identifiers for the same resource (profile page, actor URL).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Related resources; the actor document is the `self` link.
    #[serde(default)]
    pub links: Vec<JrdLink>,
}

impl Jrd {
    /// The actor URL: the first `rel="self"` link whose type is ActivityStreams JSON
    /// (`application/activity+json`, or `application/ld+json` with any profile).
    pub fn self_link(&self) -> Option<Url> {
        self.links
            .iter()
            .filter(|link| link.rel == "self")
            .filter(|link| link.kind.as_deref().is_some_and(accepts_activity_json))
            .find_map(|link| Url::parse(link.href.as_deref()?).ok())
    }
}

/// One link in a [`Jrd`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JrdLink {
    /// The relation (`self`, `http://webfinger.net/rel/profile-page`, ...).
    pub rel: String,
    /// The media type of the target.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    /// A URI template instead of a target (`http://ostatus.org/schema/1.0/subscribe`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// A fediverse address, `alice@example.org`.
///
/// The domain is kept lower-case (domains are case-insensitive); the username keeps its case,
/// since servers differ on whether usernames are.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Handle {
    /// The part before the `@`.
    pub username: String,
    /// The server, possibly with a port (`localhost:8080`).
    pub domain: String,
}

/// Why a string is not a [`Handle`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// Nothing left after removing `acct:` and the leading `@`.
    #[error("the handle is empty")]
    Empty,
    /// No `@` between username and domain.
    #[error("expected user@domain, found no `@` in {0:?}")]
    MissingAt(String),
    /// More than one `@` after the optional leading one.
    #[error("expected user@domain, found more than one `@` in {0:?}")]
    TooManyAt(String),
    /// Nothing before the `@`.
    #[error("the username is empty in {0:?}")]
    EmptyUsername(String),
    /// Nothing after the `@`.
    #[error("the domain is empty in {0:?}")]
    EmptyDomain(String),
    /// Whitespace, `/` or a control character.
    #[error("invalid character {1:?} in {0:?}")]
    InvalidCharacter(String, char),
    /// Not a host name or IP address with an optional port.
    #[error("{0:?} is not a valid domain")]
    InvalidDomain(String),
}

impl Handle {
    /// Parses `alice@host`, `@alice@host` or `acct:alice@host`; the host may carry a port.
    pub fn parse(s: &str) -> Result<Handle, HandleError> {
        // URI schemes are case-insensitive (RFC 3986), so `ACCT:` is the same as `acct:`.
        let bare = match s.get(..5) {
            Some(scheme) if scheme.eq_ignore_ascii_case("acct:") => &s[5..],
            _ => s,
        };
        let bare = bare.strip_prefix('@').unwrap_or(bare);
        if bare.is_empty() {
            return Err(HandleError::Empty);
        }
        if let Some(bad) = bare.chars().find(|c| c.is_whitespace() || c.is_control() || *c == '/') {
            return Err(HandleError::InvalidCharacter(s.to_owned(), bad));
        }

        let mut parts = bare.split('@');
        let (Some(username), Some(domain)) = (parts.next(), parts.next()) else {
            return Err(HandleError::MissingAt(s.to_owned()));
        };
        if parts.next().is_some() {
            return Err(HandleError::TooManyAt(s.to_owned()));
        }
        if username.is_empty() {
            return Err(HandleError::EmptyUsername(s.to_owned()));
        }
        if domain.is_empty() {
            return Err(HandleError::EmptyDomain(s.to_owned()));
        }
        if !is_valid_domain(domain) {
            return Err(HandleError::InvalidDomain(domain.to_owned()));
        }

        Ok(Handle { username: username.to_owned(), domain: domain.to_ascii_lowercase() })
    }

    /// The WebFinger resource for this handle, `acct:alice@host`.
    pub fn acct(&self) -> String {
        format!("acct:{self}")
    }
}

/// A host (name or IP literal) with an optional numeric port, and nothing else: the `url`
/// crate does the host validation, and we reject whatever it would have moved elsewhere.
fn is_valid_domain(domain: &str) -> bool {
    if domain.ends_with(':') || domain.contains(['?', '#', '\\']) {
        return false;
    }
    let Ok(url) = Url::parse(&format!("https://{domain}/")) else {
        return false;
    };
    url.host_str().is_some_and(|host| !host.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.username, self.domain)
    }
}

impl FromStr for Handle {
    type Err = HandleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Handle::parse(s)
    }
}
