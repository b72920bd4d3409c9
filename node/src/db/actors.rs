//! `actors`: local and remote accounts as ActivityPub actors (profile, keys, endpoints).

use std::sync::LazyLock;

use sqlx::AssertSqlSafe;

use super::{Db, Tx, on_db, on_tx};

/// One actor, local or remote.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ActorRow {
    pub id: i64,
    pub ap_id: String,
    pub kind: String,
    pub username: String,
    pub domain: String,
    pub is_local: bool,
    pub display_name: String,
    pub summary: String,
    pub inbox_url: String,
    pub shared_inbox_url: Option<String>,
    pub outbox_url: Option<String>,
    pub followers_url: Option<String>,
    pub following_url: Option<String>,
    pub profile_url: Option<String>,
    pub avatar_url: Option<String>,
    pub header_url: Option<String>,
    pub public_key_id: String,
    pub public_key_pem: String,
    pub manually_approves: bool,
    pub discoverable: bool,
    /// JSON array of actor ids.
    pub also_known_as: String,
    pub moved_to: Option<String>,
    pub suspended: bool,
    pub published_at: i64,
    pub fetched_at: i64,
    pub deleted_at: Option<i64>,
    /// The `did:key` of the actor's verified identity statement (FEP-c390).
    pub identity_did: Option<String>,
    /// A local actor's identity statement (JSON), as its document carries it.
    pub identity_proof: Option<String>,
}

impl ActorRow {
    /// The inbox deliveries should go to: the shared inbox when the server has one.
    pub fn delivery_inbox(&self) -> &str {
        self.shared_inbox_url.as_deref().unwrap_or(&self.inbox_url)
    }

    /// `user@domain`.
    pub fn handle(&self) -> String {
        format!("{}@{}", self.username, self.domain)
    }

    /// Parsed `also_known_as`.
    pub fn aliases(&self) -> Vec<String> {
        serde_json::from_str(&self.also_known_as).unwrap_or_default()
    }
}

const COLUMNS: &str = "id, ap_id, kind, username, domain, is_local, display_name, summary, \
    inbox_url, shared_inbox_url, outbox_url, followers_url, following_url, profile_url, \
    avatar_url, header_url, public_key_id, public_key_pem, manually_approves, discoverable, \
    also_known_as, moved_to, suspended, published_at, fetched_at, deleted_at, identity_did, \
    identity_proof";

/// Fields of an actor to insert or refresh (id is kept on refresh).
#[derive(Clone, Debug)]
pub struct NewActor {
    pub id: i64,
    pub ap_id: String,
    pub kind: String,
    pub username: String,
    pub domain: String,
    pub is_local: bool,
    pub display_name: String,
    pub summary: String,
    pub inbox_url: String,
    pub shared_inbox_url: Option<String>,
    pub outbox_url: Option<String>,
    pub followers_url: Option<String>,
    pub following_url: Option<String>,
    pub profile_url: Option<String>,
    pub avatar_url: Option<String>,
    pub header_url: Option<String>,
    pub public_key_id: String,
    pub public_key_pem: String,
    pub manually_approves: bool,
    pub discoverable: bool,
    pub also_known_as: String,
    pub moved_to: Option<String>,
    pub published_at: i64,
    pub fetched_at: i64,
    /// A remote actor's verified identity (`did:key`); local actors' is set by `set_identity`.
    pub identity_did: Option<String>,
}

