//! The inbox journal: what an inbox answered 202 is stored even if the node stops before its
//! writer commits it.

use std::time::SystemTime;

use ferry_federation_tests::{
    PeerOfB, ProcessNode, TestNode, create_note, eventually, free_local_domain, post_signed,
};
use ferry_node::db;
use ferry_node::federation::activities::AnyActivity;
use ferry_node::federation::ingest::Write;
use ferry_node::federation::journal::Journal;
use ferry_node::federation::objects::note::remote_note_by;
use ferry_node::services::interactions::{Interaction, InteractionKind};
use ferry_node::services::notes::prepare_remote;

/// Sends B a first note of alice's through its inbox, so that B knows her, and returns her
/// row on B once it is stored.
async fn alice_known_to_b(peer: &PeerOfB) -> db::actors::ActorRow {
    let PeerOfB { a, b, key, key_id, inbox } = peer;
    let first = create_note(&a.base, 0, "first");
    let (status, answer) = post_signed(inbox, &first, key_id, key, SystemTime::now(), None).await;
    assert_eq!(status, 202, "{answer}");
    b.settled().await;
    let alice = format!("{}/users/alice", a.base);
    db::actors::by_ap_id(&b.state().db, &alice).await.unwrap().expect("alice on B")
}

/// Records left in a node's journal (as a crash between the answer and the commit leaves them)
/// are stored when a node starts on that journal, before it serves; records it cannot store
/// (an actor it does not know, a body that is not an activity) are dropped with a warning; the
/// journal is empty afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stores_what_its_journal_holds_before_serving() {
    let peer = PeerOfB::spawn().await;
    let alice = alice_known_to_b(&peer).await;
    let PeerOfB { a, b, .. } = peer;
    b.stop();

    // What B had answered and not stored when it stopped, in a journal of its own.
    let journal_dir = tempfile::tempdir().unwrap();
    let (journal, leftover) = Journal::open(journal_dir.path()).unwrap();
    assert!(leftover.records.is_empty());
    journal.append(alice.id, &create_note(&a.base, 2, "accepted before the crash")).unwrap();
    journal.append(alice.id, &create_note(&a.base, 0, "first, again")).unwrap();
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
    assert_eq!(stored(0).await.expect("note 0").content, "<p>first</p>", "stored once, unchanged");
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

/// A note and a like of it queued back to back for the writer land in one batch (a batch of
/// journaled jobs waits 2 ms for more), where the like's note was looked up before the note was
/// written: the writer looks it up again afterwards, so the like is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_like_in_the_batch_of_its_note_is_recorded() {
    let peer = PeerOfB::spawn().await;
    let alice = alice_known_to_b(&peer).await;
    let PeerOfB { a, b, .. } = peer;
    let state = b.state();
    let journal = state.journal.as_ref().expect("a journal");

    // What the inbox queues for a Create and a Like, queued as it queues them.
    let body = create_note(&a.base, 1, "like me");
    let Some(Ok(AnyActivity::Create(create))) = AnyActivity::from_slice("Create", &body) else {
        panic!("a Create");
    };
    let cmd = remote_note_by(&create.object, std::sync::Arc::new(alice.clone()));
    let prepared = prepare_remote(state, cmd).await.unwrap();
    let like = Interaction {
        ap_id: format!("{}/likes/1", a.base),
        actor_id: alice.id,
        note_ap_id: format!("{}/notes/1", a.base),
        kind: InteractionKind::Like,
    };
    let note_entry = journal.append(alice.id, &body).unwrap();
    let like_entry = journal.append(alice.id, b"{}").unwrap();
    state.ingest.enqueue(Write::Note(Box::new(prepared)), note_entry).await.unwrap();
    state.ingest.enqueue(Write::Interaction(Box::new(like)), like_entry).await.unwrap();
    b.settled().await;

    let ap_id = format!("{}/notes/1", a.base);
    let note = db::notes::by_ap_id(&state.db, &ap_id).await.unwrap().expect("the note");
    let likes = db::favourites::counts_of(&state.db, &[note.id]).await.unwrap();
    assert_eq!(likes, vec![(note.id, 1)], "the like is recorded");
    a.stop();
    b.stop();
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
