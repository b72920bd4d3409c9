//! Two nodes that both store in PostgreSQL, each in a fresh schema of its own: a follow, a post
//! and a like travel between them. Runs when `FERRY_TEST_POSTGRES_URL` is set (CI always sets
//! it); otherwise it says it was skipped and passes.

use std::time::{Duration, SystemTime};

use ferry_federation_tests::{TestNode, create_note, eventually, post_signed};
use ferry_node::db::{self, Backend};
use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

const POSTGRES_URL_VAR: &str = "FERRY_TEST_POSTGRES_URL";

/// A schema of its own for one node, dropped with everything in it when this value is.
struct Schema {
    admin_url: String,
    name: String,
}

impl Schema {
    async fn create(admin_url: &str) -> Schema {
        // The URL is not echoed in messages: it may hold a password.
        let mut conn = PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_VAR} is set but cannot be reached: {e}"));
        let name = format!("t_{:016x}", rand_u64());
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("creating schema {name}: {e}"));
        let _ = conn.close().await;
        Schema { admin_url: admin_url.to_owned(), name }
    }

    /// The node's `FERRY_DATABASE_URL`: every pooled connection, the migrator's included, starts
    /// with this schema as its search path (sqlx decodes `%20` and `%3D`).
    fn database_url(&self) -> String {
        let separator = if self.admin_url.contains('?') { '&' } else { '?' };
        format!("{}{separator}options=-c%20search_path%3D{}", self.admin_url, self.name)
    }

    /// Tables of `names` that exist in this schema.
    async fn tables(&self, names: &[&str]) -> i64 {
        let mut conn = PgConnection::connect(&self.admin_url).await.unwrap();
        let found: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables
             WHERE table_schema = $1 AND table_name = ANY($2)",
        )
        .bind(&self.name)
        .bind(names.iter().map(|n| (*n).to_owned()).collect::<Vec<String>>())
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let _ = conn.close().await;
        found
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // `drop` cannot await on the test's runtime: a thread with its own does the work. Best
        // effort; a lock timeout keeps a node's lingering connection from hanging the test.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(mut conn) = PgConnection::connect(&url).await else { return };
                let _ = sqlx::query("SET lock_timeout = '5s'").execute(&mut conn).await;
                let _ = sqlx::query(AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE")))
                    .execute(&mut conn)
                    .await;
                let _ = conn.close().await;
            });
        });
        let _ = cleanup.join();
    }
}

/// A random schema suffix, without a dependency on `rand`.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos(),
    );
    hasher.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_post_and_like_between_two_postgres_nodes() {
    let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
        println!("skipped: {POSTGRES_URL_VAR} is not set");
        return;
    };
    let schema_a = Schema::create(&admin_url).await;
    let schema_b = Schema::create(&admin_url).await;
    assert_ne!(schema_a.name, schema_b.name);
    let a = TestNode::spawn_with(&[("FERRY_DATABASE_URL", schema_a.database_url())]).await;
    let b = TestNode::spawn_with(&[("FERRY_DATABASE_URL", schema_b.database_url())]).await;
    assert_eq!(a.state().db.backend(), Backend::Postgres);
    assert_eq!(b.state().db.backend(), Backend::Postgres);
    for schema in [&schema_a, &schema_b] {
        assert_eq!(schema.tables(&["notes", "deliveries", "_sqlx_migrations"]).await, 3);
    }
    let alice = a.create_user("alice").await;
    let bob = b.create_user("bob").await;

    // bob@B follows alice@A.
    b.follow(&bob, &alice.handle).await;
    let (_, followers) = a.get_ap("/users/alice/followers").await;
    assert_eq!(followers["totalItems"], 1, "{followers}");

    // alice posts; the note reaches bob's home timeline on B.
    let (status, note) = a
        .post("/api/v1/statuses", Some(&alice.token), json!({ "status": "hello from postgres" }))
        .await;
    assert_eq!(status, 200, "{note}");
    let uri = note["uri"].as_str().unwrap().to_owned();
    let on_b = eventually("alice's note on B", 20, || async {
        let (_, home) = b.get("/api/v1/timelines/home?limit=40", Some(&bob.token)).await;
        home.as_array()?
            .iter()
            .find(|s| s["uri"] == uri.as_str())
            .and_then(|s| s["id"].as_str().map(str::to_owned))
    })
    .await;

    // bob likes it; alice is notified on A and the note counts one favourite there.
    let (status, liked) =
        b.post(&format!("/api/v1/statuses/{on_b}/favourite"), Some(&bob.token), json!({})).await;
    assert_eq!((status, &liked["favourited"]), (200, &json!(true)), "{liked}");
    eventually("favourite notification on A", 20, || async {
        let (_, list) = a.get("/api/v1/notifications?types[]=favourite", Some(&alice.token)).await;
        list.as_array()
            .and_then(|l| l.first().cloned())
            .filter(|n| n["account"]["acct"] == bob.handle.as_str())
            .map(|_| ())
    })
    .await;
    let note_id = note["id"].as_str().unwrap();
    let (_, shown) = a.get(&format!("/api/v1/statuses/{note_id}"), Some(&alice.token)).await;
    assert_eq!(shown["favourites_count"], 1, "{shown}");

    // Each node wrote to its own schema: alice is local in A's and remote in B's.
    let in_a = db::actors::by_handle(&a.state().db, "alice", &a.domain).await.unwrap().unwrap();
    let in_b = db::actors::by_handle(&b.state().db, "alice", &a.domain).await.unwrap().unwrap();
    assert!(in_a.is_local && !in_b.is_local);
    assert!(db::actors::by_handle(&a.state().db, "bob", &b.domain).await.unwrap().is_some());
    // Both queues drained (Accept and Create from A, Follow and Like from B).
    for node in [&a, &b] {
        eventually(&format!("{} queue drained", node.domain), 20, || async {
            let (queued, delivered, failed) =
                db::deliveries::status_counts(&node.state().db).await.unwrap();
            (queued == 0 && failed == 0 && delivered == 2).then_some(())
        })
        .await;
    }
    a.stop();
    b.stop();
    // Give the nodes a moment to close their pools before the schemas are dropped.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// On PostgreSQL the inbox's first writer has helpers that take the queue while its batch is
