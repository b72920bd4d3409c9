//! The SENDER is killed: a real `ferry` process posts 30 notes for a follower on another node
//! and is SIGKILLed at once, with deliveries queued or in flight; restarted on the same
//! database, it delivers every note, each exactly once, and its queue drains completely. A
//! second test isolates what a sender hanging up mid-request does to the receiving inbox.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use ferry_federation_tests::{ProcessNode, TestNode, eventually, post_json as post, sign_up};
use ferry_node::db::{self, Db};
use ferry_protocol::signatures::{PrivateKey, sign_request};
use serde_json::json;
use tokio::task::JoinSet;
use url::Url;

use crate::hostile::{Hostile, Reply, activity_json, not_found, note, person};

const NOTES: usize = 30;

fn note_text(n: usize) -> String {
    format!("sender crash note {n:02} end")
}

/// How many times each of the notes appears in `user`'s home timeline on `node`.
async fn arrivals(node: &TestNode, token: &str) -> Vec<usize> {
    let (status, timeline) = node.get("/api/v1/timelines/home?limit=40", Some(token)).await;
    assert_eq!(status, 200, "{timeline}");
    let contents: Vec<String> = timeline
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["content"].as_str().map(str::to_owned))
        .collect();
    (0..NOTES).map(|n| contents.iter().filter(|c| c.contains(&note_text(n))).count()).collect()
}

