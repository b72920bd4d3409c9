//! `key_pool`: RSA keys generated ahead of need, so sign-ups never wait for key generation.

use super::{Db, Tx, on_db, on_tx};

/// Adds a generated key to the pool.
pub async fn push(tx: &mut Tx, private_key_pem: &str) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn| {
        sqlx::query("INSERT INTO key_pool (private_key_pem) VALUES ($1)")
            .bind(private_key_pem)
            .execute(conn)
            .await
            .map(|_| ())
    })
}

/// Takes one key out of the pool, inside the caller's transaction.
pub async fn take(tx: &mut Tx) -> Result<Option<String>, sqlx::Error> {
    // PostgreSQL: skip a row another sign-up holds instead of waiting for it and finding it
    // gone. SQLite has one writer, so no row is ever held.
    const SQL: &str =
        "DELETE FROM key_pool WHERE id = (SELECT MIN(id) FROM key_pool) RETURNING private_key_pem";
    const SQL_PG: &str = "DELETE FROM key_pool WHERE id = (SELECT id FROM key_pool ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING private_key_pem";
    match tx {
        Tx::Sqlite(t) => sqlx::query_scalar::<_, String>(SQL).fetch_optional(&mut **t).await,
        Tx::Postgres(t) => sqlx::query_scalar::<_, String>(SQL_PG).fetch_optional(&mut **t).await,
    }
}

/// Keys waiting in the pool.
pub async fn len(db: &Db) -> Result<i64, sqlx::Error> {
    on_db!(db, |pool| sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM key_pool")
        .fetch_one(pool)
        .await)
}
