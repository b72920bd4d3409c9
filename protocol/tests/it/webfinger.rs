//! WebFinger documents and `Handle` parsing.

use ferry_protocol::webfinger::{Handle, HandleError, Jrd, JrdLink};
use url::Url;

#[test]
fn handles_in_every_accepted_spelling() {
    for (input, username, domain) in [
        ("alice@example.org", "alice", "example.org"),
        ("@alice@example.org", "alice", "example.org"),
        ("acct:alice@example.org", "alice", "example.org"),
        ("ACCT:alice@example.org", "alice", "example.org"),
        ("acct:@alice@example.org", "alice", "example.org"),
        ("Alice_99@Example.ORG", "Alice_99", "example.org"),
        ("alice@localhost:8080", "alice", "localhost:8080"),
        ("alice@127.0.0.1:3000", "alice", "127.0.0.1:3000"),
        ("alice@[::1]:8080", "alice", "[::1]:8080"),
        ("alice.bob-c@sub.domain.example", "alice.bob-c", "sub.domain.example"),
    ] {
        let handle = Handle::parse(input).unwrap_or_else(|err| panic!("{input:?}: {err}"));
        assert_eq!(handle.username, username, "{input:?}");
        assert_eq!(handle.domain, domain, "{input:?}");
        assert_eq!(input.parse::<Handle>().unwrap(), handle);
    }
}

#[test]
fn handles_that_are_not() {
    for input in [
        "",
        "@",
        "acct:",
        "alice",
        "@alice",
        "alice@",
        "@example.org",
        "@@example.org",
        "alice@@example.org",
        "alice@example.org@evil.example",
        "@alice@example.org@evil.example",
        "al ice@example.org",
        " alice@example.org",
        "alice@example.org ",
        "alice@example.org\n",
        "alice@exa mple.org",
        "alice@example.org/users/alice",
        "https://example.org/@alice",
        "alice@example.org:",
        "alice@example.org:notaport",
        "alice@example.org:99999",
        "alice@example.org?x=1",
        "alice@example.org#frag",
        "alice@exa\tmple.org",
    ] {
        assert!(Handle::parse(input).is_err(), "{input:?} should not parse");
    }
}

#[test]
fn handle_errors_say_what_is_wrong() {
    assert_eq!(Handle::parse(""), Err(HandleError::Empty));
    assert_eq!(Handle::parse("@"), Err(HandleError::Empty));
    assert!(matches!(Handle::parse("alice"), Err(HandleError::MissingAt(_))));
    assert!(matches!(Handle::parse("a@b@c"), Err(HandleError::TooManyAt(_))));
    assert!(matches!(Handle::parse("@@b"), Err(HandleError::EmptyUsername(_))));
    assert!(matches!(Handle::parse("a@"), Err(HandleError::EmptyDomain(_))));
    assert!(matches!(Handle::parse("a b@c"), Err(HandleError::InvalidCharacter(_, ' '))));
    assert!(matches!(Handle::parse("a@c:x"), Err(HandleError::InvalidDomain(_))));
    assert!(Handle::parse("a@b@c").unwrap_err().to_string().contains("more than one `@`"));
}

#[test]
fn handle_display_and_acct() {
    let handle = Handle::parse("@alice@Example.org:8080").unwrap();
    assert_eq!(handle.to_string(), "alice@example.org:8080");
    assert_eq!(handle.acct(), "acct:alice@example.org:8080");
    assert_eq!(Handle::parse(&handle.acct()).unwrap(), handle);
}

fn link(rel: &str, kind: Option<&str>, href: &str) -> JrdLink {
    JrdLink {
        rel: rel.to_owned(),
        kind: kind.map(str::to_owned),
        href: Some(href.to_owned()),
        template: None,
    }
}

#[test]
fn self_link_is_the_activity_json_one() {
    let jrd = Jrd {
        subject: "acct:alice@example.org".to_owned(),
        aliases: vec![],
        links: vec![
            link("http://webfinger.net/rel/profile-page", Some("text/html"), "https://e.org/@a"),
            link("self", Some("text/html"), "https://e.org/@alice"),
            link("self", None, "https://e.org/untyped"),
            link(
                "self",
                Some("application/ld+json; profile=\"https://www.w3.org/ns/activitystreams\""),
                "https://e.org/users/alice",
            ),
            link("self", Some("application/activity+json"), "https://e.org/second"),
        ],
    };
    assert_eq!(jrd.self_link(), Some(Url::parse("https://e.org/users/alice").unwrap()));

    let none = Jrd { links: vec![link("self", Some("text/html"), "https://e.org/@a")], ..jrd };
    assert_eq!(none.self_link(), None);
}

#[test]
fn jrd_keeps_templates_and_types() {
    let jrd: Jrd = serde_json::from_value(serde_json::json!({
        "subject": "acct:Gargron@mastodon.social",
        "aliases": ["https://mastodon.social/@Gargron"],
        "links": [
            { "rel": "self", "type": "application/activity+json",
              "href": "https://mastodon.social/users/Gargron" },
            { "rel": "http://ostatus.org/schema/1.0/subscribe",
              "template": "https://mastodon.social/authorize_interaction?uri={uri}" }
        ]
    }))
    .unwrap();
    assert_eq!(jrd.links[0].kind.as_deref(), Some("application/activity+json"));
    assert!(jrd.links[1].template.as_deref().is_some_and(|t| t.contains("{uri}")));
    assert_eq!(jrd.self_link(), Some(Url::parse("https://mastodon.social/users/Gargron").unwrap()));
}
