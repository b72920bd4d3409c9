//! Inbound signatures over real HTTP: a valid request is accepted; a tampered body, a wrong
//! key, a stale date and a replay change nothing.

use std::time::{Duration, SystemTime};

use ferry_federation_tests::{PeerOfB, TestNode, create_note, eventually, post_signed};
use ferry_node::db;
use ferry_protocol::signatures::PrivateKey;
use serde_json::json;

fn create(a: &TestNode, n: u32, text: &str) -> Vec<u8> {
    create_note(&a.base, n, text)
}

async fn stored_notes(node: &TestNode) -> i64 {
    let state = node.state();
    db::actors::counts(&state.db, 0).await.unwrap();
    let rows = db::notes::public(
        &state.db,
        Some(false),
        &db::notes::Page { max_id: None, since_id: None, min_id: None, limit: 100 },
    )
    .await
    .unwrap();
    rows.len() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_stale_and_replayed_requests_change_nothing() {
    // The test plays A's role on the wire, with alice's real key.
    let PeerOfB { a, b, key, key_id, inbox } = PeerOfB::spawn().await;
    let now = SystemTime::now();

    let body = create(&a, 1, "tampered");
    let (status, error) =
        post_signed(&inbox, &body, &key_id, &key, now, Some(&create(&a, 1, "changed!"))).await;
    assert_eq!(status, 401, "tampered body: {error}");
    assert!(error["error"].as_str().unwrap().contains("signature"), "{error}");

    let stranger = PrivateKey::generate().unwrap();
    let (status, error) =
        post_signed(&inbox, &create(&a, 2, "wrong key"), &key_id, &stranger, now, None).await;
    assert_eq!(status, 401, "wrong key: {error}");

    let stale = now - Duration::from_secs(13 * 3600);
    let (status, error) =
        post_signed(&inbox, &create(&a, 3, "stale"), &key_id, &key, stale, None).await;
    assert_eq!(status, 401, "stale date: {error}");

    let (status, error) = reqwest::Client::new()
        .post(&inbox)
        .body(create(&a, 4, "unsigned"))
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .map(|(s, _)| (s, ()))
        .unwrap();
    assert_eq!(status, 401, "unsigned: {error:?}");
    assert_eq!(stored_notes(&b).await, 0, "nothing stored from bad requests");

    let body = create(&a, 5, "genuine");
    let (status, answer) = post_signed(&inbox, &body, &key_id, &key, now, None).await;
    assert_eq!(status, 202, "valid request: {answer}");
    eventually("genuine note stored", 10, || async { (stored_notes(&b).await == 1).then_some(()) })
        .await;
    // The same activity again (a replay): accepted, and nothing changes.
    let (status, _) = post_signed(&inbox, &body, &key_id, &key, now, None).await;
    assert_eq!(status, 202);
    b.settled().await;
    assert_eq!(stored_notes(&b).await, 1);
    // The same note in a `Create` with another id: the note's own id is the replay check, so
    // neither a second note nor a changed one.
    let mut again: serde_json::Value = serde_json::from_slice(&body).unwrap();
    again["id"] = json!(format!("{}/notes/5/activity-again", a.base));
    again["object"]["content"] = json!("<p>rewritten</p>");
    let again = serde_json::to_vec(&again).unwrap();
    let (status, _) = post_signed(&inbox, &again, &key_id, &key, now, None).await;
    assert_eq!(status, 202);
    b.settled().await;
    assert_eq!(stored_notes(&b).await, 1);
    let page = db::notes::Page { max_id: None, since_id: None, min_id: None, limit: 10 };
    let notes = db::notes::public(&b.state().db, Some(false), &page).await.unwrap();
    assert_eq!(notes[0].content, "<p>genuine</p>");

    // Malformed JSON and unknown types get a clear 4xx.
    let (status, error) = post_signed(&inbox, b"{not json", &key_id, &key, now, None).await;
    assert_eq!(status, 400, "{error}");
    let odd = serde_json::to_vec(&json!({ "id": format!("{}/x/1", a.base), "type": "Wiggle", "actor": format!("{}/users/alice", a.base) })).unwrap();
    let (status, error) = post_signed(&inbox, &odd, &key_id, &key, now, None).await;
    assert_eq!(status, 422, "{error}");
    assert!(error["error"].as_str().unwrap().contains("Wiggle"), "{error}");
    // Oversized bodies are refused before anything is parsed. The node reads and discards the
    // body first, so that the client, still sending, reads the 413 instead of a reset.
    let huge = vec![b' '; 2 << 20];
    let (status, error) = post_signed(&inbox, &huge, &key_id, &key, now, None).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(stored_notes(&b).await, 1, "nothing more stored");
    a.stop();
    b.stop();
}

/// Many activities at once land in shared group-commit batches: each distinct one is stored,
/// and copies of one activity sent together (shared and personal inbox, retries) are stored
/// once, even when they fall into the same batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_activities_and_copies_are_each_stored_once() {
    let PeerOfB { a, b, key, key_id, .. } = PeerOfB::spawn().await;
    let key = std::sync::Arc::new(key);
    let now = SystemTime::now();
    let copied = create(&a, 1000, "sent many times");
    let mut bodies: Vec<(String, Vec<u8>)> = (0..60)
        .map(|n| (format!("{}/inbox", b.base), create(&a, n, &format!("note {n}"))))
        .collect();
    for n in 0..20 {
        let inbox = if n % 2 == 0 {
            format!("{}/inbox", b.base)
        } else {
            format!("{}/users/bob/inbox", b.base)
        };
        bodies.push((inbox, copied.clone()));
    }
    let posts: Vec<_> = bodies
        .into_iter()
        .map(|(inbox, body)| {
            let key = key.clone();
            let key_id = key_id.clone();
            tokio::spawn(async move { post_signed(&inbox, &body, &key_id, &key, now, None).await })
        })
        .collect();
    for post in posts {
        let (status, answer) = post.await.unwrap();
        assert_eq!(status, 202, "{answer}");
    }
    b.settled().await;
    assert_eq!(stored_notes(&b).await, 61, "60 distinct notes and the copied one, once");
    a.stop();
    b.stop();
}