/// slow. Here its batch is stuck (another transaction holds an uncommitted note with the same
/// id, so the insert waits for it), and a note that arrives meanwhile is still stored and
/// answered; the stuck one follows once the other transaction ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_inbox_batch_does_not_hold_up_the_next_on_postgres() {
    let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
        println!("skipped: {POSTGRES_URL_VAR} is not set");
        return;
    };
    let schema = Schema::create(&admin_url).await;
    let a = TestNode::spawn().await;
    // Without the inbox journal, so that each answer waits for its batch, as it is the
    // writers' batches this test is about.
    let b = TestNode::spawn_with(&[
        ("FERRY_DATABASE_URL", schema.database_url()),
        ("FERRY_INBOX_JOURNAL_DIR", "off".to_owned()),
    ])
    .await;
    a.create_user("alice").await;
    let key = a.private_key("alice").await;
    let key_id = format!("{}/users/alice#main-key", a.base);
    let inbox = format!("{}/inbox", b.base);
    let post = |n: u32| {
        let (inbox, key_id, key, body) = (
            inbox.clone(),
            key_id.clone(),
            key.clone(),
            create_note(&a.base, n, &format!("note {n}")),
        );
        async move { post_signed(&inbox, &body, &key_id, &key, SystemTime::now(), None).await }
    };

    // A first note, so that B knows alice.
    assert_eq!(post(0).await.0, 202);
    let alice = db::actors::by_handle(&b.state().db, "alice", &a.domain).await.unwrap().unwrap();

    // Another transaction inserts note 1 and keeps it uncommitted.
    let mut blocker = PgConnection::connect(&schema.database_url()).await.unwrap();
    sqlx::query("BEGIN").execute(&mut blocker).await.unwrap();
    sqlx::query(
        "INSERT INTO notes (id, ap_id, author_id, is_local, visibility, published_at)
         VALUES (1, $1, $2, FALSE, 'public', 0)",
    )
    .bind(format!("{}/notes/1", a.base))
    .bind(alice.id)
    .execute(&mut blocker)
    .await
    .unwrap();
    let stuck = tokio::spawn(post(1));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stuck.is_finished(), "note 1's batch waits for the other transaction");

    let (status, answer) = tokio::time::timeout(Duration::from_secs(10), post(2))
        .await
        .expect("note 2 is answered while note 1's batch is stuck");
    assert_eq!(status, 202, "{answer}");
    let stored = |n: u32| {
        let (db, ap_id) = (b.state().db.clone(), format!("{}/notes/{n}", a.base));
        async move { db::notes::by_ap_id(&db, &ap_id).await.unwrap().is_some() }
    };
    assert!(stored(2).await, "note 2 is stored");
    assert!(!stuck.is_finished(), "note 1's batch is still waiting");

    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    let (status, answer) = tokio::time::timeout(Duration::from_secs(10), stuck)
        .await
        .expect("note 1 answered")
        .unwrap();
    assert_eq!(status, 202, "{answer}");
    assert!(stored(1).await, "note 1 is stored once the other transaction is gone");
    let _ = blocker.close().await;
    a.stop();
    b.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
}
