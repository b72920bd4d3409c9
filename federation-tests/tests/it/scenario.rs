//! Three nodes: follow by handle, posts, replies, boosts, likes, deletes and unfollows travel
//! between them over real HTTP.

use ferry_federation_tests::{TestNode, User, eventually};
use serde_json::{Value, json};

async fn home_has(node: &TestNode, user: &User, needle: &str) -> bool {
    let (status, timeline) = node.get("/api/v1/timelines/home?limit=40", Some(&user.token)).await;
    assert_eq!(status, 200, "{timeline}");
    timeline.as_array().is_some_and(|items| {
        items.iter().any(|s| {
            s["content"].as_str().is_some_and(|c| c.contains(needle))
                || s["reblog"]["content"].as_str().is_some_and(|c| c.contains(needle))
        })
    })
}

async fn notifications(node: &TestNode, user: &User, kind: &str) -> Vec<Value> {
    let (status, list) =
        node.get(&format!("/api/v1/notifications?types[]={kind}"), Some(&user.token)).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().cloned().unwrap_or_default()
}

/// The local id on `node` of the note with ActivityPub id `uri`, once it has arrived.
async fn arrived(node: &TestNode, user: &User, uri: &str) -> String {
    eventually(&format!("{uri} on {}", node.domain), 20, || async {
        let (_, found) = node.get(&format!("/api/v2/search?q={uri}"), Some(&user.token)).await;
        found["statuses"][0]["id"].as_str().map(str::to_owned)
    })
    .await
}

