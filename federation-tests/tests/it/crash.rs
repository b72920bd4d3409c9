//! A real `ferry` process is killed with SIGKILL while another node has deliveries queued for
//! it, then started again on the same database: every queued delivery arrives, once.

use std::process::{Child, Command, Stdio};

use ferry_federation_tests::{TestNode, User, eventually, ferry_binary, test_env};
use serde_json::json;

/// A node run as its own `ferry serve` process.
struct ProcessNode {
    child: Child,
    base: String,
}

fn start(domain: &str, dir: &std::path::Path) -> ProcessNode {
    let mut command = Command::new(ferry_binary().expect("ferry binary"));
    command.arg("serve").envs(test_env(domain, dir)).stdout(Stdio::null()).stderr(Stdio::null());
    ProcessNode { child: command.spawn().expect("ferry starts"), base: format!("http://{domain}") }
}

async fn wait_up(base: &str) {
    let client = reqwest::Client::new();
    eventually(&format!("{base} answering"), 30, || async {
        client
            .get(format!("{base}/api/v1/instance"))
            .send()
            .await
            .ok()
            .filter(|r| r.status().is_success())
            .map(|_| ())
    })
    .await;
}

async fn post(
    base: &str,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> serde_json::Value {
    let mut req = reqwest::Client::new().post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("request");
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.expect("json")
}

async fn sign_up(base: &str, username: &str) -> String {
    let app = post(base, "/api/v1/apps", None, json!({ "client_name": "crash", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob", "scopes": "read write follow" })).await;
    let token = post(base, "/oauth/token", None, json!({ "grant_type": "client_credentials", "client_id": app["client_id"], "client_secret": app["client_secret"], "scope": "read write follow" })).await;
    let user = post(
        base,
        "/api/v1/accounts",
        token["access_token"].as_str(),
        json!({ "username": username, "password": "correct horse battery", "agreement": true }),
    )
    .await;
    user["access_token"].as_str().expect("token").to_owned()
}

async fn home_contents(base: &str, token: &str) -> Vec<String> {
    let res = reqwest::Client::new()
        .get(format!("{base}/api/v1/timelines/home?limit=40"))
        .bearer_auth(token)
        .send()
        .await;
    let Ok(res) = res else { return Vec::new() };
    let items: serde_json::Value = res.json().await.unwrap_or_default();
    items
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["content"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_survive_the_receiver_being_killed() {
    let a = TestNode::spawn().await;
    let alice: User = a.create_user("alice").await;

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let domain = format!("localhost:{port}");
    let dir = tempfile::tempdir().unwrap();
    let mut b = start(&domain, dir.path());
    wait_up(&b.base).await;
    let bob = sign_up(&b.base, "bob").await;

    // bob@B follows alice@A, so alice's notes are delivered to B.
    let found: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v2/search?q=@{}&resolve=true", b.base, alice.handle))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice_on_b = found["accounts"][0]["id"].as_str().expect("alice found").to_owned();
    post(&b.base, &format!("/api/v1/accounts/{alice_on_b}/follow"), Some(&bob), json!({})).await;
    eventually("alice has a follower on B", 20, || async {
        let (_, followers) = a.get_ap("/users/alice/followers").await;
        (followers["totalItems"] == 1).then_some(())
    })
    .await;

    // B dies without warning; alice posts while it is down.
    b.child.kill().expect("SIGKILL");
    b.child.wait().expect("reaped");
    for n in 0..15 {
        let (status, _) = a
            .post(
                "/api/v1/statuses",
                Some(&alice.token),
                json!({ "status": format!("note {n} while B is down") }),
            )
            .await;
        assert_eq!(status, 200);
    }
    let (queued, _, failed) =
        ferry_node::db::deliveries::status_counts(&a.state().db).await.unwrap();
    assert!(queued >= 1 && failed == 0, "deliveries wait for B: {queued} queued, {failed} failed");

    // B comes back on the same database and port: everything arrives, each note once.
    let b2 = start(&domain, dir.path());
    b = b2;
    wait_up(&b.base).await;
    let contents = eventually("all 15 notes on B", 60, || async {
        let contents = home_contents(&b.base, &bob).await;
        (contents.iter().filter(|c| c.contains("while B is down")).count() >= 15)
            .then_some(contents)
    })
    .await;
    for n in 0..15 {
        let needle = format!("note {n} while B is down");
        assert_eq!(
            contents.iter().filter(|c| c.contains(&needle)).count(),
            1,
            "{needle} exactly once"
        );
    }
    eventually("A's queue drained", 20, || async {
        let (queued, delivered, failed) =
            ferry_node::db::deliveries::status_counts(&a.state().db).await.unwrap();
        (queued == 0 && failed == 0 && delivered >= 16).then_some(())
    })
    .await;
    b.child.kill().ok();
    b.child.wait().ok();
    a.stop();
}
