//! Archives over real HTTP: an account exported on A is imported on B with its notes (dates,
//! content warnings, language, threading, media) and lists; a second import creates nothing
//! twice; a Mastodon-shaped archive and CSVs with bad rows are taken as far as they go; files
//! that are not archives are refused.

use std::io::{Read, Write};

use ferry_federation_tests::{TestNode, User, eventually};
use serde_json::{Value, json};

/// A small PNG.
fn png() -> Vec<u8> {
    let image =
        image::RgbImage::from_fn(8, 6, |x, y| image::Rgb([(x * 30) as u8, (y * 40) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A multipart body of `(name, filename, bytes)` parts, and its content type.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "ferry-archive-test";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        let disposition = match filename {
            Some(f) => format!("form-data; name=\"{name}\"; filename=\"{f}\""),
            None => format!("form-data; name=\"{name}\""),
        };
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn send_multipart(
    node: &TestNode,
    path: &str,
    token: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> (u16, Value) {
    let (content_type, body) = multipart(parts);
    let res = reqwest::Client::new()
        .post(format!("{}{path}", node.base))
        .bearer_auth(token)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn statuses(node: &TestNode, user: &User) -> Vec<Value> {
    let (_, list) = node
        .get(&format!("/api/v1/accounts/{}/statuses?limit=40", user.id), Some(&user.token))
        .await;
    list.as_array().cloned().unwrap_or_default()
}

fn zip_names(bytes: &[u8]) -> Vec<String> {
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    zip.file_names().map(|n| n.unwrap().into_owned()).collect()
}

fn zip_text(bytes: &[u8], name: &str) -> String {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut text = String::new();
    zip.by_name(name).unwrap().read_to_string(&mut text).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_account_is_imported_on_another_node_once() {
    let a = TestNode::spawn().await;
    let b = TestNode::spawn().await;
    let old = a.create_user("alice").await;
    let bob = b.create_user("bob").await;
    let troll = a.create_user("troll").await;
    a.follow(&old, &bob.handle).await;
    b.follow(&bob, &old.handle).await;
    let (_, blocked) =
        a.post(&format!("/api/v1/accounts/{}/block", troll.id), Some(&old.token), json!({})).await;
    assert_eq!(blocked["blocking"], true);

    // Four notes: one with an image, a followers-only one with a content warning in German,
    // a reply to the first, and a boost of bob's note.
    let (status, media) = send_multipart(
        &a,
        "/api/v2/media",
        &old.token,
        &[("description", None, b"eight by six"), ("file", Some("a.png"), &png())],
    )
    .await;
    assert_eq!(status, 200, "{media}");
    let (_, first) = a
        .post(
            "/api/v1/statuses",
            Some(&old.token),
            json!({ "status": "first #moving", "media_ids": [media["id"]] }),
        )
        .await;
    let (_, _) = a
        .post("/api/v1/statuses", Some(&old.token), json!({ "status": "geheim", "spoiler_text": "cw", "language": "de", "visibility": "private" }))
        .await;
    let (_, _) = a
        .post(
            "/api/v1/statuses",
            Some(&old.token),
            json!({ "status": "a reply", "in_reply_to_id": first["id"] }),
        )
        .await;
    // bob replies to the first note on B: after the move, B points his reply at the copy.
    let first_on_b = eventually("alice's first note on B", 30, || async {
        let (_, found) = b
            .get(
                &format!("/api/v2/search?q={}&resolve=true", first["uri"].as_str().unwrap()),
                Some(&bob.token),
            )
            .await;
        found["statuses"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    let (_, bobs_reply) = b
        .post(
            "/api/v1/statuses",
            Some(&bob.token),
            json!({ "status": "nice", "in_reply_to_id": first_on_b }),
        )
        .await;
    let (_, bobs) =
        b.post("/api/v1/statuses", Some(&bob.token), json!({ "status": "bob's" })).await;
    let bobs_on_a = eventually("bob's note on A", 30, || async {
        let (_, found) = a
            .get(
                &format!("/api/v2/search?q={}&resolve=true", bobs["uri"].as_str().unwrap()),
                Some(&old.token),
            )
            .await;
        found["statuses"][0]["id"].as_str().map(str::to_owned)
    })
    .await;
    a.post(&format!("/api/v1/statuses/{bobs_on_a}/reblog"), Some(&old.token), json!({})).await;
    a.post(&format!("/api/v1/statuses/{bobs_on_a}/favourite"), Some(&old.token), json!({})).await;
    let before = statuses(&a, &old).await;
    assert_eq!(before.len(), 4);

    // The export: Mastodon's files, the CSVs, Ferry's own.
    let res = reqwest::Client::new()
        .get(format!("{}/api/v1/accounts/archive", a.base))
        .bearer_auth(&old.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    let archive = res.bytes().await.unwrap().to_vec();
    let names = zip_names(&archive);
    for name in [
        "actor.json",
        "outbox.json",
        "likes.json",
        "bookmarks.json",
        "following_accounts.csv",
        "blocked_accounts.csv",
        "muted_accounts.csv",
        "ferry/followers.json",
        "ferry/manifest.json",
        "ferry/chats.json",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("media_attachments/files/")), "{names:?}");
    assert_eq!(
        zip_text(&archive, "following_accounts.csv"),
        format!(
            "Account address,Show boosts,Notify on new posts,Languages\n{},true,false,\n",
            bob.handle
        )
    );
    assert_eq!(zip_text(&archive, "blocked_accounts.csv"), format!("{}\n", troll.handle));
    let outbox: Value = serde_json::from_str(&zip_text(&archive, "outbox.json")).unwrap();
    assert_eq!(outbox["totalItems"], 4, "{outbox}");
    let likes: Value = serde_json::from_str(&zip_text(&archive, "likes.json")).unwrap();
    assert_eq!(likes["orderedItems"], json!([bobs["uri"]]), "{likes}");

    // Import on B into a new account: the notes keep their dates, warning, language, image
    // and thread; the boost is skipped; bob is followed; the block needs troll, whom B can find.
    let new = b.create_user("alice").await;
    let parts = [("data", Some("archive.zip"), archive.as_slice())];
    let (status, report) = send_multipart(&b, "/api/v1/imports", &new.token, &parts).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            &report["notes_imported"],
            &report["boosts_skipped"],
            &report["media_imported"],
            &report["follows"],
            &report["blocks"]
        ),
        (&json!(3), &json!(1), &json!(1), &json!(1), &json!(1)),
        "{report}"
    );
    assert_eq!(report["problems"], json!([]), "{report}");
    let after = statuses(&b, &new).await;
    assert_eq!(after.len(), 3, "{after:?}");
    let find = |list: &[Value], text: &str| {
        list.iter().find(|s| s["content"].as_str().unwrap().contains(text)).cloned().unwrap()
    };
    for text in ["first", "geheim", "a reply"] {
        assert_eq!(
            find(&after, text)["created_at"],
            find(&before, text)["created_at"],
            "{text}: date kept"
        );
    }
    let secret = find(&after, "geheim");
    assert_eq!(
        (&secret["spoiler_text"], &secret["language"], &secret["visibility"]),
        (&json!("cw"), &json!("de"), &json!("private")),
        "{secret}"
    );
    let imported_first = find(&after, "first");
    assert_eq!(
        imported_first["media_attachments"][0]["description"], "eight by six",
        "{imported_first}"
    );
    let image_url = imported_first["media_attachments"][0]["url"].as_str().unwrap().to_owned();
    let image = reqwest::get(&image_url).await.unwrap().bytes().await.unwrap();
    assert_eq!(image.as_ref(), png().as_slice(), "the same image bytes");
    assert_eq!(
        find(&after, "a reply")["in_reply_to_id"],
        imported_first["id"],
        "threaded to the imported parent"
    );
    let (_, rels) =
        b.get(&format!("/api/v1/accounts/relationships?id[]={}", bob.id), Some(&new.token)).await;
    assert_eq!(rels[0]["following"], true, "{rels}");

    // The same archive again: nothing new.
    let (status, again) = send_multipart(&b, "/api/v1/imports", &new.token, &parts).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (&again["notes_imported"], &again["notes_already_there"]),
        (&json!(0), &json!(3)),
        "{again}"
    );
    assert_eq!(statuses(&b, &new).await.len(), 3);

    // A following list with a row that cannot be resolved: the rest is imported, the bad row
    // reported with its line.
    let csv = format!(
        "Account address,Show boosts,Notify on new posts,Languages\nnobody@127.0.0.1:9,true,false,\n{},true,false,\n",
        old.handle
    );
    let (status, report) = send_multipart(
        &b,
        "/api/v1/imports",
        &new.token,
        &[("type", None, b"following"), ("data", Some("f.csv"), csv.as_bytes())],
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["follows"], &report["problems"][0]["row"], &report["problems"][0]["item"]),
        (&json!(1), &json!(2), &json!("nobody@127.0.0.1:9")),
        "{report}"
    );
    assert!(report["problems"][0]["error"].is_string());

    // GoToSocial's CSV export (`blocks.csv`: the Mastodon header, fewer columns) is read too.
    let gts = format!("Account address\n{}\n", troll.handle);
    let (status, report) = send_multipart(
        &b,
        "/api/v1/imports",
        &new.token,
        &[
            ("type", None, b"blocking"),
            ("mode", None, b"overwrite"),
            ("data", Some("blocks.csv"), gts.as_bytes()),
        ],
    )
    .await;
    assert_eq!(
        (status, &report["blocks"], &report["problems"]),
        (200, &json!(1), &json!([])),
        "{report}"
    );

    // Bad uploads change nothing.
    let (status, body) = send_multipart(
        &b,
        "/api/v1/imports",
        &new.token,
        &[("data", Some("x.zip"), b"PK\x03\x04 not really a zip")],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) =
        send_multipart(&b, "/api/v1/imports", &new.token, &[("data", Some("x.csv"), b"a,b\n")])
            .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = send_multipart(
        &b,
        "/api/v1/imports",
        &new.token,
        &[("type", None, b"everything"), ("data", Some("x.csv"), b"a\n")],
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) =
        send_multipart(&b, "/api/v1/imports", &new.token, &[("type", None, b"archive")]).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(statuses(&b, &new).await.len(), 3);

    // alice moves from A to B: the old URL of an imported note answers with its new id (a
    // Tombstone for servers, a redirect for browsers), and B re-points bob's reply.
    let (status, _) = b
        .post(
            "/api/v1/accounts/alias",
            Some(&new.token),
            json!({ "also_known_as_uris": [old.ap_id] }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = a
        .post(
            "/api/v1/accounts/move",
            Some(&old.token),
            json!({ "password": "correct horse battery", "moved_to_uri": new.ap_id }),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let old_url = first["uri"].as_str().unwrap();
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res =
        client.get(old_url).header("Accept", "application/activity+json").send().await.unwrap();
    assert_eq!(res.status(), 410);
    let tombstone: Value = res.json().await.unwrap();
    assert_eq!(
        (&tombstone["type"], &tombstone["id"], &tombstone["movedTo"]),
        (&json!("Tombstone"), &json!(old_url), &imported_first["uri"]),
        "{tombstone}"
    );
    let res = client.get(old_url).header("Accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(res.headers()["location"], imported_first["uri"].as_str().unwrap());
    eventually("bob's reply points at the imported note", 30, || async {
        let (_, reply) = b
            .get(
                &format!("/api/v1/statuses/{}", bobs_reply["id"].as_str().unwrap()),
                Some(&bob.token),
            )
            .await;
        (reply["in_reply_to_id"] == imported_first["id"]).then_some(())
    })
    .await;
    a.stop();
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mastodon_archive_is_imported() {
    let b = TestNode::spawn().await;
    let alice = b.create_user("alice").await;
    // Laid out as Mastodon's BackupService writes it: attachment URLs are paths inside the
    // archive without `/system/`, `to`/`cc` as arrays, `contentMap` with the language.
    let outbox = json!({
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "outbox.json",
        "type": "OrderedCollection",
        "totalItems": 3,
        "orderedItems": [
            {
                "id": "https://mastodon.example/users/alice/statuses/1/activity",
                "type": "Create",
                "actor": "https://mastodon.example/users/alice",
                "published": "2023-04-01T10:00:00Z",
                "to": ["https://www.w3.org/ns/activitystreams#Public"],
                "cc": ["https://mastodon.example/users/alice/followers"],
                "object": {
                    "id": "https://mastodon.example/users/alice/statuses/1",
                    "type": "Note",
                    "summary": null,
                    "inReplyTo": null,
                    "published": "2023-04-01T10:00:00Z",
                    "url": "https://mastodon.example/@alice/1",
                    "attributedTo": "https://mastodon.example/users/alice",
                    "to": ["https://www.w3.org/ns/activitystreams#Public"],
                    "cc": ["https://mastodon.example/users/alice/followers"],
                    "sensitive": false,
                    "content": "<p>hello from mastodon</p>",
                    "contentMap": { "en": "<p>hello from mastodon</p>" },
                    "attachment": [{
                        "type": "Document",
                        "mediaType": "image/png",
                        "url": "media_attachments/files/110/000/001/original/abc.png",
                        "name": "a tiny picture",
                        "blurhash": "U00000fQfQfQfQfQfQfQfQfQfQfQfQfQfQfQ",
                        "width": 8,
                        "height": 6
                    }],
                    "tag": []
                }
            },
            {
                "id": "https://mastodon.example/users/alice/statuses/2/activity",
                "type": "Create",
                "actor": "https://mastodon.example/users/alice",
                "published": "2023-04-02T10:00:00Z",
                "to": ["https://www.w3.org/ns/activitystreams#Public"],
                "cc": [],
                "object": {
                    "id": "https://mastodon.example/users/alice/statuses/2",
                    "type": "Note",
                    "inReplyTo": "https://mastodon.example/users/alice/statuses/1",
                    "published": "2023-04-02T10:00:00Z",
                    "to": ["https://www.w3.org/ns/activitystreams#Public"],
                    "cc": [],
                    "content": "<p>a reply <script>alert(1)</script></p>",
                    "tag": [{ "type": "Hashtag", "name": "#Fediverse", "href": "https://mastodon.example/tags/fediverse" }]
                }
            },
            {
                "id": "https://mastodon.example/users/alice/statuses/3/activity",
                "type": "Announce",
                "actor": "https://mastodon.example/users/alice",
                "published": "2023-04-03T10:00:00Z",
                "object": "https://elsewhere.example/notes/9"
            }
        ]
    });
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("outbox.json", options).unwrap();
        zip.write_all(outbox.to_string().as_bytes()).unwrap();
        zip.start_file("actor.json", options).unwrap();
        zip.write_all(json!({ "id": "https://mastodon.example/users/alice", "type": "Person", "followers": "https://mastodon.example/users/alice/followers" }).to_string().as_bytes()).unwrap();
        zip.start_file("media_attachments/files/110/000/001/original/abc.png", options).unwrap();
        zip.write_all(&png()).unwrap();
        zip.finish().unwrap();
    }
    let archive = buffer.into_inner();
    let (status, report) = send_multipart(
        &b,
        "/api/v1/imports",
        &alice.token,
        &[("type", None, b"archive"), ("data", Some("archive-2023.zip"), &archive)],
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["notes_imported"], &report["media_imported"], &report["boosts_skipped"]),
        (&json!(2), &json!(1), &json!(1)),
        "{report}"
    );
    let list = statuses(&b, &alice).await;
    assert_eq!(list.len(), 2);
    let (reply, first) = (&list[0], &list[1]);
    assert_eq!(first["created_at"], "2023-04-01T10:00:00.000Z", "{first}");
    assert_eq!(
        (&first["language"], &first["media_attachments"][0]["description"]),
        (&json!("en"), &json!("a tiny picture")),
        "{first}"
    );
    assert_eq!(reply["in_reply_to_id"], first["id"], "{reply}");
    assert!(!reply["content"].as_str().unwrap().contains("script"), "sanitised: {reply}");
    assert_eq!(reply["tags"][0]["name"], "fediverse", "{reply}");
    b.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_from_a_server_that_is_gone_pulls_followers_along() {
    let a = TestNode::spawn().await;
    let b = TestNode::spawn().await;
    let c = TestNode::spawn().await;
    let old = a.create_user("alice").await;
    let carol = b.create_user("carol").await;
    let old_on_b = b.follow(&carol, &old.handle).await;

    // The archive with the identity key needs the password and a passphrase.
    let export = |body: Value| {
        let (base, token) = (a.base.clone(), old.token.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{base}/api/v1/accounts/archive"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let res = export(json!({ "password": "wrong", "passphrase": "a long passphrase" })).await;
    assert_eq!(res.status(), 422);
    let res =
        export(json!({ "password": "correct horse battery", "passphrase": "a long passphrase" }))
            .await;
    assert_eq!(res.status(), 200);
    let archive = res.bytes().await.unwrap().to_vec();
    let sealed: Value = serde_json::from_str(&zip_text(&archive, "ferry/identity.json")).unwrap();
    assert!(
        sealed["ciphertext"].is_string()
            && !zip_text(&archive, "ferry/identity.json").contains("seed"),
        "{sealed}"
    );
    let did = sealed["did"].as_str().unwrap().to_owned();

    // A is gone for good.
    a.stop();
    eventually("A stops answering", 10, || async {
        reqwest::get(format!("{}/users/alice", a.base)).await.is_err().then_some(())
    })
    .await;

    // On C: a wrong passphrase takes nothing; the right one takes the identity and the list
    // of followers.
    let new = c.create_user("alice").await;
    let parts = |passphrase: &'static [u8]| -> Vec<(&'static str, Option<&'static str>, Vec<u8>)> {
        vec![
            ("passphrase", None, passphrase.to_vec()),
            ("data", Some("alice.zip"), archive.clone()),
        ]
    };
    let send = |parts: Vec<(&'static str, Option<&'static str>, Vec<u8>)>| {
        let (c, token) = (&c, new.token.clone());
        async move {
            let refs: Vec<(&str, Option<&str>, &[u8])> =
                parts.iter().map(|(n, f, b)| (*n, *f, b.as_slice())).collect();
            send_multipart(c, "/api/v1/imports", &token, &refs).await
        }
    };
    let (status, body) = send(parts(b"not the passphrase")).await;
    assert_eq!(status, 422, "{body}");
    let (status, report) = send(parts(b"a long passphrase")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (&report["identity"], &report["followers_listed"]),
        (&json!(did), &json!(1)),
        "{report}"
    );
    let (_, actor) = c.get_ap("/users/alice").await;
    assert_eq!(
        actor["attachment"][0]["subject"],
        json!(did),
        "C's alice proves the same identity: {actor}"
    );

    // The alias to the old account is kept though its server does not answer; then the move.
    let (status, me) = c
        .post(
            "/api/v1/accounts/alias",
            Some(&new.token),
            json!({ "also_known_as_uris": [old.ap_id] }),
        )
        .await;
    assert_eq!(status, 200, "{me}");
    let (status, sent) = c
        .post(
            "/api/v1/accounts/move_from",
            Some(&new.token),
            json!({ "password": "correct horse battery", "moved_from_uri": old.ap_id }),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!((&sent["followers"], &sent["servers"]), (&json!(1), &json!(1)), "{sent}");
    let new_on_b = b.resolve(&carol, &new.handle).await;
    eventually("carol follows alice@C", 30, || async {
        let (_, rels) = b
            .get(
                &format!("/api/v1/accounts/relationships?id[]={new_on_b}&id[]={old_on_b}"),
                Some(&carol.token),
            )
            .await;
        (rels[0]["following"] == true && rels[1]["following"] == false).then_some(())
    })
    .await;
    b.stop();
    c.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_over_the_limit_is_refused() {
    let node = TestNode::spawn_with(&[("FERRY_ARCHIVE_MAX_BYTES", "4096".to_owned())]).await;
    let alice = node.create_user("alice").await;
    let big = vec![b'x'; 8192];
    let (status, body) = send_multipart(
        &node,
        "/api/v1/imports",
        &alice.token,
        &[("type", None, b"archive"), ("data", Some("big.zip"), &big)],
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("4096")), "{body}");
    assert!(statuses(&node, &alice).await.is_empty());
    node.stop();
}
