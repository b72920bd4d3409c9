//! Test helpers: reading fixtures, and `check_included`, which asserts that what we serialise
//! is contained in the document we parsed (so every field we understood survives a round trip).

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use chrono::DateTime;
use ferry_protocol::context::{PUBLIC, WithContext};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

/// `protocol/tests/fixtures`.
pub(crate) fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every `<software>/<kind>.json` under the fixtures directory, sorted.
pub(crate) fn fixture_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for software in std::fs::read_dir(fixtures_dir()).expect("fixtures directory exists") {
        let software = software.expect("readable directory entry").path();
        if !software.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&software).expect("readable software directory") {
            let file = file.expect("readable directory entry").path();
            if file.extension().is_some_and(|ext| ext == "json") {
                files.push(file);
            }
        }
    }
    files.sort();
    files
}

/// `mastodon/create_note` for `.../fixtures/mastodon/create_note.json`.
pub(crate) fn fixture_name(path: &Path) -> String {
    let software = path.parent().and_then(Path::file_name).expect("fixture in a software dir");
    let stem = path.file_stem().expect("fixture file name");
    format!("{}/{}", software.to_string_lossy(), stem.to_string_lossy())
}

pub(crate) fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("readable fixture");
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: not JSON: {err}", path.display()))
}

/// Reads one fixture by name, e.g. `fixture("gotosocial/note_mention")`.
pub(crate) fn fixture(name: &str) -> Value {
    read_json(&fixtures_dir().join(format!("{name}.json")))
}

/// Parses `raw` as `T` (with its `@context`), and checks the two round-trip properties every
/// wire type keeps: what we serialise is included in `raw` (see [`check_included`]), and it
/// parses back to an equal value.
pub(crate) fn parse_and_round_trip<T>(raw: &Value) -> Result<T, String>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let parsed: WithContext<T> =
        serde_json::from_value(raw.clone()).map_err(|err| format!("does not parse: {err}"))?;
    let ours = serde_json::to_value(&parsed).map_err(|err| format!("does not serialise: {err}"))?;
    check_included(raw, &ours)?;
    let again: WithContext<T> = serde_json::from_value(ours)
        .map_err(|err| format!("our own output does not parse: {err}"))?;
    if again != parsed {
        return Err(format!("re-parsed output differs:\n{again:#?}\nvs\n{parsed:#?}"));
    }
    Ok(parsed.inner)
}

/// Whether everything in `ours` (our serialisation) appears in `raw` (the input).
///
/// "Appears" allows exactly the normalisations our parsing performs, so anything else that
/// differs is a bug (a renamed field, a value we invented):
/// - objects: every property we emit exists in the input with an included value, except our
///   documented defaults (`content: ""`, `manuallyApprovesFollowers: false`, `type: "Image"` /
///   `"Document"`, `totalItems: 0`), which may be absent or `null` in the input;
/// - arrays: our items appear in the input array in order (unknown tags and unreadable
///   attachments are dropped); a one-item array may stand for a single input value;
/// - a URL string may stand for an embedded object with that `id` or a `Link` with that `href`,
///   or for one entry of an input array (`attributedTo`, `url` arrays);
/// - strings compare as URLs (`https://a.example` = `https://a.example/`), as instants
///   (`+02:00` offsets, millisecond precision), and the public collection matches `as:Public`;
/// - numbers compare by value (`0` = `0.0`).
pub(crate) fn check_included(raw: &Value, ours: &Value) -> Result<(), String> {
    included(raw, ours, "$")
}

