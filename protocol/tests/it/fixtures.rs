//! Recorded documents from Mastodon, GoToSocial, Akkoma/Pleroma, Misskey and Lemmy: each
//! parses into the type its file name says, survives a round trip, and lands on its own
//! variant of an untagged enum over all activity types (as the node's `AnyActivity` is).
//!
//! File names are `<kind>[_<detail>].json`; `KINDS` maps the kind prefix to the type.
//! `tests/fixtures/README.md` says where each document comes from.

use std::collections::BTreeSet;

use ferry_protocol::activities::{
    Accept, Announce, Block, Create, Delete, Follow, Like, Move, Reject, Undo, UndoObject, Update,
    UpdateObject,
};
use ferry_protocol::context::public_url;
use ferry_protocol::nodeinfo::{NodeInfo, NodeInfoLinks};
use ferry_protocol::objects::{
    ActorKind, HasId, Note, NoteKind, ObjectOrId, OrderedCollection, OrderedCollectionPage, Person,
    Tag, Tombstone,
};
use ferry_protocol::webfinger::Jrd;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::support::{fixture, fixture_files, fixture_name, parse_and_round_trip, read_json};

/// What a fixture must parse as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Actor,
    Note,
    Tombstone,
    Create,
    UpdatePerson,
    UpdateNote,
    Follow,
    Accept,
    Reject,
    UndoFollow,
    UndoLike,
    UndoAnnounce,
    UndoBlock,
    UndoById,
    Like,
    Announce,
    Delete,
    Block,
    Move,
    CollectionPage,
    Collection,
    NodeInfoLinks,
    NodeInfo,
    Webfinger,
}

/// File-name prefixes, longest first where one is a prefix of another.
const KINDS: &[(&str, Kind)] = &[
    ("actor", Kind::Actor),
    ("note", Kind::Note),
    ("tombstone", Kind::Tombstone),
    ("create", Kind::Create),
    ("update_person", Kind::UpdatePerson),
    ("update_note", Kind::UpdateNote),
    ("follow", Kind::Follow),
    ("accept", Kind::Accept),
    ("reject", Kind::Reject),
    ("undo_follow", Kind::UndoFollow),
    ("undo_like_by_id", Kind::UndoById),
    ("undo_like", Kind::UndoLike),
    ("undo_announce", Kind::UndoAnnounce),
    ("undo_block", Kind::UndoBlock),
    ("like", Kind::Like),
    ("announce", Kind::Announce),
    ("delete", Kind::Delete),
    ("block", Kind::Block),
    ("move", Kind::Move),
    ("collection_page", Kind::CollectionPage),
    ("collection", Kind::Collection),
    ("nodeinfo_links", Kind::NodeInfoLinks),
    ("nodeinfo", Kind::NodeInfo),
    ("webfinger", Kind::Webfinger),
];

fn kind_of(stem: &str) -> Option<Kind> {
    KINDS.iter().find(|(prefix, _)| stem.starts_with(prefix)).map(|(_, kind)| *kind)
}

/// Every activity type, untagged, in the order the node's `AnyActivity` is likely to use.
// Parsed once per fixture; the size difference between variants does not matter here.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum AnyActivity {
    Follow(Follow),
    Accept(Accept),
    Reject(Reject),
    Undo(Undo),
    Create(Create),
    Update(Update),
    Delete(Delete),
    Announce(Announce),
    Like(Like),
    Block(Block),
    Move(Move),
}

impl AnyActivity {
    fn name(&self) -> &'static str {
        match self {
            AnyActivity::Follow(_) => "Follow",
            AnyActivity::Accept(_) => "Accept",
            AnyActivity::Reject(_) => "Reject",
            AnyActivity::Undo(_) => "Undo",
            AnyActivity::Create(_) => "Create",
            AnyActivity::Update(_) => "Update",
            AnyActivity::Delete(_) => "Delete",
            AnyActivity::Announce(_) => "Announce",
            AnyActivity::Like(_) => "Like",
            AnyActivity::Block(_) => "Block",
            AnyActivity::Move(_) => "Move",
        }
    }
}