/// Inserts an actor, or refreshes the stored copy with the same `ap_id`.
pub async fn upsert(tx: &mut Tx, actor: &NewActor) -> Result<ActorRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO actors (id, ap_id, kind, username, domain, is_local, display_name, summary,
            inbox_url, shared_inbox_url, outbox_url, followers_url, following_url, profile_url,
            avatar_url, header_url, public_key_id, public_key_pem, manually_approves, discoverable,
            also_known_as, moved_to, published_at, fetched_at, identity_did)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
            $19, $20, $21, $22, $23, $24, $25)
         ON CONFLICT (ap_id) DO UPDATE SET kind = excluded.kind, username = excluded.username,
            display_name = excluded.display_name, summary = excluded.summary,
            inbox_url = excluded.inbox_url, shared_inbox_url = excluded.shared_inbox_url,
            outbox_url = excluded.outbox_url, followers_url = excluded.followers_url,
            following_url = excluded.following_url, profile_url = excluded.profile_url,
            avatar_url = excluded.avatar_url, header_url = excluded.header_url,
            public_key_id = excluded.public_key_id, public_key_pem = excluded.public_key_pem,
            manually_approves = excluded.manually_approves, discoverable = excluded.discoverable,
            also_known_as = excluded.also_known_as, moved_to = excluded.moved_to,
            fetched_at = excluded.fetched_at,
            identity_did = CASE WHEN actors.is_local THEN actors.identity_did
                                ELSE excluded.identity_did END
         RETURNING {COLUMNS}"
    );
    on_tx!(tx, |conn| {
        sqlx::query_as::<_, ActorRow>(AssertSqlSafe(sql.as_str()))
            .bind(actor.id)
            .bind(&actor.ap_id)
            .bind(&actor.kind)
            .bind(&actor.username)
            .bind(&actor.domain)
            .bind(actor.is_local)
            .bind(&actor.display_name)
            .bind(&actor.summary)
            .bind(&actor.inbox_url)
            .bind(&actor.shared_inbox_url)
            .bind(&actor.outbox_url)
            .bind(&actor.followers_url)
            .bind(&actor.following_url)
            .bind(&actor.profile_url)
            .bind(&actor.avatar_url)
            .bind(&actor.header_url)
            .bind(&actor.public_key_id)
            .bind(&actor.public_key_pem)
            .bind(actor.manually_approves)
            .bind(actor.discoverable)
            .bind(&actor.also_known_as)
            .bind(&actor.moved_to)
            .bind(actor.published_at)
            .bind(actor.fetched_at)
            .bind(&actor.identity_did)
            .fetch_one(conn)
            .await
    })
}

/// The actor with this internal id.
pub async fn by_id(db: &Db, id: i64) -> Result<Option<ActorRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM actors WHERE id = $1");
    on_db!(db, |pool| sqlx::query_as::<_, ActorRow>(AssertSqlSafe(sql.as_str()))
        .bind(id)
        .fetch_optional(pool)
        .await)
}

/// The account behind a live user token with this hash, and the token's scopes: one statement
/// for what every authenticated request needs first (a round trip fewer than the token, then
/// its account). None for an unknown or revoked token, and for an app token, which names no
/// account.
pub async fn by_token_hash(db: &Db, hash: &str) -> Result<Option<(ActorRow, String)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct WithScopes {
        #[sqlx(flatten)]
        actor: ActorRow,
        token_scopes: String,
    }
    let sql = format!(
        "SELECT {COLUMNS}, t.scopes AS token_scopes FROM actors
         JOIN (SELECT account_id, scopes FROM oauth_tokens WHERE token_hash = $1 AND NOT revoked) t
           ON t.account_id = actors.id"
    );
    let row = on_db!(db, |pool| sqlx::query_as::<_, WithScopes>(AssertSqlSafe(sql.as_str()))
        .bind(hash)
        .fetch_optional(pool)
        .await)?;
    Ok(row.map(|r| (r.actor, r.token_scopes)))
}

/// The actor with this ActivityPub id.
pub async fn by_ap_id(db: &Db, ap_id: &str) -> Result<Option<ActorRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM actors WHERE ap_id = $1");
    on_db!(db, |pool| sqlx::query_as::<_, ActorRow>(AssertSqlSafe(sql.as_str()))
        .bind(ap_id)
        .fetch_optional(pool)
        .await)
}

/// The actor owning a public key id (`…#main-key`).
pub async fn by_key_id(db: &Db, key_id: &str) -> Result<Option<ActorRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM actors WHERE public_key_id = $1 LIMIT 1");
    on_db!(db, |pool| sqlx::query_as::<_, ActorRow>(AssertSqlSafe(sql.as_str()))
        .bind(key_id)
        .fetch_optional(pool)
        .await)
}

/// The actor `username@domain` (username compared case-insensitively, as WebFinger does).
pub async fn by_handle(
    db: &Db,
    username: &str,
    domain: &str,
) -> Result<Option<ActorRow>, sqlx::Error> {
    let sql =
        format!("SELECT {COLUMNS} FROM actors WHERE LOWER(username) = LOWER($1) AND domain = $2");
    on_db!(db, |pool| {
        sqlx::query_as::<_, ActorRow>(AssertSqlSafe(sql.as_str()))
            .bind(username)
            .bind(domain)
            .fetch_optional(pool)
            .await
    })
}

/// Several actors by id, in no particular order.
pub async fn by_ids(db: &Db, ids: &[i64]) -> Result<Vec<ActorRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    // The ids are integers we format ourselves, so inlining them is safe and portable.
    let sql = format!("SELECT {COLUMNS} FROM actors WHERE id IN ({list})");
    on_db!(db, |pool| sqlx::query_as::<_, ActorRow>(AssertSqlSafe(sql.as_str()))
        .fetch_all(pool)
        .await)
}