fn included(raw: &Value, ours: &Value, path: &str) -> Result<(), String> {
    if raw == ours {
        return Ok(());
    }
    let mismatch = || Err(format!("{path}: the input has {raw}, we emit {ours}"));
    match (raw, ours) {
        (Value::Object(raw_map), Value::Object(our_map)) => {
            for (key, value) in our_map {
                let here = format!("{path}.{key}");
                match raw_map.get(key) {
                    Some(Value::Null) | None if is_emitted_default(key, value) => {}
                    Some(raw_value) => included(raw_value, value, &here)?,
                    None => return Err(format!("{here}: we emit {value}, the input has nothing")),
                }
            }
            Ok(())
        }
        (Value::Array(raw_items), Value::Array(our_items)) => {
            let mut remaining = raw_items.iter();
            for (i, item) in our_items.iter().enumerate() {
                let here = format!("{path}[{i}]");
                if !remaining.any(|raw_item| included(raw_item, item, &here).is_ok()) {
                    return Err(format!("{here}: {item} is not in the input array {raw}"));
                }
            }
            Ok(())
        }
        (single, Value::Array(our_items)) if our_items.len() == 1 => {
            included(single, &our_items[0], path)
        }
        (Value::Object(raw_map), Value::String(reference)) => {
            let target = raw_map.get("id").or_else(|| raw_map.get("href"));
            match target {
                Some(Value::String(id)) if same_string(id, reference) => Ok(()),
                _ => mismatch(),
            }
        }
        (Value::Array(raw_items), Value::String(_)) => {
            if raw_items.iter().any(|raw_item| included(raw_item, ours, path).is_ok()) {
                Ok(())
            } else {
                mismatch()
            }
        }
        (Value::String(a), Value::String(b)) if same_string(a, b) => Ok(()),
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => Ok(()),
        _ => mismatch(),
    }
}

fn is_emitted_default(key: &str, value: &Value) -> bool {
    match (key, value) {
        ("content", Value::String(s)) => s.is_empty(),
        ("manuallyApprovesFollowers", Value::Bool(b)) => !b,
        ("type", Value::String(s)) => s == "Image" || s == "Document",
        ("totalItems", Value::Number(n)) => n.as_u64() == Some(0),
        _ => false,
    }
}

fn same_string(raw: &str, ours: &str) -> bool {
    if raw == ours {
        return true;
    }
    if ours == PUBLIC && (raw == "as:Public" || raw == "Public") {
        return true;
    }
    if let (Ok(a), Ok(b)) = (DateTime::parse_from_rfc3339(raw), DateTime::parse_from_rfc3339(ours))
    {
        return a == b;
    }
    matches!((Url::parse(raw), Url::parse(ours)), (Ok(a), Ok(b)) if a == b)
}

#[test]
fn check_included_accepts_the_documented_normalisations() {
    let raw = serde_json::json!({
        "id": "https://a.example",
        "to": "as:Public",
        "attributedTo": [{ "type": "Person", "id": "https://a.example/u/1" }],
        "published": "2021-10-20T12:40:37+02:00",
        "tag": [{ "type": "Unknown" }, { "type": "Mention", "href": "https://b.example/u/2" }],
        "focalPoint": [0, 1],
        "extra": true
    });
    let ours = serde_json::json!({
        "id": "https://a.example/",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "attributedTo": "https://a.example/u/1",
        "published": "2021-10-20T10:40:37Z",
        "tag": [{ "type": "Mention", "href": "https://b.example/u/2" }],
        "focalPoint": [0.0, 1.0],
        "content": "",
        "manuallyApprovesFollowers": false
    });
    check_included(&raw, &ours).unwrap();
}

#[test]
fn check_included_reports_invented_and_changed_values() {
    let raw = serde_json::json!({ "id": "https://a.example/1", "to": ["https://b.example/"] });
    let invented = serde_json::json!({ "id": "https://a.example/1", "name": "x" });
    let changed = serde_json::json!({ "id": "https://a.example/2" });
    let reordered = serde_json::json!({ "to": ["https://c.example/"] });
    assert!(check_included(&raw, &invented).unwrap_err().contains("$.name"));
    assert!(check_included(&raw, &changed).unwrap_err().contains("$.id"));
    assert!(check_included(&raw, &reordered).is_err());
}
