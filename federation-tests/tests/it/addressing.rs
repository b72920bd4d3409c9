//! Inbound addressing over real HTTP: a note that carries no `to`/`cc` of its own is addressed
//! as its `Create` is, as Mastodon reads it.

use std::time::SystemTime;

use ferry_federation_tests::{PeerOfB, create_note, eventually, post_signed};
use ferry_node::db;
use serde_json::{Value, json};

/// alice's `Create` (`create_note`) with the note's addressing taken out and `audience` as the
/// activity's.
fn create(base: &str, n: u32, audience: Value) -> Vec<u8> {
    let mut activity: Value =
        serde_json::from_slice(&create_note(base, n, "addressed on the activity only")).unwrap();
    let fields = activity.as_object_mut().unwrap();
    fields.remove("to");
    fields["object"].as_object_mut().unwrap().remove("to");
    fields.extend(audience.as_object().unwrap().clone());
    serde_json::to_vec(&activity).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_without_addressing_is_addressed_as_its_create() {
    // The test plays A's role on the wire, with alice's real key.
    let PeerOfB { a, b, key, key_id, inbox } = PeerOfB::spawn().await;
    let followers = format!("{}/users/alice/followers", a.base);
    let cases = [
        (
            1,
            json!({ "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [followers] }),
            "public",
        ),
        (2, json!({ "to": [followers], "cc": ["as:Public"] }), "unlisted"),
        (3, json!({ "to": [followers] }), "private"),
        (4, json!({}), "direct"),
    ];
    for (n, audience, visibility) in cases {
        let body = create(&a.base, n, audience);
        let (status, answer) =
            post_signed(&inbox, &body, &key_id, &key, SystemTime::now(), None).await;
        assert_eq!(status, 202, "note {n}: {answer}");
        let ap_id = format!("{}/notes/{n}", a.base);
        let note = eventually(&format!("note {n} stored"), 10, || async {
            db::notes::by_ap_id(&b.state().db, &ap_id).await.unwrap()
        })
        .await;
        assert_eq!(note.visibility, visibility, "note {n}");
    }
}
