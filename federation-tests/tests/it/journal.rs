//! The inbox journal: what an inbox answered 202 is stored even if the node stops before its
//! writer commits it.

use std::time::SystemTime;

use ferry_federation_tests::{
    PeerOfB, ProcessNode, TestNode, create_note, eventually, free_local_domain, post_signed,
};
use ferry_node::db;
use ferry_node::federation::journal::Journal;

/// Records left in a node's journal (as a crash between the answer and the commit leaves them)
/// are stored when a node starts on that journal, before it serves; records it cannot store
/// (an actor it does not know, a body that is not an activity) are dropped with a warning; the
/// journal is empty afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stores_what_its_journal_holds_before_serving() {
    let PeerOfB { a, b, key, key_id, inbox } = PeerOfB::spawn().await;
    // One note through the inbox, so that B knows alice.
    let (status, answer) = post_signed(
        &inbox,
        &create_note(&a.base, 1, "first"),
        &key_id,
        &key,
        SystemTime::now(),
        None,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    b.settled().await;
    let alice = format!("{}/users/alice", a.base);
    let alice = db::actors::by_ap_id(&b.state().db, &alice).await.unwrap().expect("alice on B");
    b.stop();

    // What B had answered and not stored when it stopped, in a journal of its own.
    let journal_dir = tempfile::tempdir().unwrap();
    let (journal, leftover) = Journal::open(journal_dir.path()).unwrap();
    assert!(leftover.records.is_empty());
    journal.append(alice.id, &create_note(&a.base, 2, "accepted before the crash")).unwrap();
    journal.append(alice.id, &create_note(&a.base, 1, "first, again")).unwrap();
    journal.append(i64::MAX, &create_note(&a.base, 3, "by nobody B knows")).unwrap();
    journal.append(alice.id, b"not an activity").unwrap();
    drop(journal);

    // A node on B's database (under B's name: the database is B's) and that journal.
    let database = b.state().config.database_url.clone();
    let dir = journal_dir.path().display().to_string();
    let again = TestNode::spawn_with(&[
        ("FERRY_DOMAIN", b.domain.clone()),
        ("FERRY_DATABASE_URL", database),
        ("FERRY_INBOX_JOURNAL_DIR", dir),
    ])
    .await;
    let db = &again.state().db;
    let stored = |n: u32| {
        let ap_id = format!("{}/notes/{n}", a.base);
        async move { db::notes::by_ap_id(db, &ap_id).await.unwrap() }
    };
    let note = eventually("the journaled note stored", 10, || stored(2)).await;
    assert_eq!(note.content, "<p>accepted before the crash</p>");
    assert_eq!(note.author_id, alice.id);
    assert_eq!(stored(1).await.expect("note 1").content, "<p>first</p>", "stored once, unchanged");
    assert!(stored(3).await.is_none(), "an unknown actor's record is dropped");
    // Replayed before serving: the node answers only once the journal is stored and emptied.
    let (status, _) = again.get("/api/v1/instance", None).await;
    assert_eq!(status, 200);
    let logs = std::fs::read_dir(journal_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect::<Vec<_>>();
    assert_eq!(logs.len(), 1, "only the running node's own segment is left: {logs:?}");
    assert_eq!(std::fs::metadata(&logs[0]).unwrap().len(), 0);
    again.stop();
    a.stop();
}

/// A real `ferry` process killed with SIGKILL straight after answering a burst of notes: every
/// note it answered 202 is stored once it runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_notes_survive_the_receiver_being_killed() {
    let a = TestNode::spawn().await;
    a.create_user("alice").await;
    let key = std::sync::Arc::new(a.private_key("alice").await);
    let key_id = format!("{}/users/alice#main-key", a.base);

    let domain = free_local_domain();
    let dir = tempfile::tempdir().unwrap();
    let mut b = ProcessNode::start(&domain, dir.path());
    b.wait_up().await;
    let inbox = format!("{}/inbox", b.base);
    let now = SystemTime::now();
    const NOTES: u32 = 300;
    let posts: Vec<_> = (0..NOTES)
        .map(|n| {
            let (inbox, key_id, key) = (inbox.clone(), key_id.clone(), key.clone());
            let body = create_note(&a.base, n, &format!("note {n}"));
            tokio::spawn(async move { post_signed(&inbox, &body, &key_id, &key, now, None).await })
        })
        .collect();
    for post in posts {
        let (status, answer) = post.await.unwrap();
        assert_eq!(status, 202, "{answer}");
    }
    b.sigkill();

    let mut b = ProcessNode::start(&domain, dir.path());
    b.wait_up().await;
    let url = format!("sqlite://{}", dir.path().join("ferry.db").display());
    let db = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (stored,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM notes WHERE NOT is_local")
        .fetch_one(&db)
        .await
        .unwrap();
    // Replayed before the node serves: all there as soon as it answers.
    assert_eq!(stored, i64::from(NOTES), "every answered note stored, once");
    b.stop().await;
    a.stop();
}