/// Nodes A, B and C, with alice on A, bob on B and carol on C.
async fn three_nodes() -> ([TestNode; 3], [User; 3]) {
    let a = TestNode::spawn().await;
    let b = TestNode::spawn().await;
    let c = TestNode::spawn().await;
    let alice = a.create_user("alice").await;
    let bob = b.create_user("bob").await;
    let carol = c.create_user("carol").await;
    ([a, b, c], [alice, bob, carol])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_and_interactions_federate_between_three_nodes() {
    let ([a, b, c], [alice, bob, carol]) = three_nodes().await;

    // alice@A and carol@C follow bob@B by handle; B accepts automatically.
    a.follow(&alice, &bob.handle).await;
    c.follow(&carol, &bob.handle).await;

    // bob's followers collection on B lists both, paged as Mastodon does.
    let (status, collection) = b.get_ap("/users/bob/followers").await;
    assert_eq!(status, 200, "{collection}");
    assert_eq!(collection["type"], "OrderedCollection");
    assert_eq!(collection["totalItems"], 2, "{collection}");
    let (_, page) = b.get_ap("/users/bob/followers?page=true").await;
    let items: Vec<&str> =
        page["orderedItems"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(
        items.contains(&alice.ap_id.as_str()) && items.contains(&carol.ap_id.as_str()),
        "{page}"
    );

    // bob posts; the note reaches alice's home timeline on A.
    let (status, note) = b
        .post(
            "/api/v1/statuses",
            Some(&bob.token),
            json!({ "status": "hello from B #ferry", "visibility": "public" }),
        )
        .await;
    assert_eq!(status, 200, "{note}");
    let note_uri = note["uri"].as_str().unwrap().to_owned();
    eventually("bob's note in alice's home timeline", 20, || async {
        home_has(&a, &alice, "hello from B").await.then_some(())
    })
    .await;
    let on_a = arrived(&a, &alice, &note_uri).await;
    let on_c = arrived(&c, &carol, &note_uri).await;

    // alice replies from A; the reply threads under bob's note on B.
    let (status, reply) = a.post("/api/v1/statuses", Some(&alice.token), json!({ "status": "@bob@".to_owned() + &b.domain + " nice to meet you", "in_reply_to_id": on_a })).await;
    assert_eq!(status, 200, "{reply}");
    let bob_note_id = note["id"].as_str().unwrap().to_owned();
    eventually("alice's reply in the thread on B", 20, || async {
        let (_, context) =
            b.get(&format!("/api/v1/statuses/{bob_note_id}/context"), Some(&bob.token)).await;
        context["descendants"]
            .as_array()
            .is_some_and(|d| {
                d.iter()
                    .any(|s| s["content"].as_str().is_some_and(|t| t.contains("nice to meet you")))
            })
            .then_some(())
    })
    .await;
    eventually("mention notification for bob", 20, || async {
        (!notifications(&b, &bob, "mention").await.is_empty()).then_some(())
    })
    .await;

    // carol boosts and alice likes; bob is notified of both on B.
    let (status, boost) =
        c.post(&format!("/api/v1/statuses/{on_c}/reblog"), Some(&carol.token), json!({})).await;
    assert_eq!(status, 200, "{boost}");
    let (status, liked) =
        a.post(&format!("/api/v1/statuses/{on_a}/favourite"), Some(&alice.token), json!({})).await;
    assert_eq!(status, 200, "{liked}");
    assert_eq!(liked["favourited"], true);
    eventually("reblog notification", 20, || async {
        (!notifications(&b, &bob, "reblog").await.is_empty()).then_some(())
    })
    .await;
    eventually("favourite notification", 20, || async {
        (!notifications(&b, &bob, "favourite").await.is_empty()).then_some(())
    })
    .await;
    let (_, shown) = b.get(&format!("/api/v1/statuses/{bob_note_id}"), Some(&bob.token)).await;
    assert_eq!(shown["favourites_count"], 1, "{shown}");
    assert_eq!(shown["reblogs_count"], 1, "{shown}");
    // The boost reaches carol's followers' servers too: nobody follows carol, so only B got it.

    // bob deletes the note; it disappears from alice's timeline on A.
    let (status, _) = b.delete(&format!("/api/v1/statuses/{bob_note_id}"), &bob.token).await;
    assert_eq!(status, 200);
    eventually("deleted note gone from A", 20, || async {
        (!home_has(&a, &alice, "hello from B").await).then_some(())
    })
    .await;
    let (status, _) = a.get(&format!("/api/v1/statuses/{on_a}"), Some(&alice.token)).await;
    assert_eq!(status, 404, "a deleted remote note is not shown");
    let (status, tombstone) = b.get_ap(&format!("/notes/{bob_note_id}")).await;
    assert_eq!((status, tombstone["type"].as_str()), (410, Some("Tombstone")));

    // alice unfollows; bob's next note reaches carol but not alice.
    let bob_on_a = a.resolve(&alice, &bob.handle).await;
    let (status, rel) = a
        .post(&format!("/api/v1/accounts/{bob_on_a}/unfollow"), Some(&alice.token), json!({}))
        .await;
    assert_eq!((status, &rel["following"]), (200, &json!(false)), "{rel}");
    eventually("alice gone from bob's followers", 20, || async {
        let (_, collection) = b.get_ap("/users/bob/followers").await;
        (collection["totalItems"] == 1).then_some(())
    })
    .await;
    let (_, second) =
        b.post("/api/v1/statuses", Some(&bob.token), json!({ "status": "second note" })).await;
    let second_uri = second["uri"].as_str().unwrap().to_owned();
    arrived(&c, &carol, &second_uri).await;
    assert!(!home_has(&a, &alice, "second note").await, "unfollow stops delivery to A");
    let (_, found) = a.get(&format!("/api/v2/search?q={second_uri}"), Some(&alice.token)).await;
    assert_eq!(found["statuses"], json!([]), "A never received the second note");

    for node in [&a, &b, &c] {
        node.stop();
    }
}

/// A boost of another server's note reaches the booster's followers: alice@A follows bob@B and
/// carol@C, and carol's boost of bob's note (which A has) is stored on A by the inbox writer's
/// batch and shows in alice's home timeline as carol's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_boost_of_another_servers_note_reaches_the_boosters_followers() {
    let ([a, b, c], [alice, bob, carol]) = three_nodes().await;
    a.follow(&alice, &bob.handle).await;
    a.follow(&alice, &carol.handle).await;
    c.follow(&carol, &bob.handle).await;

    let (status, note) = b
        .post(
            "/api/v1/statuses",
            Some(&bob.token),
            json!({ "status": "boost me from B", "visibility": "public" }),
        )
        .await;
    assert_eq!(status, 200, "{note}");
    let note_uri = note["uri"].as_str().unwrap().to_owned();
    arrived(&a, &alice, &note_uri).await;
    let on_c = arrived(&c, &carol, &note_uri).await;

    let (status, boost) =
        c.post(&format!("/api/v1/statuses/{on_c}/reblog"), Some(&carol.token), json!({})).await;
    assert_eq!(status, 200, "{boost}");
    let shown = eventually("carol's boost in alice's home timeline", 20, || async {
        let (status, timeline) = a.get("/api/v1/timelines/home?limit=40", Some(&alice.token)).await;
        assert_eq!(status, 200, "{timeline}");
        timeline.as_array().and_then(|items| {
            items.iter().find(|s| s["reblog"]["uri"].as_str() == Some(note_uri.as_str())).cloned()
        })
    })
    .await;
    assert_eq!(shown["account"]["acct"], carol.handle, "{shown}");
    assert_eq!(shown["reblog"]["account"]["acct"], bob.handle, "{shown}");
    // bob, the author, is notified on B (that boost takes the path with a notification).
    eventually("reblog notification", 20, || async {
        (!notifications(&b, &bob, "reblog").await.is_empty()).then_some(())
    })
    .await;
}
