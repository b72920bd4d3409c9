//! Authorized fetch (Mastodon's secure mode): notes and collections need a valid signature;
//! actors stay readable (peers need them to verify anything); a normal Ferry node can still
//! fetch from such a node, because every fetch it makes is signed by its instance actor.

use std::time::SystemTime;

use ferry_federation_tests::TestNode;
use ferry_protocol::signatures::{PrivateKey, sign_request};
use serde_json::json;
use url::Url;

async fn signed_get(url: &str, key_id: &str, key: &PrivateKey) -> u16 {
    let url = Url::parse(url).unwrap();
    let signed = sign_request("GET", &url, None, key_id, key, SystemTime::now());
    reqwest::Client::new()
        .get(url)
        .header("Accept", "application/activity+json")
        .header("Date", signed.date)
        .header("Signature", signed.signature)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_and_collections_need_a_valid_signature() {
    let a = TestNode::spawn().await;
    let b = TestNode::spawn_with(&[("FERRY_AUTHORIZED_FETCH", "1".to_owned())]).await;
    let alice = a.create_user("alice").await;
    let bob = b.create_user("bob").await;
    let (status, note) = b
        .post("/api/v1/statuses", Some(&bob.token), json!({ "status": "only for signed readers" }))
        .await;
    assert_eq!(status, 200, "{note}");
    let note_path = format!("/notes/{}", note["id"].as_str().unwrap());

    // Unsigned: refused for the note and the collections, allowed for the actor.
    for path in [note_path.as_str(), "/users/bob/followers", "/users/bob/outbox?page=true"] {
        let (status, body) = b.get_ap(path).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body["error"].as_str().is_some(), "{body}");
    }
    assert_eq!(b.get_ap("/users/bob").await.0, 200, "actors stay readable");

    // Signed by a real actor on A: accepted. Signed with a key that is not that actor's: refused.
    let key = a.private_key("alice").await;
    let key_id = format!("{}#main-key", alice.ap_id);
    assert_eq!(signed_get(&format!("{}{note_path}", b.base), &key_id, &key).await, 200);
    let stranger = PrivateKey::generate().unwrap();
    assert_eq!(signed_get(&format!("{}{note_path}", b.base), &key_id, &stranger).await, 401);

    // A's own fetches are signed by its instance actor, so alice can look the note up.
    let uri = note["uri"].as_str().unwrap();
    let (status, found) =
        a.get(&format!("/api/v2/search?q={uri}&resolve=true"), Some(&alice.token)).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(
        found["statuses"][0]["content"].as_str().map(|c| c.contains("only for signed readers")),
        Some(true),
        "{found}"
    );
    a.stop();
    b.stop();
}
