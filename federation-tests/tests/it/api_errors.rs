//! The client API refuses bad input with the right status and a JSON `{"error": …}` body, and
//! a refused request changes nothing: malformed and mistyped bodies, missing, invalid and
//! under-scoped tokens, oversized bodies, bad sign-ups, bad ids and pagination, and the OAuth
//! flows (authorization code, refresh, revocation) including their failure paths.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_federation_tests::{TestNode, User};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use url::Url;

const PASSWORD: &str = "correct horse battery";

/// A request with a raw body and content type; status and JSON body (Null if not JSON).
async fn send(
    node: &TestNode,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", node.base))
        .timeout(Duration::from_secs(60))
        .body(body);
    if let Some(token) = token {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        req = req.header("Content-Type", content_type);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn post_json(node: &TestNode, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    send(node, reqwest::Method::POST, path, token, Some("application/json"), bytes).await
}

/// A form-encoded POST (what OAuth clients and the login form send).
async fn post_form(node: &TestNode, path: &str, fields: &[(&str, &str)]) -> (u16, Value) {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish();
    let content_type = Some("application/x-www-form-urlencoded");
    send(node, reqwest::Method::POST, path, None, content_type, body.into_bytes()).await
}

/// The status and a non-empty JSON `error`.
fn assert_error(what: &str, (status, body): &(u16, Value), expected: u16) {
    assert_eq!(*status, expected, "{what}: {body}");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{what}: expected {{\"error\": …}}, got {body}"
    );
}

/// How many statuses `user` has, as anyone sees them.
async fn status_count(node: &TestNode, user: &User) -> usize {
    let (status, list) =
        node.get(&format!("/api/v1/accounts/{}/statuses?limit=40", user.id), None).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().len()
}

/// Local accounts, as NodeInfo reports them.
async fn user_count(node: &TestNode) -> i64 {
    let (status, info) = node.get("/nodeinfo/2.0", None).await;
    assert_eq!(status, 200, "{info}");
    info["usage"]["users"]["total"].as_i64().unwrap()
}

/// Registers an app; returns (client_id, client_secret).
async fn app(node: &TestNode, redirect_uri: &str, scopes: &str) -> (String, String) {
    let (status, app) = node
        .post(
            "/api/v1/apps",
            None,
            json!({ "client_name": "errors", "redirect_uris": redirect_uri, "scopes": scopes }),
        )
        .await;
    assert_eq!(status, 200, "{app}");
    (
        app["client_id"].as_str().unwrap().to_owned(),
        app["client_secret"].as_str().unwrap().to_owned(),
    )
}

/// A password-grant token for `username` with `scope`; the whole token response.
async fn password_token(
    node: &TestNode,
    app: &(String, String),
    username: &str,
    scope: &str,
) -> Value {
    let (status, token) = node
        .post(
            "/oauth/token",
            None,
            json!({ "grant_type": "password", "client_id": app.0, "client_secret": app.1, "username": username, "password": PASSWORD, "scope": scope }),
        )
        .await;
    assert_eq!(status, 200, "{token}");
    token
}

async fn me(node: &TestNode, token: &str) -> (u16, Value) {
    node.get("/api/v1/accounts/verify_credentials", Some(token)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_a_status_refuses_bad_input_and_changes_nothing() {
    let node = TestNode::spawn().await;
    let alice = node.create_user("alice").await;
    let token = Some(alice.token.as_str());
    let (status, first) =
        node.post("/api/v1/statuses", token, json!({ "status": "baseline" })).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(status_count(&node, &alice).await, 1);

    let json_ct = Some("application/json");
    let post = reqwest::Method::POST;
    let answer = send(
        &node,
        post.clone(),
        "/api/v1/statuses",
        token,
        json_ct,
        b"{\"status\": \"x\",".into(),
    )
    .await;
    assert_error("malformed JSON", &answer, 400);
    let answer =
        post_json(&node, "/api/v1/statuses", token, &json!({ "status": "x", "visibility": 5 }))
            .await;
    assert_error("visibility of the wrong type", &answer, 422);
    let answer = post_json(
        &node,
        "/api/v1/statuses",
        token,
        &json!({ "status": "x", "visibility": "secret" }),
    )
    .await;
    assert_error("unknown visibility", &answer, 422);
    let answer = post_json(&node, "/api/v1/statuses", token, &json!({ "status": "" })).await;
    assert_error("no text and no media", &answer, 422);
    let too_long = "a".repeat(5001);
    let answer = post_json(&node, "/api/v1/statuses", token, &json!({ "status": too_long })).await;
    assert_error("5001 characters", &answer, 422);
    // The limit counts characters, not bytes.
    let answer =
        post_json(&node, "/api/v1/statuses", token, &json!({ "status": "€".repeat(5001) })).await;
    assert_error("5001 multi-byte characters", &answer, 422);
    for (what, body, expected) in [
        ("only whitespace", json!({ "status": "  \n\t " }), 422),
        ("status of the wrong type", json!({ "status": 42 }), 422),
        ("reply to a non-id", json!({ "status": "x", "in_reply_to_id": "abc" }), 404),
        ("reply to an unknown note", json!({ "status": "x", "in_reply_to_id": "12345" }), 404),
        ("media id that is not an id", json!({ "status": "x", "media_ids": ["abc"] }), 422),
        ("bad language tag", json!({ "status": "x", "language": "not a language!" }), 422),
        (
            "nine attachments",
            json!({ "status": "x", "media_ids": ["1","2","3","4","5","6","7","8","9"] }),
            422,
        ),
    ] {
        let answer = post_json(&node, "/api/v1/statuses", token, &body).await;
        assert_error(what, &answer, expected);
    }
    let answer = post_json(
        &node,
        "/api/v1/statuses",
        token,
        &json!({ "status": "x", "media_ids": ["12345"] }),
    )
    .await;
    assert!(
        (400..500).contains(&answer.0) && answer.1["error"].is_string(),
        "someone else's or unknown media: {answer:?}"
    );
    assert_eq!(status_count(&node, &alice).await, 1, "refused posts stored nothing");

    // Credentials: none, unknown, an app token with no user, a token without `write`.
    let answer = post_json(&node, "/api/v1/statuses", None, &json!({ "status": "x" })).await;
    assert_error("no token", &answer, 401);
    let answer =
        post_json(&node, "/api/v1/statuses", Some("not-a-token"), &json!({ "status": "x" })).await;
    assert_error("unknown token", &answer, 401);
    let client = app(&node, "urn:ietf:wg:oauth:2.0:oob", "read write").await;
    let (status, app_token) = node
        .post(
            "/oauth/token",
            None,
            json!({ "grant_type": "client_credentials", "client_id": client.0, "client_secret": client.1 }),
        )
        .await;
    assert_eq!(status, 200, "{app_token}");
    let answer = post_json(
        &node,
        "/api/v1/statuses",
        app_token["access_token"].as_str(),
        &json!({ "status": "x" }),
    )
    .await;
    // Mastodon answers 422 "This method requires an authenticated user" here.
    assert_error("app token without a user", &answer, 401);
    let read_only = password_token(&node, &client, "alice", "read").await;
    assert_eq!(read_only["scope"], "read", "{read_only}");
    let answer = post_json(
        &node,
        "/api/v1/statuses",
        read_only["access_token"].as_str(),
        &json!({ "status": "x" }),
    )
    .await;
    assert_error("token without write", &answer, 403);
    let (status, _) = me(&node, read_only["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "the read-only token still reads");
    assert_eq!(status_count(&node, &alice).await, 1, "refused posts stored nothing");

    // Bodies over api_max_bytes (1 MiB) are refused before they are parsed, whatever their
    // content type.
    let mut huge = br#"{"status": ""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 2 << 20));
    huge.extend_from_slice(br#""}"#);
    let form_ct = Some("application/x-www-form-urlencoded");
    let mut form = b"status=".to_vec();
    form.extend(std::iter::repeat_n(b'a', 2 << 20));
    for (what, content_type, body) in [
        ("2 MiB JSON body", json_ct, huge.clone()),
        ("2 MiB form body", form_ct, form),
        ("2 MiB body without a content type", None, huge),
    ] {
        let answer = send(&node, post.clone(), "/api/v1/statuses", token, content_type, body).await;
        assert_error(what, &answer, 413);
    }
    assert_eq!(status_count(&node, &alice).await, 1, "refused posts stored nothing");

    // The limit is exactly 5000 characters, and a valid post still works after all this.
    let answer =
        post_json(&node, "/api/v1/statuses", token, &json!({ "status": "€".repeat(5000) })).await;
    assert_eq!(answer.0, 200, "5000 characters are allowed: {}", answer.1);
    assert_eq!(status_count(&node, &alice).await, 2);
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_refuses_bad_input_and_taken_names() {
    let node = TestNode::spawn().await;
    let client = app(&node, "urn:ietf:wg:oauth:2.0:oob", "read write follow").await;
    let (status, app_token) = node
        .post(
            "/oauth/token",
            None,
            json!({ "grant_type": "client_credentials", "client_id": client.0, "client_secret": client.1 }),
        )
        .await;
    assert_eq!(status, 200, "{app_token}");
    let app_token = app_token["access_token"].as_str().unwrap().to_owned();
    let before = user_count(&node).await;
    let sign_up = |body: Value, token: Option<String>| {
        let node = &node;
        async move { post_json(node, "/api/v1/accounts", token.as_deref(), &body).await }
    };
    let token = || Some(app_token.clone());
    let form = |username: &str| json!({ "username": username, "password": PASSWORD, "agreement": true, "locale": "en" });

    assert_error("no app token", &sign_up(form("carol"), None).await, 401);
    assert_error("unknown token", &sign_up(form("carol"), Some("nope".to_owned())).await, 401);
    let mut no_agreement = form("carol");
    no_agreement.as_object_mut().unwrap().remove("agreement");
    assert_error("no agreement", &sign_up(no_agreement, token()).await, 422);
    let mut refused = form("carol");
    refused["agreement"] = json!(false);
    assert_error("agreement false", &sign_up(refused, token()).await, 422);
    assert_error("bad username", &sign_up(form("no spaces!"), token()).await, 422);
    assert_error("31-character username", &sign_up(form(&"a".repeat(31)), token()).await, 422);
    let mut short = form("carol");
    short["password"] = json!("short");
    assert_error("short password", &sign_up(short, token()).await, 422);
    let mut nameless = form("carol");
    nameless.as_object_mut().unwrap().remove("username");
    assert_error("no username", &sign_up(nameless, token()).await, 422);
    assert_eq!(user_count(&node).await, before, "nothing was created");
    let (status, _) = node.get("/api/v1/accounts/lookup?acct=carol", None).await;
    assert_eq!(status, 404);

    let (status, created) = sign_up(form("carol"), token()).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(user_count(&node).await, before + 1);
    // A taken name, in any case: 422 with Mastodon's per-field `details`.
    for taken in ["carol", "CAROL", " Carol "] {
        let answer = sign_up(form(taken), token()).await;
        assert_error(&format!("taken username {taken:?}"), &answer, 422);
        assert_eq!(answer.1["details"]["username"][0]["error"], "ERR_TAKEN", "{}", answer.1);
    }
    // Several problems at once, each under its field, and all in the message.
    let answer = sign_up(json!({ "username": "", "password": "short" }), token()).await;
    assert_error("three problems", &answer, 422);
    let details = &answer.1["details"];
    assert_eq!(details["agreement"][0]["error"], "ERR_ACCEPTED", "{}", answer.1);
    assert_eq!(details["username"][0]["error"], "ERR_BLANK", "{}", answer.1);
    assert_eq!(details["password"][0]["error"], "ERR_TOO_SHORT", "{}", answer.1);
    assert_eq!(
        answer.1["error"],
        "Validation failed: Agreement must be accepted, Username can't be blank, \
         Password is too short (minimum is 8 characters)"
    );
    let answer = sign_up(form(&"a".repeat(31)), token()).await;
    assert_eq!(answer.1["details"]["username"][0]["error"], "ERR_TOO_LONG", "{}", answer.1);
    let answer = sign_up(form("no spaces!"), token()).await;
    assert_eq!(answer.1["details"]["username"][0]["error"], "ERR_INVALID", "{}", answer.1);
    assert_eq!(user_count(&node).await, before + 1, "no second carol");
    // carol's password is the first one.
    let token = password_token(&node, &client, "carol", "read").await;
    assert_eq!(me(&node, token["access_token"].as_str().unwrap()).await.1["username"], "carol");
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_needs_write_accounts_and_grants_only_the_apps_scopes() {
    // Mastodon: `POST /api/v1/accounts` needs an app token with `write:accounts`, and the new
    // user's token carries the app token's scopes.
    let node = TestNode::spawn().await;
    let before = user_count(&node).await;
    let client = app(&node, "urn:ietf:wg:oauth:2.0:oob", "read").await;
    let (status, app_token) = node
        .post(
            "/oauth/token",
            None,
            json!({ "grant_type": "client_credentials", "client_id": client.0, "client_secret": client.1, "scope": "read" }),
        )
        .await;
    assert_eq!((status, &app_token["scope"]), (200, &json!("read")), "{app_token}");
    let (status, created) = post_json(
        &node,
        "/api/v1/accounts",
        app_token["access_token"].as_str(),
        &json!({ "username": "dave", "password": PASSWORD, "agreement": true }),
    )
    .await;
    let scope = created["scope"].as_str().unwrap_or_default();
    assert!(
        status == 403 || scope.split(' ').all(|s| s == "read" || s.starts_with("read:")),
        "a read-only app token signed up ({status}) and was granted {scope:?}"
    );
    if status == 403 {
        assert_eq!(user_count(&node).await, before, "nothing was created");
    }
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ids_and_pagination_are_refused() {
    let node = TestNode::spawn().await;
    let alice = node.create_user("alice").await;
    for n in 0..3 {
        let (status, _) = node
            .post("/api/v1/statuses", Some(&alice.token), json!({ "status": format!("note {n}") }))
            .await;
        assert_eq!(status, 200);
    }
    let token = Some(alice.token.as_str());
    let id = &alice.id;
    for (path, expected) in [
        ("/api/v1/accounts/notanumber".to_owned(), 404),
        ("/api/v1/accounts/99999999999".to_owned(), 404),
        ("/api/v1/accounts/notanumber/statuses".to_owned(), 404),
        ("/api/v1/statuses/notanumber".to_owned(), 404),
        ("/api/v1/statuses/99999999999".to_owned(), 404),
        (format!("/api/v1/accounts/{id}/statuses?limit=abc"), 400),
        (format!("/api/v1/accounts/{id}/statuses?max_id=abc"), 400),
        (format!("/api/v1/accounts/{id}/statuses?since_id=1.5"), 400),
        (format!("/api/v1/accounts/{id}/followers?limit=abc"), 400),
        ("/api/v1/timelines/home?limit=abc".to_owned(), 400),
        ("/api/v1/timelines/public?min_id=abc".to_owned(), 400),
        ("/api/v1/notifications?limit=abc".to_owned(), 400),
        ("/api/v1/accounts/lookup".to_owned(), 400),
        ("/api/v2/search".to_owned(), 400),
        ("/api/v1/no/such/endpoint".to_owned(), 404),
    ] {
        let answer = node.get(&path, token).await;
        assert_error(&path, &answer, expected);
    }
    let answer =
        send(&node, reqwest::Method::PUT, "/api/v1/statuses", token, None, Vec::new()).await;
    assert_error("PUT /api/v1/statuses", &answer, 405);

    // Out-of-range limits are clamped, not refused.
    let (status, page) = node.get(&format!("/api/v1/accounts/{id}/statuses?limit=0"), None).await;
    assert_eq!((status, page.as_array().map(Vec::len)), (200, Some(1)), "{page}");
    let (status, page) = node.get(&format!("/api/v1/accounts/{id}/statuses?limit=-5"), None).await;
    assert_eq!((status, page.as_array().map(Vec::len)), (200, Some(1)), "{page}");
    let (status, page) =
        node.get(&format!("/api/v1/accounts/{id}/statuses?limit=1000000"), None).await;
    assert_eq!((status, page.as_array().map(Vec::len)), (200, Some(3)), "{page}");
    node.stop();
}

/// A redirect target on 127.0.0.1 that records the query of each request it gets.
async fn callback_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://127.0.0.1:{}/callback", listener.local_addr().unwrap().port());
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    tokio::spawn({
        let seen = seen.clone();
        async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if let Some(target) = String::from_utf8_lossy(&head).split_whitespace().nth(1) {
                    seen.lock().unwrap().push(target.to_owned());
                }
                let body = "{\"ok\":true}";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        }
    });
    (uri, seen)
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_authorization_code_flow_end_to_end() {
    let node = TestNode::spawn().await;
    node.create_user("alice").await;
    let (redirect_uri, seen) = callback_server().await;
    let client = app(&node, &redirect_uri, "read write").await;
    let authorize = Url::parse_with_params(
        &format!("{}/oauth/authorize", node.base),
        &[
            ("response_type", "code"),
            ("client_id", client.0.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", "read write"),
            ("state", "s-123"),
        ],
    )
    .unwrap();

    // The login form.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let page = browser.get(authorize.clone()).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("<form") && html.contains("name=\"password\""), "{html}");
    // An unregistered redirect URI or an unknown client gets no form.
    let wrong_redirect = Url::parse_with_params(
        &format!("{}/oauth/authorize", node.base),
        &[
            ("response_type", "code"),
            ("client_id", client.0.as_str()),
            ("redirect_uri", "http://127.0.0.1:1/steal"),
        ],
    )
    .unwrap();
    let answer = node
        .get(&format!("{}?{}", wrong_redirect.path(), wrong_redirect.query().unwrap()), None)
        .await;
    assert_error("unregistered redirect_uri", &answer, 400);
    let answer = node.get("/oauth/authorize?response_type=code&client_id=nope", None).await;
    assert_error("unknown client_id", &answer, 404);
    let path = format!("/oauth/authorize?response_type=code&client_id={}&scope=follow", client.0);
    assert_error("scope wider than the app's", &node.get(&path, None).await, 400);
    let path = format!("/oauth/authorize?response_type=token&client_id={}", client.0);
    assert_error("implicit grant", &node.get(&path, None).await, 400);

    // The form, posted as a browser does. A wrong password shows the form again.
    let fields = |password: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs([
                ("response_type", "code"),
                ("client_id", client.0.as_str()),
                ("redirect_uri", redirect_uri.as_str()),
                ("scope", "read write"),
                ("state", "s-123"),
                ("username", "alice"),
                ("password", password),
            ])
            .finish()
    };
    let form_post = |password: &str| {
        browser
            .post(format!("{}/oauth/authorize", node.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(fields(password))
            .send()
    };
    let wrong = form_post("wrong password").await.unwrap();
    assert_eq!(wrong.status().as_u16(), 200, "a wrong password shows the form again");
    assert!(wrong.headers().get("location").is_none());
    assert!(wrong.text().await.unwrap().contains("Invalid username or password"));

    let granted = form_post(PASSWORD).await.unwrap();
    assert!(granted.status().is_redirection(), "{}", granted.status());
    let location = granted.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&redirect_uri), "{location}");
    // Follow the redirect to the app's callback, as the browser would.
    let landed = browser.get(&location).send().await.unwrap();
    assert_eq!(landed.status().as_u16(), 200);
    let callback = seen.lock().unwrap().clone();
    assert_eq!(callback.len(), 1, "{callback:?}");
    let callback = Url::parse(&format!("http://callback{}", callback[0])).unwrap();
    assert_eq!(query_param(&callback, "state").as_deref(), Some("s-123"));
    let code = query_param(&callback, "code").expect("code in the callback");

    // Exchange: a wrong secret is refused and does not use the code up.
    let exchange = |secret: &str| {
        let node = &node;
        let (client_id, code, redirect_uri) =
            (client.0.clone(), code.clone(), redirect_uri.clone());
        let secret = secret.to_owned();
        async move {
            post_form(
                node,
                "/oauth/token",
                &[
                    ("grant_type", "authorization_code"),
                    ("client_id", &client_id),
                    ("client_secret", &secret),
                    ("code", &code),
                    ("redirect_uri", &redirect_uri),
                ],
            )
            .await
        }
    };
    assert_error("wrong client_secret", &exchange("wrong").await, 401);
    let (status, token) = exchange(&client.1).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["scope"], "read write");
    assert!(token["refresh_token"].is_string(), "{token}");
    let access = token["access_token"].as_str().unwrap().to_owned();
    let (status, account) = me(&node, &access).await;
    assert_eq!((status, account["username"].as_str()), (200, Some("alice")), "{account}");
    let (status, posted) =
        node.post("/api/v1/statuses", Some(&access), json!({ "status": "via oauth" })).await;
    assert_eq!(status, 200, "{posted}");

    // The code works once.
    let answer = exchange(&client.1).await;
    assert_error("second exchange of the code", &answer, 400);
    // RFC 6749 §5.2, as OAuth client libraries parse it.
    assert_eq!(answer.1["error"], "invalid_grant", "{}", answer.1);
    assert!(answer.1["error_description"].as_str().is_some(), "{}", answer.1);
    // An unknown code, likewise.
    let answer = post_form(
        &node,
        "/oauth/token",
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client.0),
            ("client_secret", &client.1),
            ("code", "made-up"),
        ],
    )
    .await;
    assert_error("unknown code", &answer, 400);
    node.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_token_errors_refresh_and_revoke() {
    let node = TestNode::spawn().await;
    node.create_user("alice").await;
    let client = app(&node, "urn:ietf:wg:oauth:2.0:oob", "read write").await;
    let other = app(&node, "urn:ietf:wg:oauth:2.0:oob", "read write").await;

    let wrong_secret = post_form(
        &node,
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("client_id", &client.0),
            ("client_secret", "wrong"),
            ("username", "alice"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_error("wrong client_secret", &wrong_secret, 401);
    let unknown_client = post_form(
        &node,
        "/oauth/token",
        &[("grant_type", "client_credentials"), ("client_id", "nope"), ("client_secret", "nope")],
    )
    .await;
    assert_error("unknown client_id", &unknown_client, 401);
    let unknown_grant = post_form(
        &node,
        "/oauth/token",
        &[("grant_type", "magic"), ("client_id", &client.0), ("client_secret", &client.1)],
    )
    .await;
    assert_error("unknown grant_type", &unknown_grant, 400);
    let no_grant =
        post_form(&node, "/oauth/token", &[("client_id", &client.0), ("client_secret", &client.1)])
            .await;
    assert_error("no grant_type", &no_grant, 400);
    let bad_password = post_form(
        &node,
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("client_id", &client.0),
            ("client_secret", &client.1),
            ("username", "alice"),
            ("password", "wrong password"),
        ],
    )
    .await;
    assert_error("wrong password", &bad_password, 400);
    let too_wide = post_form(
        &node,
        "/oauth/token",
        &[
            ("grant_type", "password"),
            ("client_id", &client.0),
            ("client_secret", &client.1),
            ("username", "alice"),
            ("password", PASSWORD),
            ("scope", "read write follow"),
        ],
    )
    .await;
    assert_error("scope wider than the app's", &too_wide, 400);

    // Refresh: a new token; the old access token and the used refresh token stop working.
    let first = password_token(&node, &client, "alice", "read write").await;
    let (old_access, old_refresh) = (
        first["access_token"].as_str().unwrap().to_owned(),
        first["refresh_token"].as_str().unwrap().to_owned(),
    );
    assert_eq!(me(&node, &old_access).await.0, 200);
    let refresh = |refresh_token: String, app: (String, String)| {
        let node = &node;
        async move {
            post_form(
                node,
                "/oauth/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("client_id", &app.0),
                    ("client_secret", &app.1),
                    ("refresh_token", &refresh_token),
                ],
            )
            .await
        }
    };
    assert_error(
        "refresh with another app",
        &refresh(old_refresh.clone(), other.clone()).await,
        400,
    );
    assert_eq!(me(&node, &old_access).await.0, 200, "a refused refresh changes nothing");
    let (status, second) = refresh(old_refresh.clone(), client.clone()).await;
    assert_eq!(status, 200, "{second}");
    let new_access = second["access_token"].as_str().unwrap().to_owned();
    let new_refresh = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_access, old_access);
    assert_eq!(second["scope"], "read write");
    assert_error("old access token after refresh", &me(&node, &old_access).await, 401);
    assert_error("refresh token used twice", &refresh(old_refresh, client.clone()).await, 400);
    assert_eq!(me(&node, &new_access).await.1["username"], "alice");

    // Revocation: refused without the app's secret, then the token and its refresh token die.
    let revoke = |token: &str, secret: &str| {
        let node = &node;
        let fields = [
            ("client_id".to_owned(), client.0.clone()),
            ("client_secret".to_owned(), secret.to_owned()),
            ("token".to_owned(), token.to_owned()),
        ];
        async move {
            let fields: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            post_form(node, "/oauth/revoke", &fields).await
        }
    };
    assert_error("revoke with a wrong secret", &revoke(&new_access, "wrong").await, 401);
    let (status, _) = post_form(
        &node,
        "/oauth/revoke",
        &[("client_id", &other.0), ("client_secret", &other.1), ("token", &new_access)],
    )
    .await;
    assert_eq!(status, 200, "another app's revocation is answered like an unknown token's");
    assert_eq!(me(&node, &new_access).await.0, 200, "a refused revocation changes nothing");
    let (status, body) = revoke(&new_access, &client.1).await;
    assert_eq!((status, &body), (200, &json!({})));
    assert_error("revoked token", &me(&node, &new_access).await, 401);
    let answer =
        node.post("/api/v1/statuses", Some(&new_access), json!({ "status": "after revoke" })).await;
    assert_error("posting with a revoked token", &answer, 401);
    assert_error("refresh of a revoked token", &refresh(new_refresh, client.clone()).await, 400);
    // RFC 7009: revoking an unknown token is not an error.
    let (status, _) = revoke("never-issued", &client.1).await;
    assert_eq!(status, 200);
    node.stop();
}
