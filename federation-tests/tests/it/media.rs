//! Image uploads over real HTTP: an uploaded PNG gets its size and BlurHash, they travel with
//! the note to another node, and files that are not images are refused.

use ferry_federation_tests::{TestNode, eventually};
use serde_json::{Value, json};

/// A `width × height` PNG, dark on the left and light on the right.
fn gradient_png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, _| {
        let v = (x * 255 / (width - 1)) as u8;
        image::Rgb([v, v / 2, 255 - v])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `POST /api/v2/media` with a multipart body holding `file` and a description.
async fn upload(node: &TestNode, token: &str, file: &[u8]) -> (u16, Value) {
    let boundary = "ferry-test-boundary";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n\
             A gradient\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = reqwest::Client::new()
        .post(format!("{}/api/v2/media", node.base))
        .bearer_auth(token)
        .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_images_carry_size_and_blurhash_to_other_nodes() {
    let a = TestNode::spawn().await;
    let b = TestNode::spawn().await;
    let alice = a.create_user("alice").await;
    let bob = b.create_user("bob").await;
    b.follow(&bob, &alice.handle).await;

    let (status, media) = upload(&a, &alice.token, &gradient_png(120, 80)).await;
    assert_eq!(status, 200, "{media}");
    let hash = media["blurhash"].as_str().unwrap_or_else(|| panic!("no blurhash: {media}"));
    assert_eq!(hash.len(), 36, "4×4 components: {hash}");
    assert!(hash.starts_with('U'), "{hash}");
    assert_eq!(media["meta"]["original"]["width"], 120, "{media}");
    assert_eq!(media["meta"]["original"]["height"], 80, "{media}");
    assert_eq!(media["description"], "A gradient", "{media}");

    let (status, note) = a
        .post(
            "/api/v1/statuses",
            Some(&alice.token),
            json!({ "status": "a picture", "media_ids": [media["id"]] }),
        )
        .await;
    assert_eq!(status, 200, "{note}");
    let seen = eventually("the note with its picture on B", 20, || async {
        let (_, home) = b.get("/api/v1/timelines/home", Some(&bob.token)).await;
        home.as_array()?
            .iter()
            .find(|s| s["content"].as_str().is_some_and(|c| c.contains("a picture")))
            .cloned()
    })
    .await;
    let remote = &seen["media_attachments"][0];
    assert_eq!(remote["blurhash"], hash, "the hash travels in the Note's attachment: {seen}");
    assert_eq!(remote["meta"]["original"]["width"], 120, "{seen}");
    assert_eq!(remote["description"], "A gradient", "{seen}");

    // Not images: refused with 422 and a reason.
    let mut broken = gradient_png(40, 40);
    broken.truncate(60);
    for (what, file) in [("text", b"hello, not an image".to_vec()), ("truncated PNG", broken)] {
        let (status, error) = upload(&a, &alice.token, &file).await;
        assert_eq!(status, 422, "{what}: {error}");
        assert!(error["error"].is_string(), "{what}: {error}");
    }
    a.stop();
    b.stop();
}
