//! A post by an account with more followers than the node queues in the post's own
//! transaction: queued as one fan-out, expanded by the delivery worker, delivered once to each
//! server.

use ferry_federation_tests::{RemoteActor, TestNode, eventually, store_remote_follow};
use ferry_node::db;
use ferry_node::federation::outbox::DEFER_FOLLOWERS_ABOVE;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_to_thousands_of_followers_reaches_each_server_once() {
    let a = TestNode::spawn().await;
    let b = TestNode::spawn().await;
    let alice = a.create_user("alice").await;
    let bob = b.create_user("bob").await;
    b.follow(&bob, &alice.handle).await;

    // More followers than the limit, stored directly on A, all on bob's server: the expansion
    // reads them in two chunks, and every one of them names the shared inbox bob's does.
    let db = &a.state().db;
    let author = db::actors::by_ap_id(db, &alice.ap_id).await.unwrap().expect("alice's actor");
    let mut tx = db.begin().await.unwrap();
    for i in 0..DEFER_FOLLOWERS_ABOVE {
        let ap_id = format!("{}/users/f{i}", b.base);
        let remote = RemoteActor {
            ap_id: &ap_id,
            username: format!("f{i}"),
            domain: &b.domain,
            shared_inbox: format!("{}/inbox", b.base),
            public_key_pem: String::new(),
        };
        store_remote_follow(&mut tx, db, remote, author.id, true).await.unwrap();
    }
    tx.commit().await.unwrap();
    let (_, account) = a.get(&format!("/api/v1/accounts/{}", alice.id), None).await;
    assert_eq!(account["followers_count"], json!(DEFER_FOLLOWERS_ABOVE + 1), "{account}");
    // Bob's follow was accepted: one delivery, done (recorded up to 10 ms after bob's server
    // answered, so possibly after bob saw the Accept).
    let before = eventually("the Accept recorded as delivered", 20, || async {
        let counts = db::deliveries::status_counts(db).await.unwrap();
        (counts.0 == 0).then_some(counts)
    })
    .await;
    assert_eq!(before, (0, 1, 0), "A's queue before the post");

    let (status, posted) = a
        .post(
            "/api/v1/statuses",
            Some(&alice.token),
            json!({ "status": "Hello to many followers", "visibility": "public" }),
        )
        .await;
    assert_eq!(status, 200, "{posted}");

    eventually("the post in bob's home timeline", 20, || async {
        let (_, home) = b.get("/api/v1/timelines/home", Some(&bob.token)).await;
        home.as_array()
            .is_some_and(|items| {
                items.iter().any(|s| {
                    s["content"].as_str().is_some_and(|c| c.contains("Hello to many followers"))
                })
            })
            .then_some(())
    })
    .await;
    // The post's `Create` went to bob's server once, whatever the number of its followers.
    let after = eventually("A's queue drained", 20, || async {
        let counts = db::deliveries::status_counts(db).await.unwrap();
        (counts.0 == 0 && counts.1 > 1).then_some(counts)
    })
    .await;
    assert_eq!(after, (0, 2, 0), "one delivery for the post");
}