fn undo_object_is(undo: &Undo, expected: &str) -> Result<(), String> {
    let actual = match &undo.object {
        UndoObject::Follow(_) => "Follow",
        UndoObject::Like(_) => "Like",
        UndoObject::Announce(_) => "Announce",
        UndoObject::Block(_) => "Block",
        UndoObject::Id(_) => "Id",
    };
    if actual == expected {
        Ok(())
    } else {
        Err(format!("Undo object parsed as {actual}, expected {expected}"))
    }
}

/// Parses one fixture as its kind; returns the activity type name for activities.
fn check(kind: Kind, raw: &Value) -> Result<Option<&'static str>, String> {
    let activity = match kind {
        Kind::Actor => {
            actor_keeps(raw, &parse_and_round_trip::<Person>(raw)?)?;
            None
        }
        Kind::Note => {
            note_keeps(raw, &parse_and_round_trip::<Note>(raw)?)?;
            None
        }
        Kind::Tombstone => {
            parse_and_round_trip::<Tombstone>(raw)?;
            None
        }
        Kind::Create => {
            let create = parse_and_round_trip::<Create>(raw)?;
            note_keeps(&raw["object"], &create.object)?;
            Some("Create")
        }
        Kind::UpdatePerson | Kind::UpdateNote => {
            let update = parse_and_round_trip::<Update>(raw)?;
            match (&update.object, kind) {
                (UpdateObject::Person(person), Kind::UpdatePerson) => {
                    actor_keeps(&raw["object"], person)?;
                }
                (UpdateObject::Note(note), Kind::UpdateNote) => note_keeps(&raw["object"], note)?,
                (object, _) => return Err(format!("Update object parsed as {object:?}")),
            }
            Some("Update")
        }
        Kind::Follow => {
            parse_and_round_trip::<Follow>(raw)?;
            Some("Follow")
        }
        Kind::Accept => {
            parse_and_round_trip::<Accept>(raw)?;
            Some("Accept")
        }
        Kind::Reject => {
            parse_and_round_trip::<Reject>(raw)?;
            Some("Reject")
        }
        Kind::UndoFollow
        | Kind::UndoLike
        | Kind::UndoAnnounce
        | Kind::UndoBlock
        | Kind::UndoById => {
            let undo = parse_and_round_trip::<Undo>(raw)?;
            undo_object_is(
                &undo,
                match kind {
                    Kind::UndoFollow => "Follow",
                    Kind::UndoLike => "Like",
                    Kind::UndoAnnounce => "Announce",
                    Kind::UndoBlock => "Block",
                    _ => "Id",
                },
            )?;
            Some("Undo")
        }
        Kind::Like => {
            parse_and_round_trip::<Like>(raw)?;
            Some("Like")
        }
        Kind::Announce => {
            parse_and_round_trip::<Announce>(raw)?;
            Some("Announce")
        }
        Kind::Delete => {
            parse_and_round_trip::<Delete>(raw)?;
            Some("Delete")
        }
        Kind::Block => {
            parse_and_round_trip::<Block>(raw)?;
            Some("Block")
        }
        Kind::Move => {
            parse_and_round_trip::<Move>(raw)?;
            Some("Move")
        }
        Kind::CollectionPage => {
            parse_and_round_trip::<OrderedCollectionPage<Value>>(raw)?;
            None
        }
        Kind::Collection => {
            parse_and_round_trip::<OrderedCollection<Value>>(raw)?;
            None
        }
        Kind::NodeInfoLinks => {
            parse_and_round_trip::<NodeInfoLinks>(raw)?;
            None
        }
        Kind::NodeInfo => {
            parse_and_round_trip::<NodeInfo>(raw)?;
            None
        }
        Kind::Webfinger => {
            parse_and_round_trip::<Jrd>(raw)?;
            None
        }
    };
    if let Some(expected) = activity {
        let any: AnyActivity = serde_json::from_value(raw.clone())
            .map_err(|err| format!("does not parse as AnyActivity: {err}"))?;
        if any.name() != expected {
            return Err(format!("AnyActivity picked {}, expected {expected}", any.name()));
        }
    }
    Ok(activity)
}

