//! The `lenient` serde helpers, each on the shapes real servers send.

use ferry_protocol::context::public_url;
use ferry_protocol::lenient;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

fn url(s: &str) -> Url {
    Url::parse(s).expect("test URLs are valid")
}

#[derive(Debug, Deserialize)]
struct Many {
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    items: Vec<u32>,
}

#[test]
fn one_or_many_accepts_one_many_null_and_absent() {
    let parse = |v: Value| serde_json::from_value::<Many>(v).map(|m| m.items);
    assert_eq!(parse(json!({ "items": 1 })).unwrap(), vec![1]);
    assert_eq!(parse(json!({ "items": [1, 2] })).unwrap(), vec![1, 2]);
    assert_eq!(parse(json!({ "items": [] })).unwrap(), Vec::<u32>::new());
    assert_eq!(parse(json!({ "items": null })).unwrap(), Vec::<u32>::new());
    assert_eq!(parse(json!({})).unwrap(), Vec::<u32>::new());
    assert!(parse(json!({ "items": [1, "two"] })).is_err(), "bad items fail the document");
    assert!(parse(json!({ "items": "one" })).is_err());
}

#[derive(Debug, Deserialize)]
struct Skipping {
    #[serde(default, deserialize_with = "lenient::skip_invalid")]
    items: Vec<u32>,
    #[serde(default, deserialize_with = "lenient::first_valid")]
    first: Option<u32>,
}

#[test]
fn skip_invalid_drops_items_that_do_not_parse() {
    let parse = |v: Value| serde_json::from_value::<Skipping>(v).unwrap();
    assert_eq!(parse(json!({ "items": [1, "two", { "x": 3 }, 4] })).items, vec![1, 4]);
    assert_eq!(parse(json!({ "items": "one" })).items, Vec::<u32>::new());
    assert_eq!(parse(json!({ "items": 5 })).items, vec![5]);
    assert_eq!(parse(json!({ "items": null })).items, Vec::<u32>::new());
    assert_eq!(parse(json!({ "first": ["x", 7, 8] })).first, Some(7));
    assert_eq!(parse(json!({ "first": "x" })).first, None);
    assert_eq!(parse(json!({ "first": null })).first, None);
}

#[derive(Debug, Deserialize)]
struct Defaulted {
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    flag: bool,
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    text: String,
}

#[test]
fn null_as_default_treats_null_like_absent() {
    let parse = |v: Value| serde_json::from_value::<Defaulted>(v);
    let nulls = parse(json!({ "flag": null, "text": null })).unwrap();
    assert!(!nulls.flag);
    assert_eq!(nulls.text, "");
    let set = parse(json!({ "flag": true, "text": "hi" })).unwrap();
    assert!(set.flag);
    assert_eq!(set.text, "hi");
    assert!(parse(json!({ "flag": "yes" })).is_err());
}

#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(deserialize_with = "lenient::id_of")]
    id: Url,
}

#[test]
fn id_of_reads_urls_objects_and_actor_arrays() {
    let parse = |v: Value| serde_json::from_value::<Reference>(json!({ "id": v })).map(|r| r.id);
    assert_eq!(parse(json!("https://a.example/u/1")).unwrap(), url("https://a.example/u/1"));
    assert_eq!(
        parse(json!({ "type": "Person", "id": "https://a.example/u/1" })).unwrap(),
        url("https://a.example/u/1")
    );
    // PeerTube: the account first, then the channel.
    assert_eq!(
        parse(json!([
            { "type": "Person", "id": "https://p.example/accounts/a" },
            { "type": "Group", "id": "https://p.example/video-channels/c" }
        ]))
        .unwrap(),
        url("https://p.example/accounts/a")
    );
    // Entries that are not actors (a collection, say) lose to ones that are.
    assert_eq!(
        parse(json!([
            { "type": "Collection", "id": "https://a.example/c/1" },
            "https://a.example/u/2"
        ]))
        .unwrap(),
        url("https://a.example/u/2")
    );
    assert_eq!(
        parse(json!([{ "type": "Collection", "id": "https://a.example/c/1" }])).unwrap(),
        url("https://a.example/c/1")
    );
}

#[test]
fn id_of_rejects_what_is_not_a_reference() {
    let parse = |v: Value| serde_json::from_value::<Reference>(json!({ "id": v }));
    for bad in [
        json!(null),
        json!("not a url"),
        json!("/relative/path"),
        json!(42),
        json!([]),
        json!({ "type": "Person" }),
        json!({ "id": 7 }),
        json!([null, 3]),
    ] {
        assert!(parse(bad.clone()).is_err(), "{bad} is not a reference");
    }
    assert!(serde_json::from_value::<Reference>(json!({})).is_err(), "id_of is required");
}

#[derive(Debug, Deserialize)]
struct OptionalReference {
    #[serde(default, deserialize_with = "lenient::opt_id_of")]
    in_reply_to: Option<Url>,
}

#[test]
fn opt_id_of_falls_back_to_none() {
    let parse = |v: Value| serde_json::from_value::<OptionalReference>(v).unwrap().in_reply_to;
    assert_eq!(parse(json!({})), None);
    assert_eq!(parse(json!({ "in_reply_to": null })), None);
    assert_eq!(parse(json!({ "in_reply_to": "not a url" })), None);
    assert_eq!(parse(json!({ "in_reply_to": 3 })), None);
    assert_eq!(
        parse(json!({ "in_reply_to": "https://a.example/n/1" })),
        Some(url("https://a.example/n/1"))
    );
    assert_eq!(
        parse(json!({ "in_reply_to": { "id": "https://a.example/n/1", "type": "Note" } })),
        Some(url("https://a.example/n/1"))
    );
}

