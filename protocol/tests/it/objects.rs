//! Objects built in code: what the node will construct and send.

use std::collections::BTreeMap;

use activitystreams_kinds::activity::{FollowType, UndoType};
use ferry_protocol::activities::{Follow, Undo, UndoObject};
use ferry_protocol::context::{PUBLIC, WithContext, public_url};
use ferry_protocol::objects::{
    ActorKind, Attachment, Endpoints, HasId, Image, Note, NoteKind, ObjectOrId, Person, PublicKey,
    Tag,
};
use serde_json::json;
use url::Url;

fn url(s: &str) -> Url {
    Url::parse(s).expect("test URLs are valid")
}

fn note() -> Note {
    Note {
        id: url("https://ferry.example/notes/1"),
        kind: NoteKind::Note,
        attributed_to: url("https://ferry.example/users/alice"),
        content: "<p>hello</p>".to_owned(),
        content_map: None,
        summary: None,
        sensitive: false,
        published: None,
        updated: None,
        to: vec![public_url()],
        cc: vec![url("https://ferry.example/users/alice/followers")],
        in_reply_to: None,
        url: None,
        tag: vec![Tag::Hashtag {
            href: Some(url("https://ferry.example/tags/ferry")),
            name: "#ferry".to_owned(),
        }],
        attachment: vec![Attachment {
            kind: "Document".to_owned(),
            media_type: Some("image/png".to_owned()),
            url: url("https://ferry.example/media/1.png"),
            name: Some("a boat".to_owned()),
            blurhash: None,
            width: Some(640),
            height: Some(480),
            focal_point: Some(vec![0.0, 0.5]),
        }],
        replies: None,
        conversation: None,
        name: None,
    }
}

#[test]
fn note_language_is_the_first_content_map_key() {
    let mut note = note();
    assert_eq!(note.language(), None);
    note.content_map = Some(BTreeMap::new());
    assert_eq!(note.language(), None);
    note.content_map = Some(BTreeMap::from([("de".to_owned(), "<p>hallo</p>".to_owned())]));
    assert_eq!(note.language(), Some("de"));
}

#[test]
fn note_serialises_in_mastodon_shape() {
    let value = serde_json::to_value(WithContext::new(note())).unwrap();
    assert_eq!(value["type"], "Note");
    assert_eq!(value["attributedTo"], "https://ferry.example/users/alice");
    assert_eq!(value["to"], json!([PUBLIC]));
    assert_eq!(
        value["tag"][0],
        json!({
            "type": "Hashtag",
            "href": "https://ferry.example/tags/ferry",
            "name": "#ferry"
        })
    );
    assert_eq!(value["attachment"][0]["focalPoint"], json!([0.0, 0.5]));
    assert_eq!(value["attachment"][0]["mediaType"], "image/png");
    // Defaults that carry no information are left out, except `content`.
    for absent in ["sensitive", "summary", "inReplyTo", "contentMap", "published", "replies"] {
        assert!(value.get(absent).is_none(), "{absent} should be omitted");
    }
    let back: WithContext<Note> = serde_json::from_value(value).unwrap();
    assert_eq!(back.inner, note());
}

#[test]
fn person_always_says_whether_it_is_locked() {
    let person = Person {
        id: url("https://ferry.example/users/alice"),
        kind: ActorKind::Person,
        preferred_username: "alice".to_owned(),
        name: None,
        summary: None,
        inbox: url("https://ferry.example/users/alice/inbox"),
        outbox: None,
        followers: None,
        following: None,
        featured: None,
        endpoints: Some(Endpoints { shared_inbox: Some(url("https://ferry.example/inbox")) }),
        public_key: PublicKey {
            id: url("https://ferry.example/users/alice#main-key"),
            owner: url("https://ferry.example/users/alice"),
            public_key_pem: "-----BEGIN PUBLIC KEY-----\n...".to_owned(),
        },
        icon: Some(Image {
            kind: "Image".to_owned(),
            url: url("https://ferry.example/media/avatar.png"),
            media_type: None,
        }),
        image: None,
        url: None,
        manually_approves_followers: false,
        discoverable: None,
        indexable: None,
        published: None,
        also_known_as: vec![],
        moved_to: None,
        attachment: vec![],
    };
    let value = serde_json::to_value(&person).unwrap();
    assert_eq!(value["manuallyApprovesFollowers"], false);
    assert_eq!(value["preferredUsername"], "alice");
    assert_eq!(value["publicKey"]["publicKeyPem"], "-----BEGIN PUBLIC KEY-----\n...");
    assert_eq!(value["endpoints"]["sharedInbox"], "https://ferry.example/inbox");
    assert!(value.get("alsoKnownAs").is_none());
    assert_eq!(person.id(), &url("https://ferry.example/users/alice"));
    assert_eq!(serde_json::from_value::<Person>(value).unwrap(), person);
}

#[test]
fn object_or_id_knows_the_id_either_way() {
    let follow = Follow {
        id: url("https://ferry.example/follows/1"),
        kind: FollowType::Follow,
        actor: url("https://ferry.example/users/alice"),
        object: url("https://b.example/users/bob"),
        to: vec![],
        cc: vec![],
        published: None,
    };
    let embedded = ObjectOrId::Object(follow.clone());
    let bare: ObjectOrId<Follow> = ObjectOrId::Id(follow.id.clone());
    assert_eq!(embedded.id(), bare.id());
    assert_eq!(embedded.object(), Some(&follow));
    assert_eq!(bare.object(), None);
    assert_eq!(serde_json::to_value(&bare).unwrap(), json!("https://ferry.example/follows/1"));

    let undo = Undo {
        id: url("https://ferry.example/follows/1/undo"),
        kind: UndoType::Undo,
        actor: follow.actor.clone(),
        object: UndoObject::Follow(follow),
        to: vec![],
        cc: vec![],
        published: None,
    };
    assert_eq!(undo.object.id(), &url("https://ferry.example/follows/1"));
    let value = serde_json::to_value(&undo).unwrap();
    assert_eq!(value["object"]["type"], "Follow");
    assert_eq!(serde_json::from_value::<Undo>(value).unwrap(), undo);
}