/// The round trip shows we invent nothing; these show we lose nothing we model: a property
/// the input has in a form we read must come out parsed.
fn note_keeps(raw: &Value, note: &Note) -> Result<(), String> {
    let mut lost = Vec::new();
    let present = |key: &str| raw.get(key).is_some_and(|v| !v.is_null());
    if raw["inReplyTo"].is_string() && note.in_reply_to.is_none() {
        lost.push("inReplyTo");
    }
    if raw["content"].as_str().is_some_and(|c| !c.is_empty()) && note.content.is_empty() {
        lost.push("content");
    }
    for (key, kept) in [
        ("url", note.url.is_some()),
        ("published", note.published.is_some()),
        ("updated", note.updated.is_some()),
        ("contentMap", note.content_map.is_some()),
        ("summary", note.summary.is_some()),
        ("replies", note.replies.is_some()),
    ] {
        if present(key) && !kept {
            lost.push(key);
        }
    }
    if raw["sensitive"] == true && !note.sensitive {
        lost.push("sensitive");
    }
    if strings(&raw["to"]) != note.to.len() {
        lost.push("to");
    }
    if strings(&raw["cc"]) != note.cc.len() {
        lost.push("cc");
    }
    for (kind, kept) in [
        ("Mention", note.tag.iter().filter(|t| matches!(t, Tag::Mention { .. })).count()),
        ("Hashtag", note.tag.iter().filter(|t| matches!(t, Tag::Hashtag { .. })).count()),
        ("Emoji", note.tag.iter().filter(|t| matches!(t, Tag::Emoji { .. })).count()),
    ] {
        let sent = list(&raw["tag"]).filter(|tag| tag["type"] == kind).count();
        if sent != kept {
            lost.push(kind);
        }
    }
    let media = list(&raw["attachment"])
        .filter(|a| a["url"].is_string() || a["url"]["href"].is_string())
        .count();
    if media != note.attachment.len() {
        lost.push("attachment");
    }
    if lost.is_empty() { Ok(()) } else { Err(format!("note lost {lost:?}")) }
}

fn actor_keeps(raw: &Value, person: &Person) -> Result<(), String> {
    let mut lost = Vec::new();
    for (key, kept) in [
        ("name", person.name.is_some()),
        ("summary", person.summary.is_some()),
        ("outbox", person.outbox.is_some()),
        ("followers", person.followers.is_some()),
        ("following", person.following.is_some()),
        ("featured", person.featured.is_some()),
        ("url", person.url.is_some()),
        ("published", person.published.is_some()),
        ("discoverable", person.discoverable.is_some()),
        ("movedTo", person.moved_to.is_some()),
    ] {
        if (raw[key].is_string() || raw[key].is_boolean()) && !kept {
            lost.push(key);
        }
    }
    for (key, kept) in [("icon", person.icon.is_some()), ("image", person.image.is_some())] {
        if raw[key]["url"].is_string() && !kept {
            lost.push(key);
        }
    }
    let shared_inbox = person.endpoints.as_ref().and_then(|e| e.shared_inbox.as_ref());
    if raw["endpoints"]["sharedInbox"].is_string() && shared_inbox.is_none() {
        lost.push("sharedInbox");
    }
    if strings(&raw["alsoKnownAs"]) != person.also_known_as.len() {
        lost.push("alsoKnownAs");
    }
    if list(&raw["attachment"]).count() != person.attachment.len() {
        lost.push("attachment");
    }
    if raw["manuallyApprovesFollowers"] == true && !person.manually_approves_followers {
        lost.push("manuallyApprovesFollowers");
    }
    if lost.is_empty() { Ok(()) } else { Err(format!("actor lost {lost:?}")) }
}