/// Marks an actor deleted (remote `Delete(Person)`): its notes leave every timeline and its
/// follows end, both ways.
pub async fn mark_deleted(tx: &mut Tx, id: i64, at: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE actors SET deleted_at = $1, suspended = TRUE WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "DELETE FROM home_feed WHERE note_id IN (SELECT id FROM notes WHERE author_id = $1)",
        )
        .bind(id)
        .execute(&mut *conn)
        .await?;
        sqlx::query("UPDATE notes SET deleted_at = $1 WHERE author_id = $2 AND deleted_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM follows WHERE follower_id = $1 OR followee_id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    })
}

/// Counts of notes, followers and following for one actor.
#[derive(Clone, Copy, Debug, Default)]
pub struct ActorCounts {
    pub notes: i64,
    pub followers: i64,
    pub following: i64,
}

/// One actor's counts as an account shows them: followers and following from the counters the
/// triggers keep (`actor_stats`), notes from the counter for a local actor and counted live for a
/// remote one (what this node has seen of it; see the migration for why); for a remote actor,
/// plus what its server reported beyond that (`set_reported`).
static COUNTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT a.id,
            CASE WHEN a.is_local THEN COALESCE(s.notes, 0)
                ELSE {SEEN_NOTES} + COALESCE(s.unseen_notes, 0) END AS notes,
            COALESCE(s.followers, 0) + COALESCE(s.unseen_followers, 0) AS followers,
            COALESCE(s.following, 0) + COALESCE(s.unseen_following, 0) AS following
        FROM actors a LEFT JOIN actor_stats s ON s.actor_id = a.id"
    )
});

/// A remote actor `a`'s notes as this node has seen them, counted live.
const SEEN_NOTES: &str = "(SELECT COUNT(*) FROM notes n
    WHERE n.author_id = a.id AND n.deleted_at IS NULL AND n.reblog_of_id IS NULL)";

/// Takes the right to read a remote actor's reported counts now: false if they were read less
/// than `spacing_ms` ago (or the actor has no counters).
pub async fn claim_counts_read(
    tx: &mut Tx,
    id: i64,
    now: i64,
    spacing_ms: i64,
) -> Result<bool, sqlx::Error> {
    const SQL: &str = "UPDATE actor_stats SET counts_read_at = $2
        WHERE actor_id = $1 AND counts_read_at <= $3";
    on_tx!(tx, |conn| sqlx::query(SQL)
        .bind(id)
        .bind(now)
        .bind(now - spacing_ms)
        .execute(conn)
        .await
        .map(|r| r.rows_affected() == 1))
}

/// Records, for a remote actor, the part of each count its server reports (`None`: not
/// reported, the last figure kept) that this node has not seen: the report less what this node
/// counts now, never below zero.
pub async fn set_reported(
    tx: &mut Tx,
    id: i64,
    reported: ReportedCounts,
) -> Result<(), sqlx::Error> {
    const SQL: &str = "UPDATE actor_stats SET unseen_notes = COALESCE($2, unseen_notes),
        unseen_followers = COALESCE($3, unseen_followers),
        unseen_following = COALESCE($4, unseen_following)
        WHERE actor_id = $1";
    let seen_sql = format!(
        "SELECT {SEEN_NOTES}, s.followers, s.following
        FROM actors a JOIN actor_stats s ON s.actor_id = a.id WHERE a.id = $1"
    );
    let seen =
        on_tx!(tx, |conn| sqlx::query_as::<_, (i64, i64, i64)>(AssertSqlSafe(seen_sql.as_str()))
            .bind(id)
            .fetch_optional(conn)
            .await)?;
    let Some((notes, followers, following)) = seen else { return Ok(()) };
    let unseen = |reported: Option<i64>, seen: i64| reported.map(|r| (r - seen).max(0));
    on_tx!(tx, |conn| sqlx::query(SQL)
        .bind(id)
        .bind(unseen(reported.notes, notes))
        .bind(unseen(reported.followers, followers))
        .bind(unseen(reported.following, following))
        .execute(conn)
        .await
        .map(|_| ()))
}

/// The counts a remote actor's server gives (`totalItems` of its collections), where it gives
/// them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportedCounts {
    pub notes: Option<i64>,
    pub followers: Option<i64>,
    pub following: Option<i64>,
}

/// Counts for a profile (zeros for an unknown id).
pub async fn counts(db: &Db, id: i64) -> Result<ActorCounts, sqlx::Error> {
    Ok(counts_of(db, &[id]).await?.remove(&id).unwrap_or_default())
}

