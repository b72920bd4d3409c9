//! Every URL this node mints. Nothing else formats our ids or paths.

use url::Url;

use crate::config::Config;

fn join(config: &Config, path: &str) -> Url {
    config.base_url().join(path).expect("paths built here are valid relative URLs")
}

/// `/users/{username}`: a local actor.
pub fn actor(config: &Config, username: &str) -> Url {
    join(config, &format!("users/{username}"))
}

/// The instance actor, which signs fetches made on behalf of the node.
pub fn instance_actor(config: &Config) -> Url {
    join(config, "actor")
}

/// The key id of an actor: `{actor}#main-key`, as Mastodon names it.
pub fn key_id(actor: &str) -> String {
    format!("{actor}#main-key")
}

/// A local actor's inbox.
pub fn inbox(config: &Config, username: &str) -> Url {
    join(config, &format!("users/{username}/inbox"))
}

/// The node's shared inbox.
pub fn shared_inbox(config: &Config) -> Url {
    join(config, "inbox")
}

/// A local actor's outbox.
pub fn outbox(config: &Config, username: &str) -> Url {
    join(config, &format!("users/{username}/outbox"))
}

/// An actor's followers collection as it names it, or ours for a local actor without one.
pub fn followers_of(config: &Config, actor: &crate::db::actors::ActorRow) -> String {
    actor.followers_url.clone().unwrap_or_else(|| followers(config, &actor.username).to_string())
}

/// A local actor's followers collection.
pub fn followers(config: &Config, username: &str) -> Url {
    join(config, &format!("users/{username}/followers"))
}

/// A local actor's following collection.
pub fn following(config: &Config, username: &str) -> Url {
    join(config, &format!("users/{username}/following"))
}

/// The HTML profile page of a local actor.
pub fn profile(config: &Config, username: &str) -> Url {
    join(config, &format!("@{username}"))
}

/// A local note: `/notes/{id}`.
pub fn note(config: &Config, id: i64) -> Url {
    join(config, &format!("notes/{id}"))
}

/// A local activity: `/activities/{id}`.
pub fn activity(config: &Config, id: i64) -> Url {
    join(config, &format!("activities/{id}"))
}

/// A hashtag page.
pub fn tag(config: &Config, name: &str) -> Url {
    join(config, &format!("tags/{name}"))
}

/// A stored media file.
pub fn media(config: &Config, file_name: &str) -> Url {
    join(config, &format!("media/{file_name}"))
}

/// The image shown for accounts without an avatar or header.
pub fn missing_avatar(config: &Config) -> Url {
    join(config, "avatars/missing.png")
}

/// The local note id in a URL minted by `note`, if it is one of ours.
pub fn parse_note(config: &Config, url: &str) -> Option<i64> {
    url.strip_prefix(note(config, 0).as_str().trim_end_matches('0'))?.parse().ok()
}

/// The local username in a URL minted by `actor`, if it is one of ours.
pub fn parse_actor(config: &Config, url: &str) -> Option<String> {
    let rest = url.strip_prefix(join(config, "users/").as_str())?;
    (!rest.is_empty() && !rest.contains(['/', '#', '?'])).then(|| rest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_urls_parse_back() {
        let config = Config::from_parts(None, &|name| {
            (name == "FERRY_DOMAIN").then(|| "127.0.0.1:8081".to_owned())
        })
        .unwrap();
        assert_eq!(actor(&config, "alice").as_str(), "https://127.0.0.1:8081/users/alice");
        assert_eq!(
            parse_actor(&config, actor(&config, "alice").as_str()).as_deref(),
            Some("alice")
        );
        assert_eq!(parse_actor(&config, inbox(&config, "alice").as_str()), None);
        assert_eq!(parse_note(&config, note(&config, 42).as_str()), Some(42));
        assert_eq!(parse_note(&config, "https://elsewhere.example/notes/42"), None);
    }
}
