//! B4, sign-up surge (docs/benchmarks.md, performance.md §10): `POST /api/v1/accounts` with an
//! app token, closed loop, for 20 s per backend; sign-ups/s and latency against the Argon2id
//! hash rate of both cores measured in the same run (the `argon2` crate's defaults, as the
//! node uses).
//!
//! `cargo bench -p ferry-federation-tests --bench signup`

mod common;

use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};
use common::{Percentiles, closed_loop, cpu_seconds, load_client, ms, verdict};
use serde_json::{Value, json};

/// Sign-ups in flight at once (enough to keep both cores busy hashing).
const CONCURRENCY: usize = 8;
/// Length of the surge per backend.
const BUDGET: Duration = Duration::from_secs(20);
/// Actor documents of fresh accounts fetched after the surge.
const FETCHES: usize = 20;

fn argon2_rate(threads: usize, budget: Duration) -> f64 {
    let salt = SaltString::from_b64("YmVuY2hzYWx0YmVuY2g").expect("static salt");
    common::parallel_rate(threads, budget, || {
        || {
            std::hint::black_box(
                Argon2::default()
                    .hash_password(common::PASSWORD.as_bytes(), &salt)
                    .expect("hashing")
                    .to_string(),
            );
        }
    })
}

struct Row {
    backend: &'static str,
    rate: f64,
    p99: Duration,
    errors: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::init_logs();
    println!(
        "B4 sign-up surge: POST /api/v1/accounts, {CONCURRENCY} in flight, {} s per backend",
        BUDGET.as_secs()
    );
    let argon_2 = argon2_rate(2, Duration::from_secs(3));
    let argon_1 = argon2_rate(1, Duration::from_secs(2));
    println!(
        "raw Argon2id (argon2 0.5 defaults): {argon_2:.1} hashes/s on two threads ({argon_1:.1}/s on one)"
    );
    let keygen = common::parallel_rate(1, Duration::from_secs(2), || {
        || {
            std::hint::black_box(ferry_protocol::signatures::PrivateKey::generate().expect("key"));
        }
    });
    println!(
        "raw RSA-2048 key generation: {keygen:.1} keys/s on one thread ({:.0} ms each)",
        1000.0 / keygen
    );

    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for db in common::databases(dir.path()).await {
        if !common::selected(db.name) {
            db.cleanup().await;
            continue;
        }
        let sub = dir.path().join(db.name);
        std::fs::create_dir_all(&sub)?;
        let url = if db.name == "sqlite" {
            format!("sqlite://{}", sub.join("ferry.db").display())
        } else {
            db.url.clone()
        };
        let node = common::start_in_process(None, &url, &sub, &[]).await?;
        let base = node.base();
        // Let the key pool fill before the surge, as it would on a node that was idle.
        common::wait_idle(None, Duration::from_secs(20)).await;
        let pool_before = ferry_node::db::keys::len(&node.state.db).await.unwrap_or(-1);
        let client = load_client(CONCURRENCY);
        let app = common::app_token(&client, &base).await?;

        let cpu = cpu_seconds(None);
        let started = Instant::now();
        let run = {
            let (client, base, app) = (client.clone(), base.clone(), app.clone());
            closed_loop(CONCURRENCY, usize::MAX, BUDGET, move |i| {
                let (client, base, app) = (client.clone(), base.clone(), app.clone());
                async move {
                    let res = client
                        .post(format!("{base}/api/v1/accounts"))
                        .bearer_auth(&app)
                        .json(&json!({ "username": format!("u{i}"), "password": common::PASSWORD, "agreement": true, "locale": "en" }))
                        .send()
                        .await
                        .map_err(|e| format!("transport: {e}"))?;
                    let status = res.status();
                    let body: Value = res.json().await.unwrap_or_default();
                    if status.is_success() && body["access_token"].is_string() {
                        Ok(())
                    } else {
                        Err(format!("{status} {body}"))
                    }
                }
            })
            .await
        };
        let cpu = cpu_seconds(None) - cpu;
        let wall = started.elapsed();
        let pool_after = ferry_node::db::keys::len(&node.state.db).await.unwrap_or(-1);
        let keyless =
            common::scalar(&url, "SELECT COUNT(*) FROM accounts WHERE private_key_pem = ''")
                .await
                .unwrap_or(-1);

        // The newest accounts' actor documents: how long until they are servable (with a key).
        let mut fetch_times = Vec::new();
        let mut without_key = 0;
        let newest = run.ok as usize;
        for n in (0..newest).rev().take(FETCHES) {
            let started = Instant::now();
            let res = client
                .get(format!("{base}/users/u{n}"))
                .header("Accept", "application/activity+json")
                .send()
                .await;
            let doc: Value = match res {
                Ok(res) if res.status().is_success() => res.json().await.unwrap_or_default(),
                _ => continue,
            };
            fetch_times.push(started.elapsed());
            if doc["publicKey"]["publicKeyPem"].as_str().unwrap_or_default().is_empty() {
                without_key += 1;
            }
        }

        let rate = run.rate();
        let p = Percentiles::new(run.latencies);
        println!("\n[{}]", db.name);
        println!(
            "  {} sign-ups in {:.1} s = {rate:.1}/s; {} errors; {}",
            run.ok,
            run.elapsed.as_secs_f64(),
            run.errors,
            p.summary()
        );
        for e in &run.error_samples {
            println!("    error: {e}");
        }
        println!(
            "  CPU (node + generator): {:.1} ms per sign-up, {:.0} % of two cores over {:.1} s",
            cpu * 1000.0 / run.ok.max(1) as f64,
            cpu / wall.as_secs_f64() / 2.0 * 100.0,
            wall.as_secs_f64()
        );
        println!(
            "  key pool: {pool_before} keys before, {pool_after} after; {keyless} accounts still without a key"
        );
        println!(
            "  actor documents of the {} newest accounts: {}; {without_key} served without a key",
            fetch_times.len(),
            Percentiles::new(fetch_times).summary()
        );
        rows.push(Row { backend: db.name, rate, p99: p.at(99.0), errors: run.errors });
        node.stop().await;
        db.cleanup().await;
    }

    println!("\nB4 summary (limit = Argon2id on two threads, {argon_2:.1}/s)");
    println!(
        "{:<9} {:>11} {:>8} {:>7} {:>9} {:>7}  target: >= 50 % and >= 45/s, p99 <= 300 ms",
        "backend", "sign-ups/s", "limit/s", "ratio", "p99 ms", "errors"
    );
    for row in rows {
        let ratio = row.rate / argon_2;
        let ok = ratio >= 0.5 && row.rate >= 45.0 && ms(row.p99) <= 300.0 && row.errors == 0;
        println!(
            "{:<9} {:>11.1} {:>8.1} {:>6.1}% {:>9.0} {:>7}  {}",
            row.backend,
            row.rate,
            argon_2,
            ratio * 100.0,
            ms(row.p99),
            row.errors,
            verdict(ok)
        );
    }
    Ok(())
}
