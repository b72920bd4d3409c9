//! `follows`: who follows whom, pending (follow request) or accepted.

use sqlx::AssertSqlSafe;

use super::{Db, Tx, on_db, on_tx};

/// One follow relationship.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FollowRow {
    pub id: i64,
    pub ap_id: String,
    pub follower_id: i64,
    pub followee_id: i64,
    pub accepted: bool,
    pub created_at: i64,
}

impl FollowRow {
    /// The account on `side` of this follow, as a list of that side shows it: the follower in
    /// a followers list, the followee in a following list.
    pub fn listed(&self, side: Side) -> i64 {
        match side {
            Side::Followers => self.follower_id,
            Side::Following => self.followee_id,
        }
    }
}

const COLUMNS: &str = "id, ap_id, follower_id, followee_id, accepted, created_at";

/// Records a follow. A repeated Follow of the same pair keeps the row (and its accepted state)
/// but takes the newest activity id, so a later Accept or Undo of it matches.
pub async fn upsert(tx: &mut Tx, row: &FollowRow) -> Result<FollowRow, sqlx::Error> {
    let sql = format!(
        "INSERT INTO follows (id, ap_id, follower_id, followee_id, accepted, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (follower_id, followee_id) DO UPDATE SET ap_id = excluded.ap_id,
            accepted = follows.accepted OR excluded.accepted
         RETURNING {COLUMNS}"
    );
    on_tx!(tx, |conn| {
        sqlx::query_as::<_, FollowRow>(AssertSqlSafe(sql.as_str()))
            .bind(row.id)
            .bind(&row.ap_id)
            .bind(row.follower_id)
            .bind(row.followee_id)
            .bind(row.accepted)
            .bind(row.created_at)
            .fetch_one(conn)
            .await
    })
}

/// The follow of `followee` by `follower`, if any.
pub async fn by_pair(
    db: &Db,
    follower: i64,
    followee: i64,
) -> Result<Option<FollowRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM follows WHERE follower_id = $1 AND followee_id = $2");
    on_db!(db, |pool| {
        sqlx::query_as::<_, FollowRow>(AssertSqlSafe(sql.as_str()))
            .bind(follower)
            .bind(followee)
            .fetch_optional(pool)
            .await
    })
}

/// The follow created by the activity `ap_id`.
pub async fn by_ap_id(db: &Db, ap_id: &str) -> Result<Option<FollowRow>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM follows WHERE ap_id = $1");
    on_db!(db, |pool| sqlx::query_as::<_, FollowRow>(AssertSqlSafe(sql.as_str()))
        .bind(ap_id)
        .fetch_optional(pool)
        .await)
}

/// Marks a follow accepted.
pub async fn accept(tx: &mut Tx, id: i64) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE follows SET accepted = TRUE WHERE id = $1")
            .bind(id)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// Removes the follow of `followee` by `follower`; returns it if there was one.
pub async fn delete(
    tx: &mut Tx,
    follower: i64,
    followee: i64,
) -> Result<Option<FollowRow>, sqlx::Error> {
    let sql = format!(
        "DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2 RETURNING {COLUMNS}"
    );
    on_tx!(tx, |conn| {
        sqlx::query_as::<_, FollowRow>(AssertSqlSafe(sql.as_str()))
            .bind(follower)
            .bind(followee)
            .fetch_optional(conn)
            .await
    })
}

/// Local actors that follow `followee` or asked to (pending requests too), by follow id after
/// `after`: the followers a move carries over on this node. A request still waiting when the
/// account moves (its `Accept` may arrive only after the `Move`) follows the new account.
pub async fn local_followers(
    db: &Db,
    followee: i64,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, i64)>, sqlx::Error> {
    const SQL: &str = "SELECT f.id, f.follower_id FROM follows f
        JOIN actors a ON a.id = f.follower_id
        WHERE f.followee_id = $1 AND a.is_local AND f.id > $2
        ORDER BY f.id LIMIT $3";
    on_db!(db, |pool| sqlx::query_as::<_, (i64, i64)>(SQL)
        .bind(followee)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// Which side of a follow to list.
#[derive(Clone, Copy, Debug)]
pub enum Side {
    /// Those who follow the actor.
    Followers,
    /// Those the actor follows.
    Following,
}

/// A page of accepted follows of one actor, newest first, with `id < before`.
pub async fn page(
    db: &Db,
    actor: i64,
    side: Side,
    before: i64,
    limit: i64,
) -> Result<Vec<FollowRow>, sqlx::Error> {
    let column = match side {
        Side::Followers => "followee_id",
        Side::Following => "follower_id",
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM follows WHERE {column} = $1 AND accepted AND id < $2
         ORDER BY id DESC LIMIT $3"
    );
    on_db!(db, |pool| {
        sqlx::query_as::<_, FollowRow>(AssertSqlSafe(sql.as_str()))
            .bind(actor)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await
    })
}

/// Pending follow requests to a local actor, newest first.
pub async fn pending_for(
    db: &Db,
    followee: i64,
    limit: i64,
) -> Result<Vec<FollowRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM follows WHERE followee_id = $1 AND NOT accepted
         ORDER BY id DESC LIMIT $2"
    );
    on_db!(db, |pool| sqlx::query_as::<_, FollowRow>(AssertSqlSafe(sql.as_str()))
        .bind(followee)
        .bind(limit)
        .fetch_all(pool)
        .await)
}

/// Follows from `follower` to any of `followees` (for relationships).
pub async fn from_to_many(
    db: &Db,
    follower: i64,
    followees: &[i64],
) -> Result<Vec<FollowRow>, sqlx::Error> {
    if followees.is_empty() {
        return Ok(Vec::new());
    }
    let list = followees.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let sql = format!(
        "SELECT {COLUMNS} FROM follows WHERE (follower_id = $1 AND followee_id IN ({list}))
            OR (followee_id = $1 AND follower_id IN ({list}))"
    );
    on_db!(db, |pool| sqlx::query_as::<_, FollowRow>(AssertSqlSafe(sql.as_str()))
        .bind(follower)
        .fetch_all(pool)
        .await)
}
