//! Media types, the public collection, and `@context` handling.

use ferry_protocol::activities::Follow;
use ferry_protocol::context::{
    ACTIVITY_JSON, LD_JSON_AS, PUBLIC, WithContext, accepts_activity_json, default_context,
    is_public, is_public_str, public_url,
};
use serde_json::json;
use url::Url;

#[test]
fn accept_headers_asking_for_activity_json() {
    for accept in [
        ACTIVITY_JSON,
        LD_JSON_AS,
        "application/ld+json",
        "application/ld+json;profile=\"https://www.w3.org/ns/activitystreams\"",
        "text/html, application/activity+json;q=0.9",
        "text/html,application/xhtml+xml, application/ld+json; profile=\"x\" ; q=0.5",
        "APPLICATION/Activity+JSON",
        "  application/activity+json  ",
    ] {
        assert!(accepts_activity_json(accept), "{accept:?} asks for activity+json");
    }
}

#[test]
fn accept_headers_not_asking_for_activity_json() {
    for accept in [
        "",
        "*/*",
        "text/html",
        "application/json",
        "application/activity+jsonx",
        "application/jrd+json",
        "text/html; profile=\"application/activity+json\"",
    ] {
        assert!(!accepts_activity_json(accept), "{accept:?} does not ask for activity+json");
    }
}

#[test]
fn public_collection_in_every_spelling() {
    assert!(is_public(&public_url()));
    assert_eq!(public_url().as_str(), PUBLIC);
    // The `url` crate accepts `as:Public` as an opaque URL, so it can reach `is_public`.
    assert!(is_public(&Url::parse("as:Public").unwrap()));
    assert!(!is_public(&Url::parse("https://example.org/users/alice/followers").unwrap()));
    assert!(!is_public(&Url::parse("https://www.w3.org/ns/activitystreams#public").unwrap()));

    for s in [PUBLIC, "as:Public", "Public", " Public "] {
        assert!(is_public_str(s), "{s:?}");
    }
    for s in ["", "public", "as:public", "https://www.w3.org/ns/activitystreams", "Publicity"] {
        assert!(!is_public_str(s), "{s:?}");
    }
}

#[test]
fn default_context_matches_mastodon_term_definitions() {
    let context = default_context();
    assert_eq!(context[0], "https://www.w3.org/ns/activitystreams");
    assert_eq!(context[1], "https://w3id.org/security/v1");
    let terms = &context[2];
    assert_eq!(terms["manuallyApprovesFollowers"], "as:manuallyApprovesFollowers");
    assert_eq!(terms["movedTo"], json!({ "@id": "as:movedTo", "@type": "@id" }));
    assert_eq!(terms["alsoKnownAs"], json!({ "@id": "as:alsoKnownAs", "@type": "@id" }));
    assert_eq!(terms["featured"], json!({ "@id": "toot:featured", "@type": "@id" }));
    assert_eq!(terms["toot"], "http://joinmastodon.org/ns#");
    assert_eq!(terms["schema"], "http://schema.org#");
    assert_eq!(terms["PropertyValue"], "schema:PropertyValue");
    assert_eq!(terms["value"], "schema:value");
    assert_eq!(terms["blurhash"], "toot:blurhash");
    assert_eq!(terms["discoverable"], "toot:discoverable");
}

fn follow() -> Follow {
    serde_json::from_value(json!({
        "id": "https://a.example/follows/1",
        "type": "Follow",
        "actor": "https://a.example/users/alice",
        "object": "https://b.example/users/bob"
    }))
    .expect("a minimal Follow parses")
}

#[test]
fn with_context_puts_context_beside_the_document() {
    let value = serde_json::to_value(WithContext::new(follow())).unwrap();
    assert_eq!(value["@context"], default_context());
    assert_eq!(value["type"], "Follow");
    assert_eq!(value["actor"], "https://a.example/users/alice");
    assert!(value.get("inner").is_none());
}

#[test]
fn with_context_is_optional_on_input_and_kept_as_sent() {
    let bare: WithContext<Follow> = serde_json::from_value(json!({
        "id": "https://a.example/follows/1",
        "type": "Follow",
        "actor": "https://a.example/users/alice",
        "object": "https://b.example/users/bob"
    }))
    .unwrap();
    assert!(bare.context.is_null());
    assert_eq!(bare.inner, follow());
    assert!(serde_json::to_value(&bare).unwrap().get("@context").is_none());

    let compact: WithContext<Follow> = serde_json::from_value(json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://a.example/follows/1",
        "type": "Follow",
        "actor": "https://a.example/users/alice",
        "object": "https://b.example/users/bob"
    }))
    .unwrap();
    assert_eq!(compact.context, "https://www.w3.org/ns/activitystreams");
}