#[derive(Debug, Deserialize)]
struct Link {
    #[serde(default, deserialize_with = "lenient::url_of")]
    url: Option<Url>,
}

#[test]
fn url_of_prefers_html_links() {
    let parse = |v: Value| serde_json::from_value::<Link>(json!({ "url": v })).unwrap().url;
    assert_eq!(parse(json!("https://a.example/@alice")), Some(url("https://a.example/@alice")));
    assert_eq!(
        parse(json!({ "type": "Link", "href": "https://a.example/@alice" })),
        Some(url("https://a.example/@alice"))
    );
    assert_eq!(
        parse(json!([
            { "type": "Link", "mediaType": "video/mp4", "href": "https://p.example/v.mp4" },
            { "type": "Link", "mediaType": "text/html; charset=utf-8", "href": "https://p.example/w/1" }
        ])),
        Some(url("https://p.example/w/1"))
    );
    assert_eq!(
        parse(json!(["not a url", "https://a.example/1", "https://a.example/2"])),
        Some(url("https://a.example/1"))
    );
    assert_eq!(parse(json!(null)), None);
    assert_eq!(parse(json!("not a url")), None);
    assert_eq!(parse(json!({ "type": "Link" })), None);
}

#[derive(Debug, Deserialize)]
struct Media {
    #[serde(deserialize_with = "lenient::required_url_of")]
    url: Url,
}

#[test]
fn required_url_of_fails_without_a_usable_url() {
    let parse = |v: Value| serde_json::from_value::<Media>(json!({ "url": v })).map(|m| m.url);
    assert_eq!(
        parse(json!({ "href": "https://a.example/f.png" })).unwrap(),
        url("https://a.example/f.png")
    );
    assert!(parse(json!(null)).is_err());
    assert!(parse(json!("f.png")).is_err());
    assert!(parse(json!([])).is_err());
}

#[derive(Debug, Deserialize)]
struct Addressed {
    #[serde(default, deserialize_with = "lenient::audience")]
    to: Vec<Url>,
}

#[test]
fn audience_normalises_public_and_drops_garbage() {
    let parse = |v: Value| serde_json::from_value::<Addressed>(json!({ "to": v })).unwrap().to;
    assert_eq!(parse(json!("as:Public")), vec![public_url()]);
    assert_eq!(parse(json!("Public")), vec![public_url()]);
    assert_eq!(
        parse(json!(["https://www.w3.org/ns/activitystreams#Public", "https://a.example/f"])),
        vec![public_url(), url("https://a.example/f")]
    );
    assert_eq!(
        parse(json!([{ "id": "https://a.example/u/1", "type": "Person" }, "nonsense", 5, null])),
        vec![url("https://a.example/u/1")]
    );
    assert_eq!(parse(json!(null)), Vec::<Url>::new());
    assert_eq!(parse(json!([])), Vec::<Url>::new());
}

#[derive(Debug, Deserialize)]
struct Activity {
    #[serde(deserialize_with = "lenient::id_of")]
    actor: Url,
    #[serde(default, deserialize_with = "lenient::audience")]
    to: Vec<Url>,
    #[serde(default, deserialize_with = "lenient::url_of")]
    url: Option<Url>,
    #[serde(default, deserialize_with = "lenient::one_or_many")]
    items: Vec<String>,
}

/// The helpers read straight from the text (not through `serde_json::Value`, as the tests above
/// do): strings with and without escapes, and embedded objects whose other members hold arrays
/// and objects to step over.
#[test]
fn helpers_read_raw_documents_with_escapes_and_nested_members() {
    let text = r#"{
        "actor": [
            { "type": ["Person"], "id": "https://a.example/c/1", "extra": { "id": "x" } },
            { "name": [1, { "a": [] }], "type": "Person", "id": "https:\/\/a.example\/u\/1" }
        ],
        "to": [
            "as:Public",
            { "id": { "id": "https://a.example/nested" } },
            { "tag": [{ "id": "https://a.example/t" }], "id": "https://a.example/f" },
            ["https://a.example/in-array"]
        ],
        "url": [
            "https:\/\/a.example\/plain",
            { "href": "https://a.example/page", "mediaType": "text\/html", "id": 3 }
        ],
        "items": "caf\u00e9"
    }"#;
    let parsed: Activity = serde_json::from_str(text).unwrap();
    assert_eq!(
        parsed.actor,
        url("https://a.example/u/1"),
        "a type that is not a string is no actor"
    );
    assert_eq!(parsed.to, vec![public_url(), url("https://a.example/f")]);
    assert_eq!(parsed.url, Some(url("https://a.example/page")));
    assert_eq!(parsed.items, vec!["café".to_owned()]);

    let single: Activity =
        serde_json::from_slice(br#"{ "actor": { "id": "https:\/\/a.example\/u\/2" } }"#).unwrap();
    assert_eq!(single.actor, url("https://a.example/u/2"));
    assert!(single.to.is_empty() && single.url.is_none() && single.items.is_empty());
    assert!(serde_json::from_str::<Activity>(r#"{ "actor": [{ "id": 1 }] }"#).is_err());
}