async fn queue_counts(url: &str) -> (i64, i64, i64) {
    let db = Db::connect(url).await.expect("A's database opens");
    let counts = db::deliveries::status_counts(&db).await.unwrap();
    db.close().await;
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_survive_the_sender_being_killed() {
    let b = TestNode::spawn().await;
    let bob = b.create_user("bob").await;

    let domain = ferry_federation_tests::free_local_domain();
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("ferry.db").display());
    let mut a = ProcessNode::start(&domain, dir.path());
    a.wait_up().await;
    let alice = sign_up(&a.base, "alice").await;

    // bob@B follows alice@A, and A's Accept has arrived.
    let alice_on_b = b.follow(&bob, &format!("alice@{domain}")).await;

    // alice posts 30 notes at once; A dies the moment the last one is stored.
    let mut posts = JoinSet::new();
    for n in 0..NOTES {
        let (base, token) = (a.base.clone(), alice.clone());
        posts.spawn(async move {
            let body = json!({ "status": note_text(n) });
            (n, post(&base, "/api/v1/statuses", Some(&token), body).await)
        });
    }
    let mut uris = vec![String::new(); NOTES];
    while let Some(done) = posts.join_next().await {
        let (n, status) = done.expect("post task");
        uris[n] = status["uri"].as_str().expect("uri").to_owned();
    }
    a.sigkill();
    let on_b_at_kill: usize = arrivals(&b, &bob.token).await.iter().filter(|c| **c > 0).count();
    let (queued, delivered, failed) = queue_counts(&database).await;
    println!(
        "at SIGKILL: {on_b_at_kill}/{NOTES} notes on B; A's queue: {queued} queued, {delivered} delivered, {failed} failed"
    );
    assert_eq!(failed, 0, "nothing failed before the kill");
    assert_eq!(queued + delivered, NOTES as i64 + 1, "one Accept and one delivery per note");

    // Back on the same database and port: leases are freed at start, so delivery resumes at
    // once rather than after the 60 s lease.
    a = ProcessNode::start(&domain, dir.path());
    a.wait_up().await;
    // A's database, read beside the running process (reads only; WAL allows it).
    let a_db = Db::connect(&database).await.expect("A's database opens");
    eventually("A's queue drained", 30, || async {
        let (queued, _, _) = db::deliveries::status_counts(&a_db).await.unwrap();
        (queued == 0).then_some(())
    })
    .await;
    // B answered 202 to every delivery, and answers only after handling: all notes are there.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let seen = loop {
        let seen = arrivals(&b, &bob.token).await;
        if seen.iter().all(|c| *c > 0) {
            break seen;
        }
        if tokio::time::Instant::now() > deadline {
            let mut missing = Vec::new();
            for n in (0..NOTES).filter(|n| seen[*n] == 0) {
                let stored = db::notes::by_ap_id(&b.state().db, &uris[n]).await.unwrap();
                let activity = format!("{}/activity", uris[n]);
                let received = db::received::seen(&b.state().db, &activity).await.unwrap();
                missing.push(format!(
                    "{} (note stored on B: {}, its Create recorded as received: {received})",
                    note_text(n),
                    stored.is_some()
                ));
            }
            panic!(
                "A's queue drained, but {} of {NOTES} notes never reached bob's home on B: {missing:#?}",
                missing.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Redelivered notes (delivered before the kill, unrecorded) are not shown twice.
    for (n, count) in seen.iter().enumerate() {
        assert_eq!(*count, 1, "{} arrived {count} times", note_text(n));
    }
    // B stored each note once (not just shown it once).
    let (status, stored) =
        b.get(&format!("/api/v1/accounts/{alice_on_b}/statuses?limit=40"), Some(&bob.token)).await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored.as_array().unwrap().len(), NOTES, "{stored}");

    // Stopped cleanly, A's queue holds nothing queued and nothing failed.
    a.stop().await;
    let (queued, delivered, failed) = db::deliveries::status_counts(&a_db).await.unwrap();
    a_db.close().await;
    assert_eq!((queued, failed), (0, 0), "A's queue after restart: {delivered} delivered");
    assert_eq!(delivered, NOTES as i64 + 1, "the Accept and one delivery per note");
    b.stop();
}

/// POSTs `body` to `inbox`, signed with `key`, giving up after `timeout`.
async fn post_signed(
    inbox: &str,
    body: &[u8],
    key_id: &str,
    key: &PrivateKey,
    timeout: Duration,
) -> reqwest::Result<u16> {
    let url = Url::parse(inbox).unwrap();
    let signed = sign_request("POST", &url, Some(body), key_id, key, SystemTime::now());
    let res = reqwest::Client::new()
        .post(url)
        .timeout(timeout)
        .header("Content-Type", "application/activity+json")
        .header("Date", signed.date)
        .header("Digest", signed.digest.unwrap())
        .header("Signature", signed.signature)
        .body(body.to_vec())
        .send()
        .await?;
    Ok(res.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_whose_sender_hung_up_is_handled_when_sent_again() {
    // The sender side of the crash above, made deterministic: a remote server's Announce makes
    // B fetch the boosted note, the note's server hangs, and the sender gives up (as a
    // killed process or a timeout does). When the sender retries, B must handle the activity.
    let b = TestNode::spawn().await;
    let key = PrivateKey::generate().unwrap();
    let pem = key.public_key_pem();
    let hold = Arc::new(AtomicBool::new(true));
    let remote = Hostile::start({
        let hold = hold.clone();
        move |target, base| match target {
            "/users/evil" => activity_json(&person(&format!("{base}/users/evil"), &pem)),
            "/notes/1" if hold.load(Ordering::SeqCst) => Reply::Hold,
            "/notes/0" | "/notes/1" => {
                activity_json(&note(&format!("{base}{target}"), &format!("{base}/users/evil")))
            }
            _ => not_found(),
        }
    })
    .await;
    let announce = |n: u32| {
        serde_json::to_vec(&json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": remote.url(&format!("/activities/{n}")),
            "type": "Announce",
            "actor": remote.url("/users/evil"),
            "object": remote.url(&format!("/notes/{n}")),
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        }))
        .unwrap()
    };
    let inbox = format!("{}/inbox", b.base);
    let key_id = remote.url("/users/evil#main-key");

    // Control: an Announce whose note answers at once is handled.
    let status = post_signed(&inbox, &announce(0), &key_id, &key, Duration::from_secs(30)).await;
    assert_eq!(status.unwrap(), 202);
    let stored = db::notes::by_ap_id(&b.state().db, &remote.url("/notes/0")).await.unwrap();
    assert!(stored.is_some(), "the boosted note of a handled Announce is stored");

    let announce = announce(1);

    let first = post_signed(&inbox, &announce, &key_id, &key, Duration::from_secs(2)).await;
    assert!(first.is_err(), "B is still fetching the note when the sender gives up: {first:?}");
    // B's handler has stopped (cancelled with the connection, or failed after its own fetch
    // timeout); either way its fetch of the note is over.
    let started = std::time::Instant::now();
    eventually("B's fetch of the note ends", 20, || async {
        (remote.holding() == 0).then_some(())
    })
    .await;
    println!("B's fetch ended {:?} after the sender hung up", started.elapsed());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The note's server is back; the sender retries the same activity.
    hold.store(false, Ordering::SeqCst);
    let status = post_signed(&inbox, &announce, &key_id, &key, Duration::from_secs(30)).await;
    assert_eq!(status.unwrap(), 202);
    let note_id = remote.url("/notes/1");
    let stored = db::notes::by_ap_id(&b.state().db, &note_id).await.unwrap();
    let claimed = db::received::seen(&b.state().db, &remote.url("/activities/1")).await.unwrap();
    assert!(
        stored.is_some(),
        "the retried Announce was answered 202 but not handled (its id recorded as received: {claimed})"
    );
    b.stop();
}
