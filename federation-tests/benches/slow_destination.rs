//! B3, one slow destination (docs/benchmarks.md, performance.md §10): 3,000 activities queued
//! to one server that answers every POST after 250 ms; activities/s to it, against the
//! pipelining ceiling (window / round trip) and a bare client with the same window measured in
//! the same run. A second phase makes the server answer 429 `Retry-After: 1` for two seconds
//! and prints the requests in flight at the server over time, to show the window shrinking.
//!
//! `cargo bench -p ferry-federation-tests --bench slow_destination`

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use common::{epoch_ns, verdict};
use ferry_node::services::accounts::CreateAccount;
use ferry_node::state::AppState;

/// Activities queued per phase.
const ACTIVITIES: usize = 3_000;
/// The destination's response time.
const RTT: Duration = Duration::from_millis(250);
/// Phase 2: when the destination starts and stops answering 429.
const THROTTLE_FROM: Duration = Duration::from_millis(1_500);
const THROTTLE_UNTIL: Duration = Duration::from_millis(3_500);

#[derive(Default)]
struct Sink {
    throttling: AtomicBool,
    in_flight: AtomicI64,
    max_in_flight: AtomicI64,
    accepted: AtomicU64,
    throttled: AtomicU64,
    last_ns: AtomicU64,
}

impl Sink {
    fn reset(&self) {
        self.throttling.store(false, Ordering::SeqCst);
        self.max_in_flight.store(0, Ordering::SeqCst);
        self.accepted.store(0, Ordering::SeqCst);
        self.throttled.store(0, Ordering::SeqCst);
        self.last_ns.store(0, Ordering::SeqCst);
    }
}

async fn inbox(State(sink): State<Arc<Sink>>) -> impl IntoResponse {
    let now = sink.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    sink.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(RTT).await;
    let throttling = sink.throttling.load(Ordering::SeqCst);
    sink.in_flight.fetch_sub(1, Ordering::SeqCst);
    let mut headers = HeaderMap::new();
    if throttling {
        sink.throttled.fetch_add(1, Ordering::SeqCst);
        headers.insert("retry-after", HeaderValue::from_static("1"));
        (StatusCode::TOO_MANY_REQUESTS, headers)
    } else {
        sink.accepted.fetch_add(1, Ordering::SeqCst);
        sink.last_ns.fetch_max(epoch_ns(), Ordering::SeqCst);
        (StatusCode::ACCEPTED, headers)
    }
}

/// One sample of the destination's view.
#[derive(Clone, Copy)]
struct Sample {
    at: Duration,
    in_flight: i64,
    accepted: u64,
    throttled: u64,
    throttling: bool,
}