/// The items of a one-or-many property.
fn list(value: &Value) -> impl Iterator<Item = &Value> {
    match value {
        Value::Array(items) => items.iter().collect::<Vec<_>>().into_iter(),
        Value::Null => Vec::new().into_iter(),
        single => vec![single].into_iter(),
    }
}

/// How many entries of a one-or-many property are strings (addressing entries).
fn strings(value: &Value) -> usize {
    list(value).filter(|item| item.is_string()).count()
}

#[test]
fn every_fixture_parses_as_its_kind_and_round_trips() {
    let files = fixture_files();
    assert!(files.len() >= 60, "fixtures went missing: only {} found", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let name = fixture_name(path);
        let stem = path.file_stem().expect("file name").to_string_lossy().into_owned();
        let Some(kind) = kind_of(&stem) else {
            failures.push(format!("{name}: no kind for this file name (see KINDS)"));
            continue;
        };
        if let Err(err) = check(kind, &read_json(path)) {
            failures.push(format!("{name} ({kind:?}): {err}"));
        }
    }
    assert!(failures.is_empty(), "{} fixture(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_server_has_the_core_kinds() {
    const CORE: &[&str] = &[
        "actor",
        "create_note",
        "follow",
        "accept",
        "undo_follow",
        "like",
        "announce",
        "delete_note",
        "delete_person",
        "update_person",
        "move",
    ];
    // Lemmy has no account migration, so it never sends `Move`.
    const NOT_SENT: &[(&str, &str)] = &[("lemmy", "move")];

    let present: BTreeSet<String> = fixture_files().iter().map(|path| fixture_name(path)).collect();
    let mut missing = Vec::new();
    for software in ["mastodon", "gotosocial", "akkoma", "misskey", "lemmy"] {
        for kind in CORE {
            let name = format!("{software}/{kind}");
            if !present.contains(&name) && !NOT_SENT.contains(&(software, kind)) {
                missing.push(name);
            }
        }
    }
    assert!(missing.is_empty(), "missing fixtures: {missing:?}");
}

fn parse<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_value(fixture(name)).unwrap_or_else(|err| panic!("{name}: {err}"))
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("test URLs are valid")
}

#[test]
fn gotosocial_single_valued_properties_become_lists() {
    let note: Note = parse("gotosocial/note_mention");
    assert_eq!(note.to, vec![public_url()]);
    assert_eq!(note.cc.len(), 2);
    assert_eq!(
        note.tag,
        vec![Tag::Mention {
            href: url("http://localhost:8080/users/the_mighty_zork"),
            name: Some("@the_mighty_zork@localhost:8080".to_owned()),
        }]
    );
    assert_eq!(note.language(), Some("en"));
    assert_eq!(note.summary.as_deref(), Some(""));

    let moved: Move = parse("gotosocial/move");
    assert_eq!(moved.to, vec![url("https://example.org/users/1happyturtle/followers")]);
    assert_eq!(moved.actor, moved.object);
}

#[test]
fn gotosocial_actor_carries_aliases_and_move() {
    let person: Person = parse("gotosocial/actor");
    assert_eq!(person.kind, ActorKind::Person);
    assert_eq!(person.also_known_as, vec![url("http://localhost:8080/users/1happyturtle")]);
    assert_eq!(person.moved_to, Some(url("http://localhost:8080/users/1happyturtle")));
    assert_eq!(person.public_key.owner, person.id);
}

#[test]
fn mastodon_create_note_keeps_what_the_node_needs() {
    let create: Create = parse("mastodon/create_note");
    let note = &create.object;
    assert_eq!(note.kind, NoteKind::Note);
    assert_eq!(note.attributed_to, create.actor);
    assert_eq!(note.language(), Some("en"));
    assert!(note.cc.contains(&public_url()), "unlisted post: public in cc");
    assert_eq!(
        note.in_reply_to,
        Some(url("https://mamot.fr/users/retiolus/statuses/107224244380204526"))
    );
    assert!(note.conversation.as_deref().is_some_and(|c| c.starts_with("tag:mamot.fr")));
    assert!(matches!(note.tag.as_slice(), [Tag::Mention { .. }]));
}