/// Likes and boosts are recorded by the inbox writer, their notes looked up for the whole batch
/// (`Write::Interaction`): each once however often it is sent, with one notification for the
/// local author; a like of a note B does not have is accepted and changes nothing; a boost of a
/// local note goes to its handler, which notifies the author.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn likes_and_boosts_are_recorded_once_each() {
    let PeerOfB { a, b, key, key_id, inbox } = PeerOfB::spawn().await;
    let now = SystemTime::now();
    let carol = b.create_user("carol").await;
    let (status, posted) =
        b.post("/api/v1/statuses", Some(&carol.token), json!({ "status": "like me" })).await;
    assert_eq!(status, 200, "{posted}");
    let carols = posted["uri"].as_str().expect("uri").to_owned();
    let alice = format!("{}/users/alice", a.base);
    let activity = |kind: &str, id: &str, object: &str| {
        serde_json::to_vec(&json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": format!("{}/{id}", a.base),
            "type": kind,
            "actor": alice,
            "object": object,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        }))
        .unwrap()
    };
    let send = |body: Vec<u8>| {
        let (inbox, key_id, key, b) = (inbox.clone(), key_id.clone(), &key, &b);
        async move {
            let (status, answer) = post_signed(&inbox, &body, &key_id, key, now, None).await;
            assert_eq!(status, 202, "{answer}");
            b.settled().await;
        }
    };
    let state = b.state();
    let notified = |kind: &'static str| async move {
        let carol = db::accounts::by_username(&state.db, "carol").await.unwrap().unwrap();
        let page = db::notes::Page { max_id: None, since_id: None, min_id: None, limit: 20 };
        let all = db::notifications::page(&state.db, carol.actor_id, &[], &page).await.unwrap();
        all.iter().filter(|n| n.kind == kind).count()
    };
    let note = db::notes::by_ap_id(&state.db, &carols).await.unwrap().expect("carol's note");
    let likes = || async { db::favourites::counts_of(&state.db, &[note.id]).await.unwrap() };

    let like = activity("Like", "likes/1", &carols);
    send(like.clone()).await;
    assert_eq!(likes().await, vec![(note.id, 1)]);
    assert_eq!(notified("favourite").await, 1, "carol hears of the like");
    // The same like again, and another like of the same note by the same actor.
    send(like).await;
    send(activity("Like", "likes/2", &carols)).await;
    assert_eq!(likes().await, vec![(note.id, 1)], "one like per actor and note");
    assert_eq!(notified("favourite").await, 1, "and one notification");
    // A like of a note B does not have: accepted, nothing stored, its id not claimed.
    let elsewhere = format!("{}/notes/404", a.base);
    send(activity("Like", "likes/3", &elsewhere)).await;
    let unknown = format!("{}/likes/3", a.base);
    assert!(db::favourites::by_ap_id(&state.db, &unknown).await.unwrap().is_none());
    assert!(!db::received::seen(&state.db, &unknown).await.unwrap());

    // A boost of carol's note goes to its handler, which notifies her; a replay does not.
    let boost = activity("Announce", "boosts/1", &carols);
    send(boost.clone()).await;
    send(boost).await;
    let boost_id = format!("{}/boosts/1", a.base);
    let stored = db::notes::by_ap_id(&state.db, &boost_id).await.unwrap().expect("the boost");
    assert_eq!(stored.reblog_of_id, Some(note.id));
    assert_eq!(notified("reblog").await, 1, "carol hears of the boost once");

    // A boost of alice's own note, which B has: stored by the writer, once.
    send(create_note(&a.base, 7, "boost me")).await;
    let alices = format!("{}/notes/7", a.base);
    let original = db::notes::by_ap_id(&state.db, &alices).await.unwrap().expect("alice's note");
    let boost = activity("Announce", "boosts/2", &alices);
    send(boost.clone()).await;
    send(boost).await;
    let boost_id = format!("{}/boosts/2", a.base);
    let stored = db::notes::by_ap_id(&state.db, &boost_id).await.unwrap().expect("the boost");
    assert_eq!(stored.reblog_of_id, Some(original.id));
    assert!(
        !db::received::seen(&state.db, &boost_id).await.unwrap(),
        "its own id is its replay check, not a claim"
    );
    a.stop();
    b.stop();
}
