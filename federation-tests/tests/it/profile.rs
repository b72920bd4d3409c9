//! Profile edits reach remote followers as `Update(Person)`; a locked account turns a remote
//! follow into a request that its owner approves or rejects.

use ferry_federation_tests::{TestNode, eventually};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_updates_and_follow_requests_cross_nodes() {
    let a = TestNode::spawn().await;
    let b = TestNode::spawn().await;
    let alice = a.create_user("alice").await;
    let bob = b.create_user("bob").await;
    let carol = b.create_user("carol").await;

    // alice follows bob, then bob renames himself and locks his account.
    let bob_on_a = a.resolve(&alice, &bob.handle).await;
    a.post(&format!("/api/v1/accounts/{bob_on_a}/follow"), Some(&alice.token), json!({})).await;
    eventually("alice follows bob", 20, || async {
        let (_, rels) = a
            .get(&format!("/api/v1/accounts/relationships?id[]={bob_on_a}"), Some(&alice.token))
            .await;
        (rels[0]["following"] == true).then_some(())
    })
    .await;
    let patch = reqwest::Client::new()
        .patch(format!("{}/api/v1/accounts/update_credentials", b.base))
        .bearer_auth(&bob.token)
        // A form body, as most Mastodon apps send it.
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("display_name", "Bob the Builder"), ("note", "I build #bridges"), ("locked", "true")])
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    let me: serde_json::Value = patch.json().await.unwrap();
    assert_eq!(
        (me["display_name"].as_str(), me["locked"].as_bool()),
        (Some("Bob the Builder"), Some(true)),
        "{me}"
    );
    eventually("bob's new name on A", 20, || async {
        let (_, account) = a.get(&format!("/api/v1/accounts/{bob_on_a}"), None).await;
        (account["display_name"] == "Bob the Builder" && account["locked"] == true).then_some(())
    })
    .await;

    // carol@B is local to bob: her follow waits for approval; so does dave's from A.
    let dave = a.create_user("dave").await;
    let bob_for_dave = a.resolve(&dave, &bob.handle).await;
    let (_, rel) = a
        .post(&format!("/api/v1/accounts/{bob_for_dave}/follow"), Some(&dave.token), json!({}))
        .await;
    assert_eq!(
        (rel["following"].as_bool(), rel["requested"].as_bool()),
        (Some(false), Some(true)),
        "{rel}"
    );
    let (_, rel) =
        b.post(&format!("/api/v1/accounts/{}/follow", bob.id), Some(&carol.token), json!({})).await;
    assert_eq!(rel["requested"], true, "{rel}");
    let requests = eventually("two follow requests for bob", 20, || async {
        let (_, list) = b.get("/api/v1/follow_requests", Some(&bob.token)).await;
        (list.as_array().map(Vec::len) == Some(2)).then_some(list)
    })
    .await;
    let id_of = |acct: &str| {
        requests
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["acct"].as_str().is_some_and(|x| x.starts_with(acct)))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (dave_id, carol_id) = (id_of("dave"), id_of("carol"));
    let (status, rel) = b
        .post(&format!("/api/v1/follow_requests/{dave_id}/authorize"), Some(&bob.token), json!({}))
        .await;
    assert_eq!((status, &rel["followed_by"]), (200, &json!(true)), "{rel}");
    let (status, rel) = b
        .post(&format!("/api/v1/follow_requests/{carol_id}/reject"), Some(&bob.token), json!({}))
        .await;
    assert_eq!((status, &rel["followed_by"]), (200, &json!(false)), "{rel}");
    eventually("dave's request accepted on A", 20, || async {
        let (_, rels) = a
            .get(&format!("/api/v1/accounts/relationships?id[]={bob_for_dave}"), Some(&dave.token))
            .await;
        (rels[0]["following"] == true && rels[0]["requested"] == false).then_some(())
    })
    .await;
    let (_, rels) =
        b.get(&format!("/api/v1/accounts/relationships?id[]={}", bob.id), Some(&carol.token)).await;
    assert_eq!(
        (rels[0]["following"].as_bool(), rels[0]["requested"].as_bool()),
        (Some(false), Some(false)),
        "{rels}"
    );
    let (_, notes) = b.get("/api/v1/notifications?types[]=follow_request", Some(&bob.token)).await;
    assert_eq!(notes.as_array().map(Vec::len), Some(2), "{notes}");
    a.stop();
    b.stop();
}

/// A remote account shows the counts its own server reports (its collections' `totalItems`),
/// not only what this node has seen of it, and a follow made here still moves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_account_shows_the_counts_its_server_reports() {
    let a = TestNode::spawn().await;
    let b = TestNode::spawn().await;
    let alice = a.create_user("alice").await;
    let bob = b.create_user("bob").await;
    let carol = b.create_user("carol").await;
    let dave = b.create_user("dave").await;
    // On B, bob has two followers and follows one account, and has written three notes; none
    // of it has reached A.
    for follower in [&carol, &dave] {
        b.follow(follower, &bob.handle).await;
    }
    b.follow(&bob, &carol.handle).await;
    for i in 0..3 {
        let (status, posted) = b
            .post(
                "/api/v1/statuses",
                Some(&bob.token),
                json!({ "status": format!("note {i}"), "visibility": "public" }),
            )
            .await;
        assert_eq!(status, 200, "{posted}");
    }
    let counts = |account: &serde_json::Value| {
        [&account["statuses_count"], &account["followers_count"], &account["following_count"]]
            .map(|c| c.as_i64().unwrap_or(-1))
    };
    let (_, on_b) = b.get(&format!("/api/v1/accounts/{}", bob.id), None).await;
    assert_eq!(counts(&on_b), [3, 2, 1], "bob on his own server: {on_b}");

    let bob_on_a = a.resolve(&alice, &bob.handle).await;
    eventually("bob's counts on A as B reports them", 20, || async {
        let (_, account) = a.get(&format!("/api/v1/accounts/{bob_on_a}"), None).await;
        (counts(&account) == [3, 2, 1]).then_some(())
    })
    .await;

    // alice's follow counts at once on A, on top of what B reported.
    let (status, rel) =
        a.post(&format!("/api/v1/accounts/{bob_on_a}/follow"), Some(&alice.token), json!({})).await;
    assert_eq!(status, 200, "{rel}");
    eventually("alice's follow accepted and counted", 20, || async {
        let (_, account) = a.get(&format!("/api/v1/accounts/{bob_on_a}"), None).await;
        (counts(&account) == [3, 3, 1]).then_some(())
    })
    .await;
    // The new note reaches A and counts there too.
    let (status, posted) = b
        .post(
            "/api/v1/statuses",
            Some(&bob.token),
            json!({ "status": "note 3", "visibility": "public" }),
        )
        .await;
    assert_eq!(status, 200, "{posted}");
    eventually("bob's fourth note counted on A", 20, || async {
        let (_, account) = a.get(&format!("/api/v1/accounts/{bob_on_a}"), None).await;
        (counts(&account) == [4, 3, 1]).then_some(())
    })
    .await;
    let (_, on_b) = b.get(&format!("/api/v1/accounts/{}", bob.id), None).await;
    assert_eq!(counts(&on_b), [4, 3, 1], "bob on his own server: {on_b}");
}