#[test]
fn deletes_keep_only_the_deleted_id() {
    let tombstone: Delete = parse("mastodon/delete_note");
    assert_eq!(
        tombstone.object,
        url("https://mastodon.madrid/users/felix/statuses/107773559874184870")
    );
    let account: Delete = parse("mastodon/delete_person");
    assert_eq!(account.object, account.actor);
    let bare: Delete = parse("lemmy/delete_person");
    assert_eq!(bare.object, bare.actor);
}

#[test]
fn accept_and_undo_take_embedded_objects_or_ids() {
    let accept: Accept = parse("mastodon/accept");
    assert!(matches!(accept.object, ObjectOrId::Object(_)));
    assert_eq!(accept.object.id(), &url("http://localtesting.pleroma.lol/users/lain#follows/4"));
    assert_eq!(accept.object.object().map(|follow| &follow.object), Some(&accept.actor));

    let undo: Undo = parse("mastodon/undo_like_by_id");
    let liked = url("http://mastodon.example.org/users/admin#likes/2");
    assert_eq!(undo.object.id(), &liked);
    assert_eq!(undo.object, UndoObject::Id(liked));
}

#[test]
fn group_announces_keep_the_announced_activity_id() {
    let announce: Announce = parse("lemmy/announce");
    assert_eq!(
        announce.object,
        url("http://enterprise.lemmy.ml/activities/create/2807c9ec-3ad8-4859-a9e0-28b59b6e499f")
    );
}

#[test]
fn misskey_nulls_read_as_absent() {
    let person: Person = parse("misskey/actor");
    assert_eq!(person.name, None);
    assert_eq!(person.icon, None);
    assert!(person.manually_approves_followers);
    assert_eq!(
        person.endpoints.and_then(|e| e.shared_inbox),
        Some(url("https://misskey.usbharu.dev/inbox"))
    );

    let like: Like = parse("misskey/like");
    assert_eq!(like.content.as_deref(), Some(":hanapog:"));
}

#[test]
fn akkoma_null_sensitive_reads_as_false() {
    let create: Create = parse("akkoma/create_note");
    assert!(!create.object.sensitive);
    assert_eq!(create.object.summary.as_deref(), Some(""));
}

#[test]
fn lemmy_group_updates_parse_as_actors() {
    let update: Update = parse("lemmy/update_person");
    let UpdateObject::Person(group) = &update.object else {
        panic!("expected an actor, got {:?}", update.object);
    };
    assert_eq!(group.kind, ActorKind::Group);
    assert_eq!(update.object.id(), &url("http://enterprise.lemmy.ml/c/main"));
}

#[test]
fn collections_parse_with_typed_items() {
    let featured: OrderedCollection<Url> = parse("gotosocial/collection_featured");
    assert_eq!(featured.total_items, 3);
    assert_eq!(featured.ordered_items.as_ref().map(Vec::len), Some(3));
    assert_eq!(featured.id(), &url("https://example.org/users/some_user/collections/featured"));
}

#[test]
fn nodeinfo_and_webfinger_documents_parse() {
    let nodeinfo: NodeInfo = parse("mastodon/nodeinfo");
    assert_eq!(nodeinfo.software.name, "mastodon");
    assert!(nodeinfo.protocols.iter().any(|p| p == "activitypub"));

    let links: NodeInfoLinks = parse("mastodon/nodeinfo_links");
    assert!(links.links.iter().any(|link| link.rel.contains("nodeinfo.diaspora.software")));

    for name in ["mastodon/webfinger", "akkoma/webfinger"] {
        let jrd: Jrd = parse(name);
        assert!(jrd.self_link().is_some(), "{name}: no self link");
    }
}
