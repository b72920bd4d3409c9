//! A post by an account with more followers than the node queues in the post's own
//! transaction: queued as one fan-out, expanded by the delivery worker, delivered once to each
//! server.

use ferry_federation_tests::{RemoteActor, TestNode, eventually, store_remote_follow};
use ferry_node::db;
use ferry_node::federation::outbox::DEFER_FOLLOWERS_ABOVE;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

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

/// A server that gets one delivery is asked to close the connection at once (`Connection:
/// close`) rather than keep it open for requests that will not come, and the node hangs up
/// after the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_delivery_asks_its_server_to_close_the_connection() {
    let a = TestNode::spawn().await;
    let alice = a.create_user("alice").await;
    // A bare server, read byte by byte here: what the node sends, exactly.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let domain = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let db = &a.state().db;
    let author = db::actors::by_ap_id(db, &alice.ap_id).await.unwrap().expect("alice's actor");
    let ap_id = format!("http://{domain}/users/carol");
    let mut tx = db.begin().await.unwrap();
    let remote = RemoteActor {
        ap_id: &ap_id,
        username: "carol".into(),
        domain: &domain,
        shared_inbox: format!("http://{domain}/inbox"),
        public_key_pem: String::new(),
    };
    store_remote_follow(&mut tx, db, remote, author.id, true).await.unwrap();
    tx.commit().await.unwrap();

    let (status, posted) = a
        .post(
            "/api/v1/statuses",
            Some(&alice.token),
            json!({ "status": "One server, one request", "visibility": "public" }),
        )
        .await;
    assert_eq!(status, 200, "{posted}");

    let (mut stream, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
        .await
        .expect("the delivery within 20 s")
        .unwrap();
    let mut received = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the node hung up before its request was whole");
        received.extend_from_slice(&chunk[..n]);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("post /inbox http/1.1"), "{head}");
    for header in ["signature:", "digest:", "date:"] {
        assert!(head.contains(header), "no {header} in {head}");
    }
    assert!(head.contains("\r\nconnection: close"), "no `connection: close` in {head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a content-length");
    while received.len() < head_end + 4 + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the node hung up before its body was whole");
        received.extend_from_slice(&chunk[..n]);
    }
    let body: serde_json::Value = serde_json::from_slice(&received[head_end + 4..]).unwrap();
    assert_eq!(body["type"], "Create", "{body}");
    stream.write_all(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n").await.unwrap();
    // The node closes its side once it has the answer.
    let mut rest = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut rest))
        .await
        .expect("the node closes the connection within 10 s")
        .unwrap();
    assert_eq!(n, 0, "nothing more after the answer");
    let counts = eventually("the delivery recorded", 20, || async {
        let counts = db::deliveries::status_counts(db).await.unwrap();
        (counts.0 == 0).then_some(counts)
    })
    .await;
    assert_eq!(counts, (0, 1, 0), "one delivery, done");
}
