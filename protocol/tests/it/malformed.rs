//! Malformed and hostile input: every parse returns `Err` (or drops the bad part), never panics.

use ferry_protocol::activities::{
    Accept, Announce, Block, Create, Delete, Follow, Like, Move, Reject, Undo, Update,
};
use ferry_protocol::nodeinfo::NodeInfo;
use ferry_protocol::objects::{Note, Person, Tombstone};
use ferry_protocol::webfinger::Jrd;
use serde_json::{Value, json};

use crate::support::{fixture, fixture_files, read_json};

fn follow() -> Value {
    json!({
        "id": "https://a.example/follows/1",
        "type": "Follow",
        "actor": "https://a.example/users/alice",
        "object": "https://b.example/users/bob"
    })
}

fn with(mut value: Value, key: &str, replacement: Value) -> Value {
    value[key] = replacement;
    value
}

fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().expect("an object").remove(key);
    value
}

#[test]
fn follow_requires_a_valid_id_type_actor_and_object() {
    assert!(serde_json::from_value::<Follow>(follow()).is_ok());
    for key in ["id", "type", "actor", "object"] {
        assert!(serde_json::from_value::<Follow>(without(follow(), key)).is_err(), "no {key}");
    }
    for (key, bad) in [
        ("id", json!("not a url")),
        ("id", json!(null)),
        ("type", json!("Like")),
        ("type", json!(["Follow"])),
        ("actor", json!(42)),
        ("actor", json!([])),
        ("actor", json!({ "type": "Person" })),
        ("object", json!("mailto")),
    ] {
        let doc = with(follow(), key, bad.clone());
        assert!(serde_json::from_value::<Follow>(doc).is_err(), "{key} = {bad}");
    }
}

#[test]
fn broken_json_is_an_error() {
    for text in ["", "{", "[]", "null", "\"Follow\"", "{\"type\": \"Follow\"", "{}"] {
        assert!(serde_json::from_str::<Follow>(text).is_err(), "{text:?}");
        assert!(serde_json::from_str::<Person>(text).is_err(), "{text:?}");
        assert!(serde_json::from_str::<Note>(text).is_err(), "{text:?}");
    }
}

#[test]
fn activities_reject_objects_of_the_wrong_shape() {
    // Create needs the note embedded; a bare URL (as in GoToSocial outbox pages) is not enough.
    let create = json!({
        "id": "https://a.example/notes/1/activity",
        "type": "Create",
        "actor": "https://a.example/users/alice",
        "object": "https://a.example/notes/1"
    });
    assert!(serde_json::from_value::<Create>(create).is_err());

    // An Undo of something we do not speak matches no variant.
    let undo = json!({
        "id": "https://a.example/undo/1",
        "type": "Undo",
        "actor": "https://a.example/users/alice",
        "object": {
            "id": "https://a.example/reactions/1",
            "type": "EmojiReact",
            "actor": "https://a.example/users/alice",
            "object": "https://b.example/notes/1"
        }
    });
    assert!(serde_json::from_value::<Undo>(undo).is_err());

    // An Accept of a Like request is not an Accept of a Follow.
    let accept = json!({
        "id": "https://a.example/accepts/1",
        "type": "Accept",
        "actor": "https://a.example/users/alice",
        "object": {
            "id": "https://b.example/likes/1",
            "type": "Like",
            "actor": "https://b.example/users/bob",
            "object": "https://a.example/notes/1"
        }
    });
    assert!(serde_json::from_value::<Accept>(accept).is_err());

    // An Update carrying something that is neither a post nor an actor.
    let update = json!({
        "id": "https://a.example/updates/1",
        "type": "Update",
        "actor": "https://a.example/users/alice",
        "object": { "id": "https://a.example/things/1", "type": "Event" }
    });
    assert!(serde_json::from_value::<Update>(update).is_err());
}

#[test]
fn actors_require_inbox_key_and_username() {
    let actor = fixture("mastodon/actor");
    assert!(serde_json::from_value::<Person>(actor.clone()).is_ok());
    for key in ["id", "type", "inbox", "publicKey", "preferredUsername"] {
        assert!(serde_json::from_value::<Person>(without(actor.clone(), key)).is_err(), "{key}");
    }
    let wrong_kind = with(actor.clone(), "type", json!("Note"));
    assert!(serde_json::from_value::<Person>(wrong_kind).is_err());
    let bad_key = with(actor, "publicKey", json!({ "id": "https://a.example/k" }));
    assert!(serde_json::from_value::<Person>(bad_key).is_err());
}

#[test]
fn notes_drop_unreadable_decoration_but_not_authorship() {
    let note = json!({
        "id": "https://a.example/notes/1",
        "type": "Note",
        "attributedTo": "https://a.example/users/alice",
        "content": "<p>hi</p>",
        "inReplyTo": "not a url",
        "url": 17,
        "tag": [{ "type": "Mention" }, { "type": "Quote", "href": "https://x.example" }],
        "attachment": { "type": "Document" },
        "to": ["as:Public", 3]
    });
    let parsed: Note = serde_json::from_value(note.clone()).unwrap();
    assert_eq!(parsed.in_reply_to, None);
    assert_eq!(parsed.url, None);
    assert!(parsed.tag.is_empty());
    assert!(parsed.attachment.is_empty());
    assert_eq!(parsed.to.len(), 1);

    assert!(serde_json::from_value::<Note>(without(note.clone(), "attributedTo")).is_err());
    let forged = with(note, "attributedTo", json!({ "name": "no id" }));
    assert!(serde_json::from_value::<Note>(forged).is_err());
}

/// Parses `value` as every document type; the point is that none of them panics.
fn parse_as_everything(value: &Value) {
    macro_rules! try_all {
        ($($ty:ty),+ $(,)?) => {
            $(let _ = serde_json::from_value::<$ty>(value.clone());)+
        };
    }
    try_all!(
        Person, Note, Tombstone, Follow, Accept, Reject, Undo, Create, Update, Delete, Announce,
        Like, Block, Move, NodeInfo, Jrd,
    );
}

fn mutations(value: &Value) -> Vec<Value> {
    let replacements =
        [json!(null), json!(1), json!(-1.5), json!("x"), json!([]), json!({}), json!([[{}]])];
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            for key in map.keys() {
                let mut removed = map.clone();
                removed.remove(key);
                out.push(Value::Object(removed));
                for replacement in &replacements {
                    let mut replaced = map.clone();
                    replaced.insert(key.clone(), replacement.clone());
                    out.push(Value::Object(replaced));
                }
                // One level down: the embedded object of an activity, `publicKey`, `icon`...
                for nested in mutations(&map[key]) {
                    if !nested.is_object() {
                        continue;
                    }
                    let mut replaced = map.clone();
                    replaced.insert(key.clone(), nested);
                    out.push(Value::Object(replaced));
                }
            }
        }
        _ => out.extend(replacements),
    }
    out
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut documents = 0;
    for path in fixture_files() {
        let raw = read_json(&path);
        for mutated in mutations(&raw) {
            parse_as_everything(&mutated);
            documents += 1;
        }
    }
    assert!(documents > 1000, "only {documents} mutated documents tried");
}
