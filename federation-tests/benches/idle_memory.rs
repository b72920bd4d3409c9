//! B7a, idle memory (docs/benchmarks.md, performance.md §10): the RSS of a fresh release
//! `ferry` process after 100 mixed requests and a few idle seconds, next to a bare axum
//! hello-world process (this binary run with `--bare`) measured the same way in the same run.
//!
//! `cargo build --release -p ferry-node --bin ferry && cargo bench -p ferry-federation-tests --bench idle_memory`

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use common::{mib, proc_status_kib, verdict};
use serde_json::json;

/// Requests made before reading the RSS.
const REQUESTS: usize = 100;
/// Idle time after the requests.
const IDLE: Duration = Duration::from_secs(5);
/// Target, MiB.
const TARGET_MIB: f64 = 40.0;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    if std::env::args().any(|a| a == "--bare") {
        runtime.block_on(bare())
    } else {
        runtime.block_on(bench())
    }
}

/// A hello-world axum server on the same tokio runtime configuration; exits when stdin closes.
async fn bare() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("PORT {}", listener.local_addr()?.port());
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let app = Router::new().fallback(get(|| async { axum::Json(json!({ "hello": "world" })) }));
    axum::serve(listener, app).await?;
    Ok(())
}

struct Row {
    what: String,
    start_kib: u64,
    rss_kib: u64,
    hwm_kib: u64,
}

async fn bench() -> anyhow::Result<()> {
    println!(
        "B7a idle memory: {REQUESTS} mixed requests, then {} s idle, then VmRSS",
        IDLE.as_secs()
    );
    common::ferry_release_binary()?;
    common::warn_if_stale()?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let mut rows = Vec::new();

    // The floor: a bare axum process, same requests count.
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--bare")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("stdout"))?)
        .read_line(&mut line)?;
    let port: u16 = line.trim().trim_start_matches("PORT ").parse()?;
    let start_kib = proc_status_kib(Some(child.id()), "VmRSS").unwrap_or(0);
    for i in 0..REQUESTS {
        client.get(format!("http://127.0.0.1:{port}/r{i}")).send().await?.bytes().await?;
    }
    tokio::time::sleep(IDLE).await;
    rows.push(Row {
        what: "bare axum hello-world (raw floor)".to_owned(),
        start_kib,
        rss_kib: proc_status_kib(Some(child.id()), "VmRSS").unwrap_or(0),
        hwm_kib: proc_status_kib(Some(child.id()), "VmHWM").unwrap_or(0),
    });
    let _ = child.kill();
    let _ = child.wait();

    let dir = tempfile::tempdir()?;
    for (db, sub, url) in common::selected_databases(dir.path()).await? {
        let node = common::start_process(&url, &sub, None).await?;
        let start_kib = proc_status_kib(Some(node.pid), "VmRSS").unwrap_or(0);
        let base = format!("http://127.0.0.1:{}", node.port);
        let app = common::app_token(&client, &base).await?;
        let token = common::sign_up(&client, &base, &app, "idle").await?;
        for n in 0..3 {
            client
                .post(format!("{base}/api/v1/statuses"))
                .bearer_auth(&token)
                .json(&json!({ "status": format!("Note {n}"), "visibility": "public" }))
                .send()
                .await?;
        }
        let paths = [
            "/api/v1/instance".to_owned(),
            format!("/.well-known/webfinger?resource=acct:idle@{}", node.domain),
            "/users/idle".to_owned(),
            "/.well-known/nodeinfo".to_owned(),
            "/nodeinfo/2.1".to_owned(),
            "/api/v1/timelines/public".to_owned(),
            "/api/v1/timelines/home".to_owned(),
        ];
        let mut failed = 0;
        for i in 0..REQUESTS {
            let path = &paths[i % paths.len()];
            let mut req = client.get(format!("{base}{path}")).header("Host", &node.domain);
            if path == "/users/idle" {
                req = req.header("Accept", "application/activity+json");
            }
            if path.contains("home") {
                req = req.bearer_auth(&token);
            }
            let res = req.send().await?;
            if !res.status().is_success() {
                failed += 1;
            }
            res.bytes().await?;
        }
        tokio::time::sleep(IDLE).await;
        let rss_kib = proc_status_kib(Some(node.pid), "VmRSS").unwrap_or(0);
        let hwm_kib = proc_status_kib(Some(node.pid), "VmHWM").unwrap_or(0);
        println!(
            "\n[{}] {REQUESTS} requests ({failed} not 2xx); RSS {:.1} MiB at start, {:.1} MiB after, peak {:.1} MiB",
            db.name,
            mib(start_kib),
            mib(rss_kib),
            mib(hwm_kib)
        );
        rows.push(Row { what: format!("ferry, {}", db.name), start_kib, rss_kib, hwm_kib });
        node.stop();
        db.cleanup().await;
    }

    println!("\nB7a summary (target < {TARGET_MIB} MiB; PostgreSQL's own memory not counted)");
    println!(
        "{:<36} {:>10} {:>10} {:>10} {:>12}",
        "process", "start MiB", "RSS MiB", "peak MiB", "vs floor"
    );
    let floor = rows.first().map_or(1, |r| r.rss_kib.max(1));
    for (i, row) in rows.iter().enumerate() {
        let verdict = if i == 0 { "" } else { verdict(mib(row.rss_kib) < TARGET_MIB) };
        println!(
            "{:<36} {:>10.1} {:>10.1} {:>10.1} {:>11.1}x  {verdict}",
            row.what,
            mib(row.start_kib),
            mib(row.rss_kib),
            mib(row.hwm_kib),
            row.rss_kib as f64 / floor as f64
        );
    }
    Ok(())
}
