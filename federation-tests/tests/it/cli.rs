//! The `ferry` command line, run as a real process: a bad configuration is refused naming the
//! key; `account create` and `token create` produce an account and a token that a running
//! node accepts; `account alias` and `account move` move an account while the node runs; `account export`
//! and `account import` carry an archive from one account to another.

use std::process::{Command, Stdio};

use ferry_federation_tests::{eventually, ferry_binary, test_env};

fn ferry(args: &[&str], env: &std::collections::HashMap<String, String>) -> std::process::Output {
    Command::new(ferry_binary().expect("ferry binary"))
        .args(args)
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .expect("ferry runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_and_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let domain = format!("127.0.0.1:{port}");
    let env = test_env(&domain, dir.path());

    // A bad value stops the node at once, naming the key and its variable.
    let mut bad = env.clone();
    bad.insert("FERRY_LISTEN".to_owned(), "not-an-address".to_owned());
    let out = ferry(&["serve"], &bad);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("listen") && stderr.contains("FERRY_LISTEN"), "{stderr}");
    let config = dir.path().join("ferry.toml");
    std::fs::write(&config, "domain = \"x.example\"\nno_such_key = 1\n").unwrap();
    let out = ferry(&["--config", config.to_str().unwrap(), "serve"], &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no_such_key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Accounts and tokens from the command line, on the node's own database.
    let out = ferry(
        &[
            "account",
            "create",
            "--username",
            "root",
            "--password",
            "correct horse battery",
            "--admin",
        ],
        &env,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("root@{domain}")));
    let out = ferry(
        &["account", "create", "--username", "root", "--password", "correct horse battery"],
        &env,
    );
    assert!(!out.status.success(), "a second root is refused");
    let out = ferry(&["token", "create", "--username", "root"], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(token.len(), 64, "{token}");
    let out = ferry(&["token", "create", "--username", "nobody"], &env);
    assert!(!out.status.success(), "no token for an unknown account");

    // The token works against the running node.
    let mut node = Command::new(ferry_binary().unwrap())
        .arg("serve")
        .envs(&env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://{domain}");
    let client = reqwest::Client::new();
    let me: serde_json::Value = eventually("node up and the token accepted", 30, || async {
        let res = client
            .get(format!("{base}/api/v1/accounts/verify_credentials"))
            .bearer_auth(&token)
            .send()
            .await
            .ok()?;
        res.status().is_success().then_some(())?;
        res.json().await.ok()
    })
    .await;
    assert_eq!(me["username"], "root", "{me}");
    // The admin's actor document is served with a public key (created lazily if needed).
    let actor: serde_json::Value = client
        .get(format!("{base}/users/root"))
        .header("Accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        actor["publicKey"]["publicKeyPem"]
            .as_str()
            .is_some_and(|k| k.starts_with("-----BEGIN PUBLIC KEY-----")),
        "{actor}"
    );

    // Moving house from the command line while the node runs: `old` moves to `root`, which
    // names it as an alias; its follower `fan` (local) ends up following `root`.
    for name in ["old", "fan"] {
        let out = ferry(
            &["account", "create", "--username", name, "--password", "correct horse battery"],
            &env,
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let old = format!("{base}/users/old");
    let root = format!("{base}/users/root");
    let out = ferry(&["account", "move", "--username", "old", "--to", &root], &env);
    assert!(!out.status.success(), "no alias yet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("alias"), "{out:?}");
    let out = ferry(&["account", "alias", "--username", "root", &old], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&old), "{out:?}");
    let out = ferry(&["token", "create", "--username", "fan"], &env);
    let fan = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let lookup: serde_json::Value = client
        .get(format!("{base}/api/v1/accounts/lookup?acct=old"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old_id = lookup["id"].as_str().unwrap().to_owned();
    let res = client
        .post(format!("{base}/api/v1/accounts/{old_id}/follow"))
        .bearer_auth(&fan)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let out =
        ferry(&["account", "move", "--username", "old", "--to", &format!("root@{domain}")], &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rels: serde_json::Value = client
        .get(format!(
            "{base}/api/v1/accounts/relationships?id[]={}&id[]={old_id}",
            me["id"].as_str().unwrap()
        ))
        .bearer_auth(&fan)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (rels[0]["following"].as_bool(), rels[1]["following"].as_bool()),
        (Some(true), Some(false)),
        "{rels}"
    );
    let moved: serde_json::Value = client
        .get(format!("{base}/users/old"))
        .header("Accept", "application/activity+json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(moved["movedTo"], serde_json::json!(root), "{moved}");

    // An archive written by one account and read into another, twice.
    let res = client
        .post(format!("{base}/api/v1/statuses"))
        .bearer_auth(&fan)
        .json(&serde_json::json!({ "status": "from the command line" }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    let archive = dir.path().join("fan.zip");
    let out = ferry(
        &["account", "export", "--username", "fan", "--output", archive.to_str().unwrap()],
        &env,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": 1 notes"), "{out:?}");
    let import = ["account", "import", "--username", "root", "--input", archive.to_str().unwrap()];
    let out = ferry(&import, &env);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("imported 1 notes"), "{out:?}");
    let out = ferry(&import, &env);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("imported 0 notes (1 already there"),
        "{out:?}"
    );
    let out =
        ferry(&["account", "import", "--username", "root", "--input", "/nonexistent.zip"], &env);
    assert!(!out.status.success(), "a missing file is an error");
    node.kill().ok();
    node.wait().ok();
}
