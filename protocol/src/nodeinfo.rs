//! NodeInfo 2.x: the `/.well-known/nodeinfo` links document and the NodeInfo document itself,
//! which tells other servers (and crawlers) what software a server runs and how big it is.

use serde::{Deserialize, Serialize};
use url::Url;

/// The `/.well-known/nodeinfo` document: where the NodeInfo documents live, by schema version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeInfoLinks {
    /// One link per supported schema version.
    pub links: Vec<NodeInfoLink>,
}

/// One entry of [`NodeInfoLinks`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeInfoLink {
    /// The schema, e.g. `http://nodeinfo.diaspora.software/ns/schema/2.1`.
    pub rel: String,
    /// Where the document for that schema is served.
    pub href: Url,
}

/// A NodeInfo 2.0/2.1 document.
///
/// Fields that servers are known to omit default to empty or zero on input.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeInfo {
    /// The schema version, `2.0` or `2.1`.
    pub version: String,
    /// What the server runs.
    pub software: Software,
    /// Federation protocols spoken, e.g. `activitypub`.
    #[serde(default)]
    pub protocols: Vec<String>,
    /// Third-party services the server bridges to.
    #[serde(default)]
    pub services: Services,
    /// Whether anyone can sign up.
    #[serde(default)]
    pub open_registrations: bool,
    /// Size figures.
    #[serde(default)]
    pub usage: Usage,
    /// Free-form server metadata (node name, description, ...).
    #[serde(default)]
    pub metadata: serde_json::Value,
}

/// The server software in a [`NodeInfo`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Software {
    /// Lower-case software name, e.g. `ferry`, `mastodon`.
    pub name: String,
    /// The running version.
    pub version: String,
    /// Source repository (NodeInfo 2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Project homepage (NodeInfo 2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
}

/// Third-party services in a [`NodeInfo`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Services {
    /// Services the server can read from.
    #[serde(default)]
    pub inbound: Vec<String>,
    /// Services the server can post to.
    #[serde(default)]
    pub outbound: Vec<String>,
}

/// Size figures in a [`NodeInfo`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Account counts.
    #[serde(default)]
    pub users: UsageUsers,
    /// Posts made by local accounts.
    #[serde(default)]
    pub local_posts: u64,
}

/// Account counts in [`Usage`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UsageUsers {
    /// All local accounts.
    #[serde(default)]
    pub total: u64,
    /// Accounts active in the last 30 days.
    #[serde(default)]
    pub active_month: u64,
    /// Accounts active in the last 180 days.
    #[serde(default)]
    pub active_halfyear: u64,
}
