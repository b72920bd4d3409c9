//! Test support: the storage backends every `db` test runs on, and rows to start from.
//!
//! SQLite is always tested, on a real file (WAL, a writer pool and a read pool, as in
//! production; `sqlite::memory:` would hide the split). PostgreSQL is tested too when
//! `FERRY_TEST_POSTGRES_URL` is set; each test then gets its own schema, so tests can run in
//! parallel against one database and never see each other's rows.

use std::env::{self, VarError};
use std::time::Duration;

use ferry_node::db::Db;
use ferry_node::db::accounts::{self, AccountRow};
use ferry_node::db::actors::{self, ActorRow, NewActor};
use ferry_node::db::follows::{self, FollowRow};
use ferry_node::db::notes::{self, NoteRow};
use ferry_node::ids::now_ms;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{AssertSqlSafe, Connection};
use tempfile::TempDir;

/// Names a PostgreSQL database to run the storage tests against as well as SQLite.
const POSTGRES_URL_VAR: &str = "FERRY_TEST_POSTGRES_URL";

/// The domain of the node under test; local actors live here.
pub(crate) const LOCAL_DOMAIN: &str = "ferry.test";

/// Fresh, migrated databases for one test. Loop over them with
/// `for (name, db) in backends().await.iter()`: the temporary directory and the PostgreSQL
/// schema are removed when this value is dropped, which for a `for` loop's temporary is when
/// the loop ends.
pub(crate) struct Backends {
    dbs: Vec<(&'static str, Db, String)>,
    // Dropped after `dbs`, so pools go before the files and schema they use.
    _sqlite_dir: TempDir,
    _postgres_schema: Option<PgSchema>,
}

impl Backends {
    /// `(backend name, database)` pairs; the name goes into every assertion message.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'static str, Db)> + '_ {
        self.dbs.iter().map(|(name, db, _)| (*name, db.clone()))
    }

    /// `(backend name, URL)` pairs, for tests that open a second handle on the same database.
    pub(crate) fn urls(&self) -> impl Iterator<Item = (&'static str, &str)> + '_ {
        self.dbs.iter().map(|(name, _, url)| (*name, url.as_str()))
    }

    /// The URL of backend `name`.
    pub(crate) fn url(&self, name: &str) -> &str {
        self.urls()
            .find(|(n, _)| *n == name)
            .map(|(_, url)| url)
            .unwrap_or_else(|| panic!("no backend named {name}"))
    }
}

/// SQLite always; PostgreSQL too when `FERRY_TEST_POSTGRES_URL` is set. A set but unreachable
/// PostgreSQL fails the test rather than skipping it, so CI cannot pass by testing less.
pub(crate) async fn backends() -> Backends {
    let dir = tempfile::tempdir().expect("a temporary directory for SQLite");
    let sqlite_url = format!("sqlite://{}", dir.path().join("ferry.db").display());
    let sqlite = Db::connect(&sqlite_url)
        .await
        .unwrap_or_else(|err| panic!("sqlite: opening {sqlite_url}: {err}"));
    let mut dbs = vec![("sqlite", sqlite, sqlite_url)];
    let schema = match env::var(POSTGRES_URL_VAR) {
        Ok(url) => {
            let (db, db_url, schema) = postgres(&url).await;
            dbs.push(("postgres", db, db_url));
            Some(schema)
        }
        Err(VarError::NotPresent) => None,
        Err(VarError::NotUnicode(_)) => panic!("{POSTGRES_URL_VAR} is not valid Unicode"),
    };
    Backends { dbs, _sqlite_dir: dir, _postgres_schema: schema }
}

/// Creates a schema of its own for one test and opens a `Db` whose connections use it.
async fn postgres(url: &str) -> (Db, String, PgSchema) {
    // The URL is not echoed in messages: it may hold a password.
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .unwrap_or_else(|err| panic!("{POSTGRES_URL_VAR} is set but cannot be reached: {err}"));
    let name = format!("t_{:016x}", rand::random::<u64>());
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
        .execute(&admin)
        .await
        .unwrap_or_else(|err| panic!("postgres: creating schema {name}: {err}"));
    let schema = PgSchema { admin_url: url.to_owned(), name: name.clone() };

    // sqlx decodes the query string (`%20` is a space, `%3D` is `=`) and sends `options` in
    // the startup packet, so every pooled connection, including the migrator's, starts with
    // this search path and creates and finds its tables in the test's schema.
    let separator = if url.contains('?') { '&' } else { '?' };
    let db_url = format!("{url}{separator}options=-c%20search_path%3D{name}");
    let db = Db::connect(&db_url)
        .await
        .unwrap_or_else(|err| panic!("postgres: opening schema {name}: {err}"));

    // Guard the isolation itself: the migrations must have landed in the new schema.
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables
         WHERE table_schema = $1 AND table_name IN ('notes', '_sqlx_migrations')",
    )
    .bind(&name)
    .fetch_one(&admin)
    .await
    .expect("postgres: listing tables");
    assert_eq!(tables, 2, "postgres: migrations did not run in schema {name}");
    admin.close().await;
    (db, db_url, schema)
}