/// Samples the sink every 50 ms until `ACTIVITIES` are accepted or `max` has passed.
async fn watch(sink: &Sink, max: Duration, throttle: bool) -> Vec<Sample> {
    let start = Instant::now();
    let mut samples = Vec::new();
    loop {
        let at = start.elapsed();
        if throttle {
            sink.throttling.store(at >= THROTTLE_FROM && at < THROTTLE_UNTIL, Ordering::SeqCst);
        }
        let sample = Sample {
            at,
            in_flight: sink.in_flight.load(Ordering::SeqCst),
            accepted: sink.accepted.load(Ordering::SeqCst),
            throttled: sink.throttled.load(Ordering::SeqCst),
            throttling: sink.throttling.load(Ordering::SeqCst),
        };
        samples.push(sample);
        if sample.accepted >= ACTIVITIES as u64 || at > max {
            sink.throttling.store(false, Ordering::SeqCst);
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Accepted/s between the samples where 10 % and 90 % of the activities had arrived.
fn steady_rate(samples: &[Sample]) -> f64 {
    let n = ACTIVITIES as u64;
    let at = |share: u64| samples.iter().find(|s| s.accepted * 100 >= n * share);
    match (at(10), at(90)) {
        (Some(a), Some(b)) if b.at > a.at => {
            (b.accepted - a.accepted) as f64 / (b.at - a.at).as_secs_f64()
        }
        _ => 0.0,
    }
}

fn print_timeline(samples: &[Sample]) {
    println!("    t (s)  in flight  accepted  429s sent  destination");
    for s in samples.iter().step_by(5) {
        println!(
            "    {:>5.2}  {:>9}  {:>8}  {:>9}  {}",
            s.at.as_secs_f64(),
            s.in_flight,
            s.accepted,
            s.throttled,
            if s.throttling { "429 Retry-After: 1" } else { "202 after 250 ms" }
        );
    }
}

/// Queues `ACTIVITIES` activities by `actor` to the sink, in one transaction, and wakes the
/// worker.
async fn queue(
    state: &AppState,
    actor: &ferry_node::db::actors::ActorRow,
    port: u16,
    phase: u32,
) -> anyhow::Result<()> {
    let inbox = format!("http://127.0.0.1:{port}/inbox");
    let domain = format!("127.0.0.1:{port}");
    let targets = vec![(inbox, domain)];
    let now = ferry_node::ids::now_ms();
    let mut tx = state.db.begin().await?;
    for i in 0..ACTIVITIES {
        let id = format!("{}/bench/{phase}/{i}", actor.ap_id);
        let payload = serde_json::json!({
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": id,
            "type": "Create",
            "actor": actor.ap_id,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
            "object": {
                "id": format!("{id}/note"),
                "type": "Note",
                "attributedTo": actor.ap_id,
                "content": format!("<p>Activity {i} of phase {phase}. {}</p>", "Lorem ipsum dolor sit amet. ".repeat(20)),
                "to": ["https://www.w3.org/ns/activitystreams#Public"]
            }
        })
        .to_string();
        let activity =
            ferry_node::db::deliveries::insert_activity(&mut tx, &id, actor.id, &payload, now)
                .await?;
        ferry_node::db::deliveries::enqueue(&mut tx, activity, &targets, now).await?;
    }
    tx.commit().await?;
    state.wake_delivery();
    Ok(())
}

struct Row {
    backend: &'static str,
    rate: f64,
    steady: f64,
    max_in_flight: i64,
    throttled_in_flight: i64,
    throttled_sent: u64,
    phase2_seconds: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::init_logs();
    println!(
        "B3 one slow destination: {ACTIVITIES} activities to one server answering after {} ms",
        RTT.as_millis()
    );
    let sink = Arc::new(Sink::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = Router::new().route("/inbox", post(inbox)).with_state(sink.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir = tempfile::tempdir()?;
    let databases = common::selected_databases(dir.path()).await?;

    // The raw limit: a bare client keeping as many requests in flight as the node's largest
    // per-server window, against the same destination.
    let env = common::node_env("localhost:1", "127.0.0.1:1", &databases[0].0.url, dir.path()).0;
    let config = ferry_node::config::Config::from_parts(None, &|name| env.get(name).cloned())?;
    let (initial, window) = (config.delivery.initial_per_domain, config.delivery.max_per_domain);
    let client = common::load_client(window);
    let url = format!("http://127.0.0.1:{port}/inbox");
    let bare = common::closed_loop(window, ACTIVITIES, Duration::from_secs(30), move |_| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let res = client.post(url).body("{}").send().await.map_err(|e| e.to_string())?;
            if res.status() == reqwest::StatusCode::ACCEPTED {
                Ok(())
            } else {
                Err(res.status().to_string())
            }
        }
    })
    .await;
    sink.reset();
    let bare_rate = bare.rate();
    let ceiling = window as f64 / RTT.as_secs_f64();
    println!(
        "per-server window: starts at {initial}, grows to {window}; ceiling {window}/{:.2} s = {ceiling:.0}/s; \
         sequential delivery would be {:.0}/s",
        RTT.as_secs_f64(),
        1.0 / RTT.as_secs_f64()
    );
    println!("bare client with {window} requests in flight (raw limit): {bare_rate:.0}/s");

    let mut rows = Vec::new();
    for (db, sub, url) in databases {
        let node = common::start_in_process(None, &url, &sub, &[]).await?;
        let actor = ferry_node::services::accounts::create(
            &node.state,
            CreateAccount {
                username: "sender".to_owned(),
                password: common::PASSWORD.to_owned(),
                email: None,
                admin: false,
            },
        )
        .await?;
        common::wait_idle(None, Duration::from_secs(15)).await;

        // Phase 1: steady 250 ms answers.
        sink.reset();
        let queued = Instant::now();
        queue(&node.state, &actor, port, 1).await?;
        let queue_seconds = queued.elapsed().as_secs_f64();
        let t0 = epoch_ns();
        let phase1 = watch(&sink, Duration::from_secs(60), false).await;
        let seconds = sink.last_ns.load(Ordering::SeqCst).saturating_sub(t0) as f64 / 1e9;
        let accepted = sink.accepted.load(Ordering::SeqCst);
        let rate = accepted as f64 / seconds.max(1e-9);
        let steady = steady_rate(&phase1);
        let max1 = sink.max_in_flight.load(Ordering::SeqCst);
        println!(
            "\n[{}] phase 1: 202 after {} ms ({ACTIVITIES} activities queued in one transaction in {queue_seconds:.2} s)",
            db.name,
            RTT.as_millis()
        );
        println!(
            "  {accepted}/{ACTIVITIES} delivered in {seconds:.2} s from commit = {rate:.0}/s; \
             steady (10 %-90 %) {steady:.0}/s; max {max1} in flight at the destination"
        );
        print_timeline(&phase1);

        // Phase 2: the destination throttles for two seconds.
        sink.reset();
        queue(&node.state, &actor, port, 2).await?;
        let t0 = Instant::now();
        let phase2 = watch(&sink, Duration::from_secs(60), true).await;
        let phase2_seconds = t0.elapsed().as_secs_f64();
        let before = phase2.iter().filter(|s| s.at < THROTTLE_FROM).map(|s| s.in_flight).max();
        let inside = phase2
            .iter()
            .filter(|s| s.at >= THROTTLE_FROM + Duration::from_millis(750) && s.at < THROTTLE_UNTIL)
            .map(|s| s.in_flight)
            .max()
            .unwrap_or(0);
        let throttled = sink.throttled.load(Ordering::SeqCst);
        println!(
            "\n[{}] phase 2: 429 Retry-After: 1 from {:.1} s to {:.1} s",
            db.name,
            THROTTLE_FROM.as_secs_f64(),
            THROTTLE_UNTIL.as_secs_f64()
        );
        println!(
            "  in flight: up to {} before the 429s, up to {inside} from 0.75 s into them; \
             {throttled} requests answered 429; all {} delivered after {phase2_seconds:.2} s",
            before.unwrap_or(0),
            sink.accepted.load(Ordering::SeqCst)
        );
        print_timeline(&phase2);
        rows.push(Row {
            backend: db.name,
            rate,
            steady,
            max_in_flight: max1,
            throttled_in_flight: inside,
            throttled_sent: throttled,
            phase2_seconds,
        });
        node.stop().await;
        db.cleanup().await;
    }

    println!(
        "\nB3 summary (limits: bare client {bare_rate:.0}/s, window ceiling {ceiling:.0}/s; target >= 250/s)"
    );
    println!(
        "{:<9} {:>10} {:>9} {:>11} {:>9} {:>13} {:>13} {:>9}",
        "backend",
        "overall/s",
        "steady/s",
        "vs bare",
        "max infl",
        "infl in 429s",
        "429s answered",
        "phase 2 s"
    );
    for row in rows {
        println!(
            "{:<9} {:>10.0} {:>9.0} {:>10.1}% {:>9} {:>13} {:>13} {:>9.2}  {}",
            row.backend,
            row.rate,
            row.steady,
            row.rate / bare_rate * 100.0,
            row.max_in_flight,
            row.throttled_in_flight,
            row.throttled_sent,
            row.phase2_seconds,
            verdict(row.rate >= 250.0)
        );
    }
    Ok(())
}