/// `counts` for many actors in one statement (a page of accounts or of statuses).
pub async fn counts_of(
    db: &Db,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, ActorCounts>, sqlx::Error> {
    let mut out: std::collections::HashMap<i64, ActorCounts> =
        ids.iter().map(|&id| (id, ActorCounts::default())).collect();
    if ids.is_empty() {
        return Ok(out);
    }
    let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!("{} WHERE a.id IN ({list})", *COUNTS);
    let rows =
        on_db!(db, |pool| sqlx::query_as::<_, (i64, i64, i64, i64)>(AssertSqlSafe(sql.as_str()))
            .fetch_all(pool)
            .await)?;
    for (id, notes, followers, following) in rows {
        out.insert(id, ActorCounts { notes, followers, following });
    }
    Ok(out)
}

/// Number of local, undeleted actors that are people (for NodeInfo).
pub async fn count_local(db: &Db) -> Result<i64, sqlx::Error> {
    const SQL: &str =
        "SELECT COUNT(*) FROM actors WHERE is_local AND deleted_at IS NULL AND kind = 'Person'";
    on_db!(db, |pool| sqlx::query_scalar::<_, i64>(SQL).fetch_one(pool).await)
}

/// Local actors whose username or display name starts with `prefix` (account search).
pub async fn search(db: &Db, prefix: &str, limit: i64) -> Result<Vec<ActorRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM actors WHERE deleted_at IS NULL
           AND (LOWER(username) LIKE $1 ESCAPE '\\' OR LOWER(display_name) LIKE $1 ESCAPE '\\')
         ORDER BY is_local DESC, id LIMIT $2"
    );
    // `%`, `_` and `\` are matched literally: usernames contain underscores.
    let escaped =
        prefix.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let pattern = format!("{escaped}%");
    on_db!(db, |pool| {
        sqlx::query_as::<_, ActorRow>(AssertSqlSafe(sql.as_str()))
            .bind(&pattern)
            .bind(limit)
            .fetch_all(pool)
            .await
    })
}

/// Profile fields a local user can change.
#[derive(Clone, Debug)]
pub struct ProfileUpdate {
    pub display_name: String,
    pub summary: String,
    pub manually_approves: bool,
    pub discoverable: bool,
}

/// Applies a profile change to a local actor; returns the new row.
pub async fn update_profile(
    tx: &mut Tx,
    id: i64,
    update: &ProfileUpdate,
) -> Result<ActorRow, sqlx::Error> {
    let sql = format!(
        "UPDATE actors SET display_name = $1, summary = $2, manually_approves = $3, discoverable = $4
         WHERE id = $5 AND is_local RETURNING {COLUMNS}"
    );
    on_tx!(tx, |conn| {
        sqlx::query_as::<_, ActorRow>(AssertSqlSafe(sql.as_str()))
            .bind(&update.display_name)
            .bind(&update.summary)
            .bind(update.manually_approves)
            .bind(update.discoverable)
            .bind(id)
            .fetch_one(conn)
            .await
    })
}

/// Replaces a local actor's `alsoKnownAs` (a JSON array of actor ids); returns the new row.
pub async fn set_aliases(
    tx: &mut Tx,
    id: i64,
    aliases_json: &str,
) -> Result<ActorRow, sqlx::Error> {
    let sql = format!(
        "UPDATE actors SET also_known_as = $1 WHERE id = $2 AND is_local RETURNING {COLUMNS}"
    );
    on_tx!(tx, |conn| {
        sqlx::query_as::<_, ActorRow>(AssertSqlSafe(sql.as_str()))
            .bind(aliases_json)
            .bind(id)
            .fetch_one(conn)
            .await
    })
}

/// Records that an actor has moved to `target`; returns the new row.
pub async fn set_moved_to(tx: &mut Tx, id: i64, target: &str) -> Result<ActorRow, sqlx::Error> {
    let sql = format!("UPDATE actors SET moved_to = $1 WHERE id = $2 RETURNING {COLUMNS}");
    on_tx!(tx, |conn| {
        sqlx::query_as::<_, ActorRow>(AssertSqlSafe(sql.as_str()))
            .bind(target)
            .bind(id)
            .fetch_one(conn)
            .await
    })
}

/// Records an actor's verified `did:key` and, for a local actor, its identity statement.
pub async fn set_identity(
    tx: &mut Tx,
    id: i64,
    did: Option<&str>,
    proof: Option<&str>,
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE actors SET identity_did = $1, identity_proof = $2 WHERE id = $3")
            .bind(did)
            .bind(proof)
            .bind(id)
            .execute(conn)
            .await
            .map(|_| ())
    })
}
