//! A real `ferry` process is killed with SIGKILL while another node has deliveries queued for
//! it, then started again on the same database: every queued delivery arrives, once.

use ferry_federation_tests::{
    ProcessNode, TestNode, User, eventually, free_local_domain, get_json, post_json as post,
    sign_up,
};
use serde_json::json;

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

    let domain = free_local_domain();
    let dir = tempfile::tempdir().unwrap();
    let mut b = ProcessNode::start(&domain, dir.path());
    b.wait_up().await;
    let bob = sign_up(&b.base, "bob").await;

    // bob@B follows alice@A, so alice's notes are delivered to B.
    let search = format!("/api/v2/search?q=@{}&resolve=true", alice.handle);
    let found = get_json(&b.base, &search, Some(&bob)).await;
    let alice_on_b = found["accounts"][0]["id"].as_str().expect("alice found").to_owned();
    post(&b.base, &format!("/api/v1/accounts/{alice_on_b}/follow"), Some(&bob), json!({})).await;
    eventually("alice has a follower on B", 20, || async {
        let (_, followers) = a.get_ap("/users/alice/followers").await;
        (followers["totalItems"] == 1).then_some(())
    })
    .await;

    // B has seen alice's Accept: the follow is established on both sides before the crash.
    eventually("bob follows alice on B", 20, || async {
        let rels: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/accounts/relationships?id[]={alice_on_b}", b.base))
            .bearer_auth(&bob)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (rels[0]["following"] == true).then_some(())
    })
    .await;

    // B dies without warning; alice posts while it is down.
    b.sigkill();
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
    b = ProcessNode::start(&domain, dir.path());
    b.wait_up().await;
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
    a.stop();
}
