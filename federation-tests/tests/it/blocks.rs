//! Blocks and mutes across two nodes: a mute hides notes and notifications on the muter's
//! node only; a block also ends follows both ways, reaches the blocked account's server, and
//! refuses its follows.

use ferry_federation_tests::{TestNode, User, eventually};
use serde_json::{Value, json};

async fn home(node: &TestNode, user: &User) -> Vec<String> {
    let (_, list) = node.get("/api/v1/timelines/home", Some(&user.token)).await;
    list.as_array()
        .map(|l| l.iter().filter_map(|s| s["content"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

async fn relationship(node: &TestNode, user: &User, id: &str) -> Value {
    let (_, rels) =
        node.get(&format!("/api/v1/accounts/relationships?id[]={id}"), Some(&user.token)).await;
    rels[0].clone()
}

async fn mentions(node: &TestNode, user: &User) -> usize {
    let (_, list) = node.get("/api/v1/notifications?types[]=mention", Some(&user.token)).await;
    list.as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutes_hide_and_blocks_cut_ties_across_nodes() {
    let a = TestNode::spawn().await;
    let b = TestNode::spawn().await;
    let alice = a.create_user("alice").await;
    let bob = b.create_user("bob").await;
    let alice_on_b = b.follow(&bob, &alice.handle).await;
    let post = |text: &str| json!({ "status": text });
    a.post("/api/v1/statuses", Some(&alice.token), post(&format!("first @{}", bob.handle))).await;
    eventually("bob sees and is told of alice's first note", 30, || async {
        (home(&b, &bob).await.iter().any(|t| t.contains("first")) && mentions(&b, &bob).await == 1)
            .then_some(())
    })
    .await;

    // A mute: alice's notes and mentions stop showing for bob; nothing is sent to A.
    let (status, rel) =
        b.post(&format!("/api/v1/accounts/{alice_on_b}/mute"), Some(&bob.token), json!({})).await;
    assert_eq!(
        (status, &rel["muting"], &rel["muting_notifications"]),
        (200, &json!(true), &json!(true)),
        "{rel}"
    );
    assert_eq!(rel["following"], true, "a mute keeps the follow: {rel}");
    a.post("/api/v1/statuses", Some(&alice.token), post(&format!("second @{}", bob.handle))).await;
    let (_, listed) = b.get("/api/v1/mutes", Some(&bob.token)).await;
    assert_eq!(listed[0]["id"], json!(alice_on_b), "{listed}");
    // The second note arrives (it is stored) but is not shown, and gives no notification.
    eventually("the second note stored on B", 30, || async {
        let (_, statuses) =
            b.get(&format!("/api/v1/accounts/{alice_on_b}/statuses"), Some(&bob.token)).await;
        statuses.as_array().is_some_and(|l| l.len() == 2).then_some(())
    })
    .await;
    assert!(home(&b, &bob).await.is_empty(), "muted notes stay out of the home timeline");
    assert_eq!(mentions(&b, &bob).await, 1, "no notification from a muted account");
    let (status, rel) =
        b.post(&format!("/api/v1/accounts/{alice_on_b}/unmute"), Some(&bob.token), json!({})).await;
    assert_eq!((status, &rel["muting"]), (200, &json!(false)), "{rel}");
    assert_eq!(home(&b, &bob).await.len(), 2, "both notes show again");

    // A block: bob's follow ends, alice's server hears of it, and alice cannot follow bob.
    let bob_on_a = a.resolve(&alice, &bob.handle).await;
    let (status, rel) =
        b.post(&format!("/api/v1/accounts/{alice_on_b}/block"), Some(&bob.token), json!({})).await;
    assert_eq!(
        (status, &rel["blocking"], &rel["following"]),
        (200, &json!(true), &json!(false)),
        "{rel}"
    );
    assert!(home(&b, &bob).await.is_empty(), "a blocked account's notes leave the home timeline");
    // Blocking again is harmless (the Block went out once).
    let (status, rel) =
        b.post(&format!("/api/v1/accounts/{alice_on_b}/block"), Some(&bob.token), json!({})).await;
    assert_eq!((status, &rel["blocking"]), (200, &json!(true)), "{rel}");
    eventually("alice loses bob as a follower on A", 30, || async {
        let (_, me) = a.get(&format!("/api/v1/accounts/{}", alice.id), None).await;
        (me["followers_count"] == 0).then_some(())
    })
    .await;
    a.post(&format!("/api/v1/accounts/{bob_on_a}/follow"), Some(&alice.token), json!({})).await;
    eventually("alice's follow of bob is rejected", 30, || async {
        let rel = relationship(&a, &alice, &bob_on_a).await;
        (rel["requested"] == false && rel["following"] == false).then_some(())
    })
    .await;
    let (_, bob_seen) = b.get(&format!("/api/v1/accounts/{}", bob.id), None).await;
    assert_eq!(bob_seen["followers_count"], 0, "{bob_seen}");
    let (_, listed) = b.get("/api/v1/blocks", Some(&bob.token)).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");

    // Unblocking lifts it; bob may follow again.
    let (status, rel) = b
        .post(&format!("/api/v1/accounts/{alice_on_b}/unblock"), Some(&bob.token), json!({}))
        .await;
    assert_eq!((status, &rel["blocking"]), (200, &json!(false)), "{rel}");
    let (_, listed) = b.get("/api/v1/blocks", Some(&bob.token)).await;
    assert_eq!(listed, json!([]));
    b.follow(&bob, &alice.handle).await;

    // Bad input: an unknown account, blocking oneself, a token without the scope.
    let (status, body) = b.post("/api/v1/accounts/999/block", Some(&bob.token), json!({})).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) =
        b.post(&format!("/api/v1/accounts/{}/block", bob.id), Some(&bob.token), json!({})).await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = b
        .post(
            &format!("/api/v1/accounts/{alice_on_b}/mute"),
            Some(&bob.token),
            json!({ "notifications": "perhaps" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = b.get("/api/v1/blocks", None).await;
    assert_eq!(status, 401);
    a.stop();
    b.stop();
}
