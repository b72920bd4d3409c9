//! The inbox's batch write alone (`db::ingest::write_alone`), without HTTP, signatures or
//! parsing: batches of 14 plain notes (B1's average batch) from 1,000 remote authors, each
//! fanned out to one local follower, on a node's database in this process.
//!
//! `cargo bench -p ferry-federation-tests --bench ingest_batch`
//!
//! Wall time per note moves by a fifth between runs on a shared machine; for a steadier
//! comparison of two versions of the SQL, count instructions (docs/benchmarks.md):
//! `INGEST_BATCHES=200 BENCH_BACKENDS=sqlite valgrind --tool=callgrind --toggle-collect='*SqliteWriter::write*' <bench binary> --bench`

mod common;

use std::time::Instant;

use ferry_node::db::notes::NoteRow;
use ferry_node::db::{Held, ingest};
use ferry_protocol::signatures::PrivateKey;

/// Remote authors of the notes.
const AUTHORS: usize = 1_000;
/// Notes per batch: B1's average batch at 64 connections.
const BATCH: usize = 14;
/// Rounds per backend: the tables grow by `BATCH * batches` notes each (`INGEST_BATCH` sets
/// another batch size).
const ROUNDS: usize = 3;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let batches: usize = common::env_number("INGEST_BATCHES", 3_000);
    // Other sizes show a batch's fixed cost beside its cost per note.
    let batch_size: usize = common::env_number("INGEST_BATCH", BATCH).max(1);
    println!(
        "ingest batch: {ROUNDS} rounds of {batches} batches of {batch_size} notes, {AUTHORS} authors"
    );
    let pem = PrivateKey::generate()?.public_key_pem();
    let content = format!(
        "<p>Note. {}</p>",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. ".repeat(7)
    );
    let dir = tempfile::tempdir()?;
    for (db, sub, url) in common::selected_databases(dir.path()).await? {
        let node = common::start_in_process(Some("ferry.bench"), &url, &sub, &[]).await?;
        let state = node.state.clone();
        let authors = common::reader_following(&state, AUTHORS, std::slice::from_ref(&pem)).await?;

        println!("\n[{}]", db.name);
        let mut held = Held::default();
        let mut n = 0usize;
        // PostgreSQL's statistics are refreshed at 1,000 notes and each doubling, as the
        // node's writer does (`federation::ingest`): without them the writers' generic plans,
        // made on empty tables, scan whole tables as they grow.
        let mut next_analyze = 1_000;
        for round in 0..ROUNDS {
            let start = Instant::now();
            for _ in 0..batches {
                let rows: Vec<NoteRow> = (0..batch_size)
                    .map(|_| {
                        n += 1;
                        let (actor, author_id) = &authors[n % AUTHORS];
                        NoteRow {
                            id: state.db.next_id(),
                            ap_id: format!("{actor}/statuses/{n}"),
                            author_id: *author_id,
                            is_local: false,
                            visibility: "public".to_owned(),
                            content: content.clone(),
                            summary: String::new(),
                            sensitive: false,
                            language: None,
                            url: None,
                            in_reply_to_ap_id: None,
                            in_reply_to_id: None,
                            reblog_of_id: None,
                            audience: format!(
                                r#"{{"to":["https://www.w3.org/ns/activitystreams#Public"],"cc":["{actor}/followers"]}}"#
                            ),
                            published_at: ferry_node::ids::now_ms(),
                            updated_at: None,
                            deleted_at: None,
                        }
                    })
                    .collect();
                let entries: Vec<ingest::Entry<'_>> = rows
                    .iter()
                    .map(|row| ingest::Entry {
                        claim: None,
                        note: Some(ingest::NewNote { row, mentions: &[], tags: &[] }),
                        like: None,
                    })
                    .collect();
                let written = ingest::write_alone(&state.db, &mut held, &entries, 1).await?;
                let written =
                    written.ok_or_else(|| anyhow::anyhow!("the batch needed a transaction"))?;
                anyhow::ensure!(
                    written.stored.iter().all(Option::is_some),
                    "a note was not stored"
                );
                if n >= next_analyze {
                    ferry_node::db::notes::analyze_ingest_tables(&state.db).await?;
                    next_analyze *= 2;
                }
            }
            let elapsed = start.elapsed().as_secs_f64();
            let notes = (batches * batch_size) as f64;
            println!(
                "  round {round} (from {} notes stored): {:.1} µs per note, {:.0} µs per batch, \
                 {:.0} notes/s",
                round * batches * batch_size,
                elapsed * 1e6 / notes,
                elapsed * 1e6 / batches as f64,
                notes / elapsed
            );
        }
        let stored = common::scalar(&url, "SELECT COUNT(*) FROM home_feed").await.unwrap_or(-1);
        println!("  home-timeline rows: {stored}");
        drop(held);
        node.stop().await;
        db.cleanup().await;
    }
    Ok(())
}