/// A per-test PostgreSQL schema, dropped with everything in it when the test ends.
struct PgSchema {
    admin_url: String,
    name: String,
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let url = self.admin_url.clone();
        let name = self.name.clone();
        // `drop` cannot await, and the test's runtime is the one calling it, so a thread with
        // its own runtime does the work. Best effort: a leftover schema costs only space, and a
        // lock timeout keeps a stray open transaction from hanging the test.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(mut conn) = sqlx::PgConnection::connect(&url).await else { return };
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

/// Runs a one-row `SELECT COUNT(*) …` with one integer parameter, on a connection of its own.
/// For checking rows that no `db` function exposes (such as `home_feed` entries of deleted
/// notes, which every read filters out).
pub(crate) async fn count_rows(url: &str, sql: &'static str, param: i64) -> i64 {
    if url.starts_with("sqlite:") {
        let pool = SqlitePoolOptions::new().max_connections(1).connect(url).await.expect("sqlite");
        let n = sqlx::query_scalar(sql).bind(param).fetch_one(&pool).await.expect(sql);
        pool.close().await;
        n
    } else {
        let pool = PgPoolOptions::new().max_connections(1).connect(url).await.expect("postgres");
        let n = sqlx::query_scalar(sql).bind(param).fetch_one(&pool).await.expect(sql);
        pool.close().await;
        n
    }
}

/// The fields of an actor, local (`domain` = [`LOCAL_DOMAIN`]) or remote, not yet stored.
pub(crate) fn new_actor(db: &Db, username: &str, domain: &str) -> NewActor {
    let base = format!("https://{domain}/users/{username}");
    let now = now_ms();
    NewActor {
        id: db.next_id(),
        ap_id: base.clone(),
        kind: "Person".to_owned(),
        username: username.to_owned(),
        domain: domain.to_owned(),
        is_local: domain == LOCAL_DOMAIN,
        display_name: username.to_owned(),
        summary: String::new(),
        inbox_url: format!("{base}/inbox"),
        shared_inbox_url: None,
        outbox_url: Some(format!("{base}/outbox")),
        followers_url: Some(format!("{base}/followers")),
        following_url: Some(format!("{base}/following")),
        profile_url: Some(format!("https://{domain}/@{username}")),
        avatar_url: None,
        header_url: None,
        public_key_id: format!("{base}#main-key"),
        public_key_pem: "-----BEGIN PUBLIC KEY-----\ntest\n-----END PUBLIC KEY-----\n".to_owned(),
        manually_approves: false,
        discoverable: true,
        also_known_as: "[]".to_owned(),
        moved_to: None,
        published_at: now,
        fetched_at: now,
        identity_did: None,
    }
}

/// Stores an actor and commits.
pub(crate) async fn upsert_actor(db: &Db, actor: &NewActor) -> ActorRow {
    let mut tx = db.begin().await.expect("begin");
    let row = actors::upsert(&mut tx, actor).await.expect("actors::upsert");
    tx.commit().await.expect("commit");
    row
}

/// A local actor with its account row.
pub(crate) async fn local_account(db: &Db, username: &str) -> ActorRow {
    let mut tx = db.begin().await.expect("begin");
    let actor = actors::upsert(&mut tx, &new_actor(db, username, LOCAL_DOMAIN))
        .await
        .expect("actors::upsert");
    let account = AccountRow {
        actor_id: actor.id,
        username: username.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        private_key_pem: "-----BEGIN PRIVATE KEY-----\ntest\n-----END PRIVATE KEY-----\n"
            .to_owned(),
        is_admin: false,
        email: Some(format!("{username}@example.org")),
        created_at: now_ms(),
    };
    accounts::insert(&mut tx, &account).await.expect("accounts::insert");
    tx.commit().await.expect("commit");
    actor
}

/// A remote actor on `domain`, delivering to `shared_inbox` when given.
pub(crate) async fn remote_actor(
    db: &Db,
    username: &str,
    domain: &str,
    shared_inbox: Option<&str>,
) -> ActorRow {
    assert_ne!(domain, LOCAL_DOMAIN, "remote actors live on other domains");
    let mut actor = new_actor(db, username, domain);
    actor.shared_inbox_url = shared_inbox.map(str::to_owned);
    upsert_actor(db, &actor).await
}

/// Records that `follower` follows `followee`, accepted or pending, and commits.
pub(crate) async fn follow(
    db: &Db,
    follower: &ActorRow,
    followee: &ActorRow,
    accepted: bool,
) -> FollowRow {
    let id = db.next_id();
    let row = FollowRow {
        id,
        ap_id: format!("{}/follows/{id}", follower.ap_id),
        follower_id: follower.id,
        followee_id: followee.id,
        accepted,
        created_at: now_ms(),
    };
    let mut tx = db.begin().await.expect("begin");
    let stored = follows::upsert(&mut tx, &row).await.expect("follows::upsert");
    tx.commit().await.expect("commit");
    stored
}

/// A note by `author` with a fresh id (ids grow with each call), not yet stored.
pub(crate) fn new_note(db: &Db, author: &ActorRow, visibility: &str) -> NoteRow {
    let id = db.next_id();
    NoteRow {
        id,
        ap_id: format!("{}/statuses/{id}", author.ap_id),
        author_id: author.id,
        is_local: author.is_local,
        visibility: visibility.to_owned(),
        content: format!("<p>note {id}</p>"),
        summary: String::new(),
        sensitive: false,
        language: Some("en".to_owned()),
        url: None,
        in_reply_to_ap_id: None,
        in_reply_to_id: None,
        reblog_of_id: None,
        audience: r#"{"to":[],"cc":[]}"#.to_owned(),
        published_at: now_ms(),
        updated_at: None,
        deleted_at: None,
    }
}

/// Stores a note (which must be new) and commits.
pub(crate) async fn insert_note(db: &Db, note: &NoteRow) -> NoteRow {
    let mut tx = db.begin().await.expect("begin");
    let row = notes::insert(&mut tx, note)
        .await
        .expect("notes::insert")
        .unwrap_or_else(|| panic!("note {} already stored", note.ap_id));
    tx.commit().await.expect("commit");
    row
}
