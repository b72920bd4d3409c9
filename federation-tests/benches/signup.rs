//! B4, sign-up surge (docs/benchmarks.md, performance.md §10): `POST /api/v1/accounts` with an
//! app token, closed loop, for 20 s per backend, against the real release `ferry` process;
//! sign-ups/s, latency and the node's RSS, against the Argon2id hash rate of both cores
//! measured in the same run (the `argon2` crate's defaults, as the node uses).
//!
//! `cargo build --release -p ferry-node --bin ferry && cargo bench -p ferry-federation-tests --bench signup`

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
    rss_peak_mib: f64,
}

const POOL_SQL: &str = "SELECT COUNT(*) FROM key_pool";

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

    common::warn_if_stale()?;
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for (db, sub, url) in common::selected_databases(dir.path()).await? {
        let node = common::start_process(&url, &sub, None).await?;
        let base = format!("http://127.0.0.1:{}", node.port);
        // Let the key pool fill before the surge, as it would on a node that was idle.
        common::wait_idle(Some(node.pid), Duration::from_secs(20)).await;
        let pool_before = common::scalar(&url, POOL_SQL).await.unwrap_or(-1);
        let rss_before = common::proc_status_kib(Some(node.pid), "VmRSS").unwrap_or(0);
        let client = load_client(CONCURRENCY);
        let app = common::app_token(&client, &base).await?;

        let cpu = cpu_seconds(Some(node.pid));
        let started = Instant::now();
        let pid = node.pid;
        let sampler = tokio::spawn(async move {
            let mut samples = Vec::new();
            for _ in 0..(BUDGET.as_secs() / 4) {
                tokio::time::sleep(Duration::from_secs(4)).await;
                let rss = common::proc_status_kib(Some(pid), "VmRSS").unwrap_or(0);
                let threads = common::proc_status_kib(Some(pid), "Threads").unwrap_or(0);
                samples.push(format!("{:.0} MiB/{threads} threads", common::mib(rss)));
            }
            samples
        });
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
        let cpu = cpu_seconds(Some(node.pid)) - cpu;
        let wall = started.elapsed();
        let samples = sampler.await.unwrap_or_default();
        let rss_after = common::proc_status_kib(Some(node.pid), "VmRSS").unwrap_or(0);
        let rss_peak = common::proc_status_kib(Some(node.pid), "VmHWM").unwrap_or(0);
        let pool_after = common::scalar(&url, POOL_SQL).await.unwrap_or(-1);
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
            "  node CPU: {:.1} ms per sign-up, {:.0} % of two cores over {:.1} s",
            cpu * 1000.0 / run.ok.max(1) as f64,
            cpu / wall.as_secs_f64() / 2.0 * 100.0,
            wall.as_secs_f64()
        );
        println!(
            "  node RSS: {:.0} MiB before, {:.0} MiB at the end, peak {:.0} MiB \
             (Argon2id needs 19 MiB per hash; {CONCURRENCY} in flight = {} MiB)",
            common::mib(rss_before),
            common::mib(rss_after),
            common::mib(rss_peak),
            19 * CONCURRENCY
        );
        println!("    every 4 s during the surge: {}", samples.join(", "));
        println!(
            "  key pool: {pool_before} keys before, {pool_after} after; {keyless} accounts still without a key"
        );
        println!(
            "  actor documents of the {} newest accounts: {}; {without_key} served without a key",
            fetch_times.len(),
            Percentiles::new(fetch_times).summary()
        );
        let linger: u64 = common::env_number("BENCH_LINGER_SECS", 0);
        for waited in (0..linger).step_by(10) {
            tokio::time::sleep(Duration::from_secs(10)).await;
            println!(
                "    +{} s idle: RSS {:.0} MiB, {} threads",
                waited + 10,
                common::mib(common::proc_status_kib(Some(node.pid), "VmRSS").unwrap_or(0)),
                common::proc_status_kib(Some(node.pid), "Threads").unwrap_or(0)
            );
        }
        rows.push(Row {
            backend: db.name,
            rate,
            p99: p.at(99.0),
            errors: run.errors,
            rss_peak_mib: common::mib(rss_peak),
        });
        node.stop();
        db.cleanup().await;
    }

    println!("\nB4 summary (limit = Argon2id on two threads, {argon_2:.1}/s)");
    println!(
        "{:<9} {:>11} {:>8} {:>7} {:>9} {:>7} {:>13}  target: >= 50 % and >= 45/s, p99 <= 300 ms",
        "backend", "sign-ups/s", "limit/s", "ratio", "p99 ms", "errors", "peak RSS MiB"
    );
    for row in rows {
        let ratio = row.rate / argon_2;
        let ok = ratio >= 0.5 && row.rate >= 45.0 && ms(row.p99) <= 300.0 && row.errors == 0;
        println!(
            "{:<9} {:>11.1} {:>8.1} {:>6.1}% {:>9.0} {:>7} {:>13.0}  {}",
            row.backend,
            row.rate,
            argon_2,
            ratio * 100.0,
            ms(row.p99),
            row.errors,
            row.rss_peak_mib,
            verdict(ok)
        );
    }
    Ok(())
}
