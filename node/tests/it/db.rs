//! Storage tests: every query function against every backend (`support::backends`), through
//! the same `Db` API the services use. Each assertion names the backend.

use ferry_node::db::actors::ActorRow;
use ferry_node::db::blocks::{self, BlockRow, Kind};
use ferry_node::db::deliveries::{self, ClaimedDelivery};
use ferry_node::db::favourites::{self, FavouriteRow};
use ferry_node::db::notes::{self, NoteRow, Page};
use ferry_node::db::notifications::{self, NotificationRow};
use ferry_node::db::oauth::{self, AppRow, CodeRow, TokenRow};
use ferry_node::db::{Backend, Db, Held, actors, feed, follows, ingest, keys, moves, received};
use ferry_node::ids::now_ms;

use crate::support::{
    LOCAL_DOMAIN, backends, count_rows, follow, insert_note, local_account, new_actor, new_note,
    remote_actor, upsert_actor,
};

/// A page with only a limit.
fn newest(limit: i64) -> Page {
    Page { max_id: None, since_id: None, min_id: None, limit }
}

fn ids(rows: &[NoteRow]) -> Vec<i64> {
    rows.iter().map(|n| n.id).collect()
}

async fn fan_out(db: &Db, note: &NoteRow) -> u64 {
    let mut tx = db.begin().await.expect("begin");
    let n = feed::fan_out(&mut tx, note).await.expect("feed::fan_out");
    tx.commit().await.expect("commit");
    n
}

async fn home(db: &Db, account: i64, page: &Page) -> Vec<i64> {
    ids(&feed::home(db, account, page).await.expect("feed::home"))
}

async fn public(db: &Db, local: Option<bool>, page: &Page) -> Vec<i64> {
    ids(&notes::public(db, local, page).await.expect("notes::public"))
}

async fn mention(db: &Db, note: &NoteRow, actors: &[i64]) {
    let mut tx = db.begin().await.expect("begin");
    notes::insert_mentions(&mut tx, note.id, actors).await.expect("insert_mentions");
    tx.commit().await.expect("commit");
}

// ---------------------------------------------------------------------------------------------
// Migrations and actors

#[tokio::test]
async fn migrations_apply_twice_on_the_same_database() {
    let backends = backends().await;
    for ((name, first), (_, url)) in backends.iter().zip(backends.urls()) {
        let alice = local_account(&first, "alice").await;
        // A restart opens the same database again: migrations already applied must be
        // recognised, not re-run or rejected.
        let again = Db::connect(url)
            .await
            .unwrap_or_else(|err| panic!("{name}: second connect to the same database: {err}"));
        let seen = actors::by_id(&again, alice.id).await.expect("by_id");
        assert_eq!(
            seen.map(|a| a.ap_id),
            Some(alice.ap_id.clone()),
            "{name}: rows survive a second connect"
        );
        // And the second handle can write.
        let bob = local_account(&again, "bob").await;
        assert!(actors::by_id(&first, bob.id).await.expect("by_id").is_some(), "{name}");
        again.close().await;
    }
}

#[tokio::test]
async fn actor_upsert_is_idempotent_on_ap_id_and_keeps_the_id() {
    for (name, db) in backends().await.iter() {
        let mut actor = new_actor(&db, "Alice", "remote.example");
        let first = upsert_actor(&db, &actor).await;
        assert_eq!(first.id, actor.id, "{name}: a new actor keeps the id it was given");

        // A refetch mints a new id and brings new fields; the stored id must not change.
        actor.id = db.next_id();
        actor.display_name = "Alice Refetched".to_owned();
        actor.shared_inbox_url = Some("https://remote.example/inbox".to_owned());
        let second = upsert_actor(&db, &actor).await;
        assert_eq!(second.id, first.id, "{name}: upsert on a known ap_id keeps the id");
        assert_eq!(second.display_name, "Alice Refetched", "{name}: upsert refreshes fields");
        assert_eq!(second.delivery_inbox(), "https://remote.example/inbox", "{name}");

        let stored = actors::by_ap_id(&db, &actor.ap_id).await.expect("by_ap_id");
        assert_eq!(stored.map(|a| a.id), Some(first.id), "{name}: one row per ap_id");
        assert!(
            actors::by_id(&db, actor.id).await.expect("by_id").is_none(),
            "{name}: the refetch's id was not stored"
        );

        for username in ["alice", "ALICE", "Alice", "aLiCe"] {
            let found =
                actors::by_handle(&db, username, "remote.example").await.expect("by_handle");
            assert_eq!(found.map(|a| a.id), Some(first.id), "{name}: by_handle({username})");
        }
        let elsewhere = actors::by_handle(&db, "alice", "other.example").await.expect("by_handle");
        assert!(elsewhere.is_none(), "{name}: by_handle matches the domain too");
        let local = actors::by_handle(&db, "alice", LOCAL_DOMAIN).await.expect("by_handle");
        assert!(local.is_none(), "{name}: a remote alice is not the local one");
    }
}

#[tokio::test]
async fn account_search_matches_usernames_with_underscores() {
    for (name, db) in backends().await.iter() {
        let john = local_account(&db, "john_doe").await;
        local_account(&db, "johndoe2").await;
        for prefix in ["john_", "john_d", "JOHN_DOE"] {
            let found = actors::search(&db, prefix, 10).await.expect("search");
            let usernames: Vec<&str> = found.iter().map(|a| a.username.as_str()).collect();
            assert_eq!(usernames, vec![john.username.as_str()], "{name}: search({prefix})");
        }
    }
}

#[tokio::test]
async fn a_deleted_actors_notes_leave_timelines_and_its_follows_end() {
    for (name, db) in backends().await.iter() {
        let bob = local_account(&db, "bob").await;
        let dave = remote_actor(&db, "dave", "remote.example", None).await;
        follow(&db, &bob, &dave, true).await;
        follow(&db, &dave, &bob, true).await;
        let note = insert_note(&db, &new_note(&db, &dave, "public")).await;
        fan_out(&db, &note).await;

        // What `federation::receive::note::delete` does for a `Delete` of the actor itself.
        let mut tx = db.begin().await.expect("begin");
        actors::mark_deleted(&mut tx, dave.id, now_ms()).await.expect("mark_deleted");
        tx.commit().await.expect("commit");

        assert!(public(&db, None, &newest(20)).await.is_empty(), "{name}: public timeline");
        assert!(home(&db, bob.id, &newest(20)).await.is_empty(), "{name}: home feed");
        assert!(!notes::is_visible(&db, note.id, 0).await.expect("is_visible"), "{name}");
        let counts = actors::counts(&db, bob.id).await.expect("counts");
        assert_eq!((counts.followers, counts.following), (0, 0), "{name}: follows end");
    }
}

/// The counts an account shows, counted live from the rows (what the counters must equal).
async fn live_counts(url: &str, actor: &ActorRow) -> (i64, i64, i64) {
    let notes = count_rows(
        url,
        "SELECT COUNT(*) FROM notes WHERE author_id = $1 AND deleted_at IS NULL
            AND reblog_of_id IS NULL",
        actor.id,
    )
    .await;
    let followers = count_rows(
        url,
        "SELECT COUNT(*) FROM follows WHERE followee_id = $1 AND accepted",
        actor.id,
    )
    .await;
    let following = count_rows(
        url,
        "SELECT COUNT(*) FROM follows WHERE follower_id = $1 AND accepted",
        actor.id,
    )
    .await;
    (notes, followers, following)
}

#[tokio::test]
async fn account_counts_follow_every_change_to_follows_and_notes() {
    let backends = backends().await;
    for (name, db) in backends.iter() {
        let url = backends.url(name);
        let bob = local_account(&db, "bob").await;
        let alice = local_account(&db, "alice").await;
        let dave = remote_actor(&db, "dave", "remote.example", None).await;
        let everyone = [&bob, &alice, &dave];
        let check = |step: &'static str| {
            let db = db.clone();
            async move {
                let ids: Vec<i64> = everyone.iter().map(|a| a.id).collect();
                let many = actors::counts_of(&db, &ids).await.expect("counts_of");
                for actor in everyone {
                    let one = actors::counts(&db, actor.id).await.expect("counts");
                    let shown = (one.notes, one.followers, one.following);
                    let live = live_counts(url, actor).await;
                    assert_eq!(shown, live, "{name}: {} after {step}", actor.username);
                    let of = many[&actor.id];
                    assert_eq!((of.notes, of.followers, of.following), live, "{name}: {step}");
                }
            }
        };
        check("start").await;

        // Follows: pending, accepted, repeated, reversed, of oneself, removed.
        let request = follow(&db, &alice, &bob, false).await;
        check("a follow request").await;
        let mut tx = db.begin().await.expect("begin");
        follows::accept(&mut tx, request.id).await.expect("accept");
        tx.commit().await.expect("commit");
        check("its accept").await;
        follow(&db, &alice, &bob, false).await;
        check("a repeated Follow").await;
        follow(&db, &dave, &bob, true).await;
        follow(&db, &bob, &dave, true).await;
        follow(&db, &bob, &bob, true).await;
        check("more follows").await;
        assert_eq!(actors::counts(&db, bob.id).await.expect("counts").followers, 3, "{name}");
        let mut tx = db.begin().await.expect("begin");
        follows::delete(&mut tx, alice.id, bob.id).await.expect("delete");
        follows::delete(&mut tx, alice.id, bob.id).await.expect("delete again");
        tx.commit().await.expect("commit");
        check("an unfollow").await;

        // Notes: local and remote, boosts (not counted), deletes, an undone boost.
        let mut kept = Vec::new();
        for author in [&bob, &bob, &bob, &dave, &dave] {
            kept.push(insert_note(&db, &new_note(&db, author, "public")).await);
        }
        let mut boost = new_note(&db, &bob, "public");
        boost.reblog_of_id = Some(kept[3].id);
        let boost = insert_note(&db, &boost).await;
        check("notes and a boost").await;
        let mut tx = db.begin().await.expect("begin");
        notes::mark_deleted(&mut tx, kept[0].id, now_ms()).await.expect("mark_deleted");
        notes::mark_deleted(&mut tx, kept[0].id, now_ms()).await.expect("mark_deleted again");
        notes::mark_deleted(&mut tx, kept[4].id, now_ms()).await.expect("mark_deleted");
        notes::delete_boost(&mut tx, boost.id).await.expect("delete_boost");
        tx.commit().await.expect("commit");
        check("deletes").await;
        assert_eq!(actors::counts(&db, bob.id).await.expect("counts").notes, 2, "{name}");

        // A Delete of the remote actor ends its follows both ways.
        let mut tx = db.begin().await.expect("begin");
        actors::mark_deleted(&mut tx, dave.id, now_ms()).await.expect("mark_deleted");
        tx.commit().await.expect("commit");
        check("the remote actor's Delete").await;

        let unknown = actors::counts(&db, i64::MAX).await.expect("counts");
        assert_eq!((unknown.notes, unknown.followers, unknown.following), (0, 0, 0), "{name}");
    }
}

#[tokio::test]
async fn a_remote_actors_reported_counts_add_what_this_node_has_not_seen() {
    use actors::ReportedCounts;
    for (name, db) in backends().await.iter() {
        let bob = local_account(&db, "bob").await;
        let dave = remote_actor(&db, "dave", "remote.example", None).await;
        follow(&db, &bob, &dave, true).await;
        insert_note(&db, &new_note(&db, &dave, "public")).await;
        let shown = |db: Db| async move {
            let c = actors::counts(&db, dave.id).await.expect("counts");
            (c.notes, c.followers, c.following)
        };
        assert_eq!(shown(db.clone()).await, (1, 1, 0), "{name}: before any report");

        let report = |notes, followers, following| ReportedCounts { notes, followers, following };
        let store = |reported: ReportedCounts| {
            let db = db.clone();
            async move {
                let mut tx = db.begin().await.expect("begin");
                actors::set_reported(&mut tx, dave.id, reported).await.expect("set_reported");
                tx.commit().await.expect("commit");
            }
        };
        // The server's figures, whichever way they were reached.
        store(report(Some(40), Some(10), Some(3))).await;
        assert_eq!(shown(db.clone()).await, (40, 10, 3), "{name}: as reported");
        // A follow and a note seen here afterwards count on top.
        follow(&db, &dave, &bob, true).await;
        let bob_on_dave = actors::counts(&db, bob.id).await.expect("counts");
        assert_eq!(bob_on_dave.followers, 1, "{name}: bob's own counters untouched");
        insert_note(&db, &new_note(&db, &dave, "public")).await;
        assert_eq!(shown(db.clone()).await, (41, 10, 4), "{name}: plus what came since");
        // A count not reported keeps the last figure; one below what this node has seen shows
        // what it has seen.
        store(report(None, Some(0), None)).await;
        assert_eq!(shown(db.clone()).await, (41, 1, 4), "{name}: never below what is seen");

        // Reads are spaced: a second claim within the spacing is refused.
        let now = now_ms();
        let claim = |at: i64| {
            let db = db.clone();
            async move {
                let mut tx = db.begin().await.expect("begin");
                let claimed = actors::claim_counts_read(&mut tx, dave.id, at, 3_600_000)
                    .await
                    .expect("claim");
                tx.commit().await.expect("commit");
                claimed
            }
        };
        assert!(claim(now).await, "{name}: the first read");
        assert!(!claim(now + 1_000).await, "{name}: a second read a second later");
        assert!(claim(now + 3_600_000).await, "{name}: a read an hour later");
    }
}

// ---------------------------------------------------------------------------------------------
// Follows

#[tokio::test]
async fn follow_upsert_by_pair_accept_and_delete() {
    for (name, db) in backends().await.iter() {
        let bob = local_account(&db, "bob").await;
        let alice = remote_actor(&db, "alice", "remote.example", None).await;

        let pending = follow(&db, &alice, &bob, false).await;
        let by_pair = follows::by_pair(&db, alice.id, bob.id).await.expect("by_pair");
        let by_pair = by_pair.unwrap_or_else(|| panic!("{name}: follow stored"));
        assert_eq!(by_pair.id, pending.id, "{name}");
        assert!(!by_pair.accepted, "{name}: a follow request starts pending");
        assert!(
            follows::by_pair(&db, bob.id, alice.id).await.expect("by_pair").is_none(),
            "{name}: by_pair is directional"
        );

        // A repeated Follow keeps the row but takes the newest activity id.
        let repeat = follow(&db, &alice, &bob, false).await;
        assert_eq!(repeat.id, pending.id, "{name}: a repeated Follow keeps the row id");
        assert_ne!(repeat.ap_id, pending.ap_id, "{name}: a repeated Follow takes the new ap_id");
        assert!(
            follows::by_ap_id(&db, &repeat.ap_id).await.expect("by_ap_id").is_some(),
            "{name}: the newest Follow id finds the row"
        );

        let mut tx = db.begin().await.expect("begin");
        follows::accept(&mut tx, pending.id).await.expect("accept");
        tx.commit().await.expect("commit");
        let accepted = follows::by_pair(&db, alice.id, bob.id).await.expect("by_pair");
        assert_eq!(accepted.map(|f| f.accepted), Some(true), "{name}: accept");

        // A Follow repeated after the Accept must not turn the follow back into a request.
        let again = follow(&db, &alice, &bob, false).await;
        assert!(again.accepted, "{name}: a repeated Follow keeps the accepted state");

        let counts = actors::counts(&db, bob.id).await.expect("counts");
        assert_eq!((counts.followers, counts.following), (1, 0), "{name}: counts");

        let mut tx = db.begin().await.expect("begin");
        let removed = follows::delete(&mut tx, alice.id, bob.id).await.expect("delete");
        let removed_again = follows::delete(&mut tx, alice.id, bob.id).await.expect("delete");
        tx.commit().await.expect("commit");
        assert_eq!(removed.map(|f| f.id), Some(pending.id), "{name}: delete returns the row");
        assert!(removed_again.is_none(), "{name}: a second delete finds nothing");
        assert!(
            follows::by_pair(&db, alice.id, bob.id).await.expect("by_pair").is_none(),
            "{name}: deleted"
        );
    }
}

#[tokio::test]
async fn followers_are_queued_once_per_shared_inbox_skipping_local_and_pending_followers() {
    for (name, db) in backends().await.iter() {
        let bob = local_account(&db, "bob").await;
        let shared = "https://one.example/inbox";
        // Three accepted followers on one server with a shared inbox: one delivery.
        for user in ["a1", "a2", "a3"] {
            let actor = remote_actor(&db, user, "one.example", Some(shared)).await;
            follow(&db, &actor, &bob, true).await;
        }
        // Two accepted followers on a server without shared inboxes: one each.
        let b1 = remote_actor(&db, "b1", "two.example", None).await;
        let b2 = remote_actor(&db, "b2", "two.example", None).await;
        follow(&db, &b1, &bob, true).await;
        follow(&db, &b2, &bob, true).await;
        // A server on its own port: the port is part of the server's name.
        let p1 = remote_actor(&db, "p1", "five.example:8443", None).await;
        follow(&db, &p1, &bob, true).await;
        // A remote actor whose inbox claims to be on this node: never delivered to over HTTP.
        let mut spoof = new_actor(&db, "s1", "seven.example");
        spoof.inbox_url = format!("https://{LOCAL_DOMAIN}/inbox");
        let spoof = upsert_actor(&db, &spoof).await;
        follow(&db, &spoof, &bob, true).await;
        // Pending remote follower, on its own server: nothing goes there.
        let pending = remote_actor(&db, "c1", "three.example", None).await;
        follow(&db, &pending, &bob, false).await;
        // Local follower: served from the home feed, never over HTTP.
        let carol = local_account(&db, "carol").await;
        follow(&db, &carol, &bob, true).await;
        // Someone following another account does not count.
        let dave = local_account(&db, "dave").await;
        let d1 = remote_actor(&db, "d1", "four.example", None).await;
        follow(&db, &d1, &dave, true).await;

        let now = 1_000;
        let mut tx = db.begin().await.expect("begin");
        let ap_id = format!("https://{LOCAL_DOMAIN}/activities/{}", db.next_id());
        let activity = deliveries::insert_activity(&mut tx, &ap_id, bob.id, "{}", now)
            .await
            .expect("insert_activity");
        let queued = deliveries::enqueue_followers(&mut tx, activity, bob.id, LOCAL_DOMAIN, now)
            .await
            .expect("enqueue_followers");
        // A mention of a follower on one.example: already queued through the shared inbox. A
        // mention on a new server: queued.
        let extra = [
            (shared.to_owned(), "one.example".to_owned()),
            ("https://six.example/users/x/inbox".to_owned(), "six.example".to_owned()),
        ];
        let named = deliveries::enqueue(&mut tx, activity, &extra, now).await.expect("enqueue");
        tx.commit().await.expect("commit");
        assert_eq!((queued, named), (4, 1), "{name}: rows queued by each statement");

        let claimed = deliveries::claim(&db, now, now + 60_000, 100, &[]).await.expect("claim");
        let mut got: Vec<(String, String)> =
            claimed.into_iter().map(|d| (d.inbox, d.domain)).collect();
        got.sort();
        let mut want = vec![
            (shared.to_owned(), "one.example".to_owned()),
            (b1.inbox_url.clone(), "two.example".to_owned()),
            (b2.inbox_url.clone(), "two.example".to_owned()),
            (p1.inbox_url.clone(), "five.example:8443".to_owned()),
            extra[1].clone(),
        ];
        want.sort();
        assert_eq!(got, want, "{name}: one shared inbox per server, personal inboxes otherwise");
    }
}

#[tokio::test]
async fn a_deferred_fan_out_is_expanded_in_chunks_once_per_inbox() {
    for (name, db) in backends().await.iter() {
        let bob = local_account(&db, "bob").await;
        let shared = "https://one.example/inbox";
        let mut want = vec![(shared.to_owned(), "one.example".to_owned())];
        // Followers on one server with a shared inbox, spread over every chunk of 4, and
        // followers on servers without one, between them in id order.
        for i in 0..10 {
            let actor = remote_actor(&db, &format!("a{i}"), "one.example", Some(shared)).await;
            follow(&db, &actor, &bob, true).await;
            if i % 3 == 0 {
                let own = remote_actor(&db, &format!("b{i}"), "two.example", None).await;
                follow(&db, &own, &bob, true).await;
                want.push((own.inbox_url.clone(), "two.example".to_owned()));
            }
        }
        // Never delivered to over HTTP: a pending follower, a local one, and a remote actor
        // whose inbox claims to be on this node.
        let pending = remote_actor(&db, "c1", "three.example", None).await;
        follow(&db, &pending, &bob, false).await;
        let carol = local_account(&db, "carol").await;
        follow(&db, &carol, &bob, true).await;
        let mut spoof = new_actor(&db, "s1", "seven.example");
        spoof.inbox_url = format!("https://{LOCAL_DOMAIN}/inbox");
        let spoof = upsert_actor(&db, &spoof).await;
        follow(&db, &spoof, &bob, true).await;

        let now = 1_000;
        let mut tx = db.begin().await.expect("begin");
        assert_eq!(
            deliveries::follower_count(&mut tx, bob.id).await.expect("count"),
            16,
            "{name}: accepted followers, local ones included"
        );
        let ap_id = format!("https://{LOCAL_DOMAIN}/activities/{}", db.next_id());
        let activity = deliveries::insert_activity(&mut tx, &ap_id, bob.id, "{}", now)
            .await
            .expect("insert_activity");
        deliveries::defer_followers(&mut tx, activity, bob.id, now).await.expect("defer");
        // A mention on the shared server, queued with the post: no chunk queues it again.
        let mention = [(shared.to_owned(), "one.example".to_owned())];
        deliveries::enqueue(&mut tx, activity, &mention, now).await.expect("enqueue");
        // Pruning spares an activity whose fan-out waits, though no delivery is finished.
        deliveries::prune(&mut tx, now + 1).await.expect("prune");
        tx.commit().await.expect("commit");
        assert_eq!(deliveries::activities(&db, &[activity]).await.expect("load").len(), 1);

        let mut steps = Vec::new();
        while let Some(step) =
            deliveries::expand_fanout(&db, LOCAL_DOMAIN, 4, now).await.expect("expand")
        {
            assert_eq!(step.activity_id, activity, "{name}");
            steps.push((step.queued, step.finished));
            assert!(steps.len() <= 5, "{name}: the fan-out ends");
        }
        // 16 followers in chunks of 4: four full chunks, then an empty last one.
        assert_eq!(
            steps.iter().map(|s| s.1).collect::<Vec<_>>(),
            [false, false, false, false, true]
        );
        assert_eq!(steps.iter().map(|s| s.0).sum::<u64>(), 4, "{name}: rows queued by the chunks");

        let claimed = deliveries::claim(&db, now, now + 60_000, 100, &[]).await.expect("claim");
        let mut got: Vec<(String, String)> =
            claimed.into_iter().map(|d| (d.inbox, d.domain)).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{name}: each remote inbox once, across chunks and mentions");

        // A fan-out that finds nobody remote to tell leaves no activity behind.
        let mut tx = db.begin().await.expect("begin");
        let ap_id = format!("https://{LOCAL_DOMAIN}/activities/{}", db.next_id());
        let lonely = deliveries::insert_activity(&mut tx, &ap_id, carol.id, "{}", now)
            .await
            .expect("insert_activity");
        deliveries::defer_followers(&mut tx, lonely, carol.id, now).await.expect("defer");
        tx.commit().await.expect("commit");
        let step = deliveries::expand_fanout(&db, LOCAL_DOMAIN, 4, now).await.expect("expand");
        assert_eq!(
            step,
            Some(deliveries::FanoutStep { activity_id: lonely, queued: 0, finished: true }),
            "{name}"
        );
        assert!(deliveries::activities(&db, &[lonely]).await.expect("load").is_empty(), "{name}");
        assert_eq!(
            deliveries::expand_fanout(&db, LOCAL_DOMAIN, 4, now).await.expect("expand"),
            None
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Notes

#[tokio::test]
async fn note_insert_returns_none_for_a_known_ap_id() {
    for (name, db) in backends().await.iter() {
        let alice = remote_actor(&db, "alice", "remote.example", None).await;
        let note = insert_note(&db, &new_note(&db, &alice, "public")).await;

        // The same Create delivered twice (two inboxes, a retry) mints a second id.
        let mut replay = note.clone();
        replay.id = db.next_id();
        replay.content = "<p>replayed</p>".to_owned();
        let mut tx = db.begin().await.expect("begin");
        let second = notes::insert(&mut tx, &replay).await.expect("notes::insert");
        tx.commit().await.expect("commit");
        assert!(second.is_none(), "{name}: a duplicate ap_id returns None");

        let stored = notes::by_ap_id(&db, &note.ap_id).await.expect("by_ap_id");
        let stored = stored.unwrap_or_else(|| panic!("{name}: note stored"));
        assert_eq!((stored.id, stored.content), (note.id, note.content), "{name}: first wins");
        assert!(notes::by_id(&db, replay.id).await.expect("by_id").is_none(), "{name}");
    }
}

#[tokio::test]
async fn batch_insert_stores_new_notes_and_leaves_out_known_ones_and_id_clashes() {
    for (name, db) in backends().await.iter() {
        let alice = remote_actor(&db, "alice", "remote.example", None).await;
        let known = insert_note(&db, &new_note(&db, &alice, "public")).await;
        // 40 new notes: more than one 32-row statement.
        let mut batch: Vec<NoteRow> = (0..40).map(|_| new_note(&db, &alice, "public")).collect();
        let mut replay = known.clone();
        replay.id = db.next_id();
        batch.push(replay);
        let mut clash = new_note(&db, &alice, "public");
        clash.id = known.id;
        batch.push(clash.clone());

        let mut tx = db.begin().await.expect("begin");
        let stored = notes::insert_many(&mut tx, &batch.iter().collect::<Vec<_>>())
            .await
            .expect("notes::insert_many");
        tx.commit().await.expect("commit");

        let mut got: Vec<i64> = ids(&stored);
        got.sort_unstable();
        let mut want: Vec<i64> = batch[..40].iter().map(|n| n.id).collect();
        want.sort_unstable();
        assert_eq!(got, want, "{name}: the 40 new notes, not the replay or the id clash");
        assert!(notes::by_ap_id(&db, &clash.ap_id).await.expect("by_ap_id").is_none(), "{name}");
    }
}

#[tokio::test]
async fn batch_threading_and_fan_out_cover_every_note_of_the_batch() {
    for (name, db) in backends().await.iter() {
        let carol = local_account(&db, "carol").await;
        let alice = remote_actor(&db, "alice", "remote.example", None).await;
        let bob = remote_actor(&db, "bob", "other.example", None).await;
        follow(&db, &carol, &alice, true).await;
        let parents: Vec<NoteRow> = (0..3).map(|_| new_note(&db, &alice, "public")).collect();
        let mut early = Vec::new();
        for parent in &parents {
            let mut reply = new_note(&db, &bob, "public");
            reply.in_reply_to_ap_id = Some(parent.ap_id.clone());
            early.push(insert_note(&db, &reply).await);
        }
        let direct = new_note(&db, &alice, "direct");
        let mut batch = parents.clone();
        batch.push(direct.clone());

        let mut tx = db.begin().await.expect("begin");
        let stored = notes::insert_many(&mut tx, &batch.iter().collect::<Vec<_>>())
            .await
            .expect("insert_many");
        let stored_ids = ids(&stored);
        notes::thread_replies(&mut tx, &stored_ids).await.expect("thread_replies");
        let added = feed::fan_out_many(&mut tx, &stored_ids).await.expect("fan_out_many");
        tx.commit().await.expect("commit");

        for (parent, reply) in parents.iter().zip(&early) {
            let reply = notes::by_id(&db, reply.id).await.expect("by_id").expect("stored");
            assert_eq!(reply.in_reply_to_id, Some(parent.id), "{name}: threaded");
        }
        assert_eq!(added, 3, "{name}: carol's feed gets the 3 public notes, not the direct one");
        let mut feed = home(&db, carol.id, &newest(20)).await;
        feed.sort_unstable();
        let mut want: Vec<i64> = ids(&parents);
        want.sort_unstable();
        assert_eq!(feed, want, "{name}: home feed");
    }
}

#[tokio::test]
async fn batch_claims_report_each_new_id_once() {
    let backends = backends().await;
    for (name, db) in backends.iter() {
        let mut tx = db.begin().await.expect("begin");
        assert!(received::insert_if_new(&mut tx, "https://r.example/a/1", 1).await.expect("claim"));
        tx.commit().await.expect("commit");
        let ids = ["https://r.example/a/1", "https://r.example/a/2", "https://r.example/a/2"];
        let entries: Vec<ingest::Entry<'_>> = ids
            .iter()
            .map(|id| ingest::Entry { claim: Some(id), note: None, like: None })
            .collect();
        let mut tx = db.begin().await.expect("begin");
        let written = ingest::write(&mut tx, &entries, 2).await.expect("ingest::write");
        tx.commit().await.expect("commit");
        let fresh: Vec<&str> =
            ids.iter().zip(&written.fresh).filter(|(_, new)| **new).map(|(id, _)| *id).collect();
        assert_eq!(fresh, vec!["https://r.example/a/2"], "{name}: only the unseen id, once");
        for (id, times) in [(ids[0], 1), (ids[1], 1), ("https://r.example/a/3", 0)] {
            assert_eq!(received::seen(&db, id).await.expect("seen"), times == 1, "{name}: {id}");
        }
        let rows = count_rows(
            backends.url(name),
            "SELECT COUNT(*) FROM received_activities WHERE received_at <= $1",
            2,
        )
        .await;
        assert_eq!(rows, 2, "{name}: two rows in all");
    }
}

/// For the ingest batch tests: carol (local) follows alice (remote), who has a stored note;
/// the activity id `https://r.example/seen` is already claimed.
async fn ingest_fixture(db: &Db) -> (ActorRow, ActorRow, NoteRow) {
    let carol = local_account(db, "carol").await;
    let alice = remote_actor(db, "alice", "remote.example", None).await;
    follow(db, &carol, &alice, true).await;
    let known = insert_note(db, &new_note(db, &alice, "public")).await;
    let mut tx = db.begin().await.expect("begin");
    assert!(received::insert_if_new(&mut tx, "https://r.example/seen", 1).await.expect("claim"));
    tx.commit().await.expect("commit");
    (carol, alice, known)
}

#[tokio::test]
async fn an_ingest_batch_claims_stores_threads_and_fans_out_once_per_note() {
    for (name, db) in backends().await.iter() {
        let (carol, alice, known) = ingest_fixture(&db).await;
        let bob = remote_actor(&db, "bob", "other.example", None).await;
        // A second follower of alice's, and one whose follow is still pending.
        let erin = local_account(&db, "erin").await;
        follow(&db, &erin, &alice, true).await;
        let dave = local_account(&db, "dave").await;
        follow(&db, &dave, &alice, false).await;

        let parent = new_note(&db, &alice, "public");
        let mut early = new_note(&db, &bob, "public");
        early.in_reply_to_ap_id = Some(parent.ap_id.clone());
        let early = insert_note(&db, &early).await;
        let mut reply = new_note(&db, &bob, "public");
        reply.in_reply_to_ap_id = Some(known.ap_id.clone());
        let mut mentioning = new_note(&db, &bob, "direct");
        // Every field must come back as given (SQLite passes the batch as JSON).
        mentioning.content = "<p>\"quoted\" \\ ünïcødé 😀\n\t</p>".to_owned();
        mentioning.summary = "cw: <b>".to_owned();
        mentioning.sensitive = true;
        mentioning.language = Some("de".to_owned());
        mentioning.url = Some("https://other.example/@bob/1".to_owned());
        mentioning.updated_at = Some(mentioning.published_at + 1);
        let mut replay = known.clone();
        replay.id = db.next_id();
        let mut clash = new_note(&db, &alice, "public");
        clash.id = known.id;
        let unclaimed = new_note(&db, &alice, "public");
        let mut sibling = new_note(&db, &bob, "public");
        sibling.in_reply_to_ap_id = Some(parent.ap_id.clone());
        let on_seen = new_note(&db, &alice, "public");
        let mentions = [carol.id];
        let tags = ["ferry".to_owned(), "ferry".to_owned()];
        let note = |row| Some(ingest::NewNote { row, mentions: &[], tags: &[] });
        let entries = [
            ingest::Entry { claim: Some("https://r.example/1"), note: note(&parent), like: None },
            ingest::Entry { claim: Some("https://r.example/2"), note: note(&reply), like: None },
            ingest::Entry {
                claim: Some("https://r.example/3"),
                note: Some(ingest::NewNote { row: &mentioning, mentions: &mentions, tags: &tags }),
                like: None,
            },
            ingest::Entry { claim: Some("https://r.example/4"), note: note(&replay), like: None },
            ingest::Entry { claim: Some("https://r.example/5"), note: note(&clash), like: None },
            ingest::Entry {
                claim: Some("https://r.example/seen"),
                note: note(&on_seen),
                like: None,
            },
            ingest::Entry { claim: Some("https://r.example/6"), note: None, like: None },
            ingest::Entry { claim: Some("https://r.example/6"), note: None, like: None },
            ingest::Entry { claim: Some("https://r.example/7"), note: note(&parent), like: None },
            ingest::Entry { claim: None, note: note(&unclaimed), like: None },
            ingest::Entry { claim: Some("https://r.example/8"), note: note(&sibling), like: None },
        ];
        let mut tx = db.begin().await.expect("begin");
        let written = ingest::write(&mut tx, &entries, 2).await.expect("ingest::write");
        tx.commit().await.expect("commit");

        let fresh = [true, true, true, true, true, false, true, false, true, true, true];
        assert_eq!(written.fresh, fresh, "{name}: a seen id and a repeated one are not new");
        let stored: Vec<Option<&str>> =
            written.stored.iter().map(|n| n.as_ref().map(|n| n.ap_id.as_str())).collect();
        let want = [
            Some(parent.ap_id.as_str()),
            Some(reply.ap_id.as_str()),
            Some(mentioning.ap_id.as_str()),
            None,
            Some(clash.ap_id.as_str()),
            None,
            None,
            None,
            None,
            Some(unclaimed.ap_id.as_str()),
            Some(sibling.ap_id.as_str()),
        ];
        assert_eq!(stored, want, "{name}: new notes once each, not the replay or a seen claim's");
        let clash_id = written.stored[4].as_ref().expect("stored").id;
        assert_ne!(clash_id, known.id, "{name}: the clashing note drew another id");
        assert_eq!(clash_id >> 16, known.id >> 16, "{name}: in the same millisecond");
        for (i, id) in [(0, parent.id), (1, reply.id), (2, mentioning.id), (9, unclaimed.id)] {
            assert_eq!(written.stored[i].as_ref().map(|n| n.id), Some(id), "{name}: entry {i}");
        }
        for id in ["https://r.example/1", "https://r.example/6", "https://r.example/7"] {
            assert!(received::seen(&db, id).await.expect("seen"), "{name}: {id} claimed");
        }
        assert!(notes::by_ap_id(&db, &on_seen.ap_id).await.expect("by_ap_id").is_none(), "{name}");
        let stored_known = notes::by_ap_id(&db, &known.ap_id).await.expect("by_ap_id");
        assert_eq!(
            stored_known.map(|n| n.id),
            Some(known.id),
            "{name}: the replay changed nothing"
        );

        let early = notes::by_id(&db, early.id).await.expect("by_id").expect("stored");
        assert_eq!(early.in_reply_to_id, Some(parent.id), "{name}: an earlier reply is threaded");
        let read = notes::by_id(&db, mentioning.id).await.expect("by_id").expect("stored");
        assert_eq!(format!("{read:?}"), format!("{mentioning:?}"), "{name}: every field as given");
        let sibling = notes::by_id(&db, sibling.id).await.expect("by_id").expect("stored");
        assert_eq!(sibling.in_reply_to_id, Some(parent.id), "{name}: so is one in the same batch");
        let reply = notes::by_id(&db, reply.id).await.expect("by_id").expect("stored");
        assert_eq!(reply.in_reply_to_ap_id.as_deref(), Some(known.ap_id.as_str()), "{name}");
        assert_eq!(
            notes::mentions_of(&db, &[mentioning.id]).await.expect("mentions_of"),
            vec![(mentioning.id, carol.id)],
            "{name}: mentions"
        );
        assert_eq!(
            notes::tags_of(&db, &[mentioning.id]).await.expect("tags_of"),
            vec![(mentioning.id, "ferry".to_owned())],
            "{name}: tags, once each"
        );
        let mut feed = home(&db, carol.id, &newest(20)).await;
        feed.sort_unstable();
        let mut want = vec![parent.id, mentioning.id, clash_id, unclaimed.id];
        want.sort_unstable();
        assert_eq!(feed, want, "{name}: alice's new notes and the note mentioning carol");
        let mut feed = home(&db, erin.id, &newest(20)).await;
        feed.sort_unstable();
        want.retain(|id| *id != mentioning.id);
        assert_eq!(feed, want, "{name}: each accepted follower gets alice's new notes");
        assert!(home(&db, dave.id, &newest(20)).await.is_empty(), "{name}: not a pending one");
    }
}

/// Batches of every shape (with or without claims, mentions, tags and likes; PostgreSQL
/// prepares a statement per shape) store what they carry and nothing else.
#[tokio::test]
async fn ingest_batches_of_every_shape() {
    for (name, db) in backends().await.iter() {
        let (carol, alice, _) = ingest_fixture(&db).await;
        for shape in 0..16 {
            let [claims, mentioning, tagged, liking] = [1, 2, 4, 8].map(|bit| shape & bit != 0);
            let stored = insert_note(&db, &new_note(&db, &alice, "public")).await;
            let like = FavouriteRow {
                id: db.next_id(),
                ap_id: format!("https://r.example/shape/{shape}#like"),
                actor_id: alice.id,
                note_id: stored.id,
                created_at: 3,
            };
            let plain = new_note(&db, &alice, "public");
            let direct = new_note(&db, &alice, "direct");
            let mentions = [carol.id];
            let tags = [format!("shape{shape}")];
            let claim = format!("https://r.example/shape/{shape}");
            let mut entries = vec![
                ingest::Entry {
                    claim: None,
                    note: Some(ingest::NewNote { row: &plain, mentions: &[], tags: &[] }),
                    like: None,
                },
                ingest::Entry {
                    claim: None,
                    note: Some(ingest::NewNote {
                        row: &direct,
                        mentions: if mentioning { &mentions } else { &[] },
                        tags: if tagged { &tags } else { &[] },
                    }),
                    like: None,
                },
            ];
            if claims {
                entries.push(ingest::Entry { claim: Some(&claim), note: None, like: None });
            }
            if liking {
                let like = ingest::NewLike { row: &like, notification: None };
                entries.push(ingest::Entry { claim: None, note: None, like: Some(like) });
            }
            let written = match ingest::write_alone(&db, &mut Held::default(), &entries, 3)
                .await
                .expect("write_alone")
            {
                Some(written) => written,
                None => {
                    let mut tx = db.begin().await.expect("begin");
                    let written = ingest::write(&mut tx, &entries, 3).await.expect("write");
                    tx.commit().await.expect("commit");
                    written
                }
            };
            assert!(written.fresh.iter().all(|f| *f), "{name} shape {shape}: all new");
            assert_eq!(written.stored.iter().flatten().count(), 2, "{name} shape {shape}");
            assert_eq!(written.liked.iter().any(|l| *l), liking, "{name} shape {shape}: a like");
            let liked = favourites::by_ap_id(&db, &like.ap_id).await.expect("by_ap_id");
            assert_eq!(liked.is_some(), liking, "{name} shape {shape}: a like recorded");
            assert_eq!(received::seen(&db, &claim).await.expect("seen"), claims, "{name} {shape}");
            let want_mentions = if mentioning { vec![(direct.id, carol.id)] } else { vec![] };
            assert_eq!(
                notes::mentions_of(&db, &[plain.id, direct.id]).await.expect("mentions_of"),
                want_mentions,
                "{name} shape {shape}: mentions"
            );
            let want_tags = if tagged { vec![(direct.id, tags[0].clone())] } else { vec![] };
            assert_eq!(
                notes::tags_of(&db, &[plain.id, direct.id]).await.expect("tags_of"),
                want_tags,
                "{name} shape {shape}: tags"
            );
            let feed = home(&db, carol.id, &newest(50)).await;
            assert!(feed.contains(&plain.id), "{name} shape {shape}: a followed author's note");
            assert_eq!(
                feed.contains(&direct.id),
                mentioning,
                "{name} shape {shape}: a direct note only when it mentions carol"
            );
        }
    }
}

/// A batch with nothing to record beside it is written without a transaction of the caller's;
/// a note whose id is taken is stored under another, with its mentions and tags, and a note
/// left out gets none of them. On PostgreSQL, where the batch is one statement, a reply to a
/// note of the same batch needs a transaction, and `write_alone` declines it, writing nothing.
/// On SQLite the writer's statements see the ones before them, so a batch that repeats a note
/// or a claim, or pairs a claim with a note, is written alone too, each thing once.
#[tokio::test]
async fn an_ingest_batch_without_a_transaction() {
    for (name, db) in backends().await.iter() {
        let sqlite = db.backend() == Backend::Sqlite;
        let (carol, alice, known) = ingest_fixture(&db).await;
        let parent = new_note(&db, &alice, "public");
        let mut reply = new_note(&db, &alice, "public");
        reply.in_reply_to_ap_id = Some(parent.ap_id.clone());
        let (twin, claimed) = (new_note(&db, &alice, "public"), new_note(&db, &alice, "public"));
        let unheard = new_note(&db, &alice, "public");
        let note = |row| Some(ingest::NewNote { row, mentions: &[], tags: &[] });
        let mut repeated = Vec::new();
        if sqlite {
            let entries = [
                ingest::Entry { claim: None, note: note(&twin), like: None },
                ingest::Entry { claim: None, note: note(&twin), like: None },
                ingest::Entry { claim: Some("https://r.example/twice"), note: None, like: None },
                ingest::Entry { claim: Some("https://r.example/twice"), note: None, like: None },
                ingest::Entry {
                    claim: Some("https://r.example/both"),
                    note: note(&claimed),
                    like: None,
                },
                ingest::Entry {
                    claim: Some("https://r.example/seen"),
                    note: note(&unheard),
                    like: None,
                },
            ];
            let written = ingest::write_alone(&db, &mut Held::default(), &entries, 1)
                .await
                .expect("write_alone")
                .expect("written alone");
            assert_eq!(
                written.fresh,
                [true, true, true, false, true, false],
                "{name}: claims once"
            );
            let stored: Vec<Option<i64>> =
                written.stored.iter().map(|n| n.as_ref().map(|n| n.id)).collect();
            assert_eq!(stored, [Some(twin.id), None, None, None, Some(claimed.id), None], "{name}");
            assert!(
                notes::by_ap_id(&db, &unheard.ap_id).await.expect("by_ap_id").is_none(),
                "{name}: a seen claim's note is not stored"
            );
            for id in ["https://r.example/twice", "https://r.example/both"] {
                assert!(received::seen(&db, id).await.expect("seen"), "{name}: {id}");
            }
            repeated = vec![twin.id, claimed.id];
        } else {
            let entries = [
                ingest::Entry { claim: None, note: note(&parent), like: None },
                ingest::Entry { claim: None, note: note(&reply), like: None },
            ];
            let written = ingest::write_alone(&db, &mut Held::default(), &entries, 1)
                .await
                .expect("write_alone");
            assert!(written.is_none(), "{name}: declined");
            assert!(
                notes::by_ap_id(&db, &parent.ap_id).await.expect("by_ap_id").is_none(),
                "{name}: nothing written"
            );
        }

        let mentions = [carol.id];
        let tags = ["ferry".to_owned()];
        let tagged = |row| Some(ingest::NewNote { row, mentions: &mentions, tags: &tags });
        let mut replay = known.clone();
        replay.id = db.next_id();
        let mut clash = new_note(&db, &alice, "public");
        clash.id = known.id;
        let mut entries = vec![
            ingest::Entry { claim: None, note: note(&parent), like: None },
            ingest::Entry { claim: None, note: tagged(&replay), like: None },
            ingest::Entry { claim: None, note: tagged(&clash), like: None },
            ingest::Entry { claim: Some("https://r.example/alone"), note: None, like: None },
            ingest::Entry { claim: Some("https://r.example/seen"), note: None, like: None },
        ];
        if sqlite {
            // A reply to a note of the same batch, after it: threaded as it is stored.
            entries.push(ingest::Entry { claim: None, note: note(&reply), like: None });
        }
        let written =
            ingest::write_alone(&db, &mut Held::default(), &entries, 2).await.expect("write_alone");
        let written = written.expect("one statement");
        assert_eq!(written.fresh[..5], [true, true, true, true, false], "{name}");
        let stored: Vec<Option<i64>> =
            written.stored.iter().map(|n| n.as_ref().map(|n| n.id)).collect();
        assert_eq!(stored[0], Some(parent.id), "{name}: a new note");
        assert_eq!(stored[1], None, "{name}: the replay changed nothing");
        let clash_id = stored[2].expect("the clashing note was stored");
        assert_ne!(clash_id, known.id, "{name}: with another id");
        assert_eq!(stored[3..5], [None, None], "{name}: claims store no note");
        assert!(received::seen(&db, "https://r.example/alone").await.expect("seen"), "{name}");
        let mentioned =
            notes::mentions_of(&db, &[known.id, replay.id, clash_id]).await.expect("mentions_of");
        assert_eq!(mentioned, vec![(clash_id, carol.id)], "{name}: the late note's mentions only");
        let tagged = notes::tags_of(&db, &[known.id, replay.id, clash_id]).await.expect("tags_of");
        assert_eq!(tagged, vec![(clash_id, "ferry".to_owned())], "{name}: and tags");
        let mut want = vec![parent.id, clash_id];
        want.extend(repeated);
        if sqlite {
            assert_eq!(stored[5], Some(reply.id), "{name}");
            let reply = notes::by_id(&db, reply.id).await.expect("by_id").expect("stored");
            assert_eq!(reply.in_reply_to_id, Some(parent.id), "{name}: threaded");
            want.push(reply.id);
        }
        let mut feed = home(&db, carol.id, &newest(20)).await;
        feed.sort_unstable();
        want.sort_unstable();
        assert_eq!(feed, want, "{name}: fanned out, the late note too");
        let again = ingest::write_alone(&db, &mut Held::default(), &entries[..1], 3)
            .await
            .expect("write_alone");
        let again = again.expect("written alone");
        assert!(again.stored[0].is_none(), "{name}: stored once");
    }
}

/// The inbox writer keeps its connection from one batch to the next; on SQLite, where it is
/// the only writer connection, it gives it back to a transaction that waits for it.
/// Received likes in an ingest batch, written alone (SQLite's writer connection, PostgreSQL's
/// statement) and in a transaction (sqlx on SQLite): each like once per `ap_id` and once per
/// actor and note, only of stored notes by stored actors, and only when its claim is new; the
/// local author of a liked note is notified once per like, unless the liker's notifications
/// are hidden.
#[tokio::test]
async fn an_ingest_batch_records_likes_and_notifies_local_authors() {
    for (name, db) in backends().await.iter() {
        let (carol, alice, known) = ingest_fixture(&db).await;
        let bob = remote_actor(&db, "bob", "other.example", None).await;
        let dave = remote_actor(&db, "dave", "other.example", None).await;
        let mine = insert_note(&db, &new_note(&db, &carol, "public")).await;
        let mut tx = db.begin().await.expect("begin");
        let mute = BlockRow {
            id: db.next_id(),
            account_id: carol.id,
            target_id: dave.id,
            kind: Kind::Mute.as_str().to_owned(),
            hide_notifications: true,
            created_at: now_ms(),
        };
        blocks::upsert(&mut tx, &mute).await.expect("upsert");
        tx.commit().await.expect("commit");

        let like = |actor: &ActorRow, note: &NoteRow, tag: &str| {
            let row = FavouriteRow {
                id: db.next_id(),
                ap_id: format!("{}#likes/{tag}", actor.ap_id),
                actor_id: actor.id,
                note_id: note.id,
                created_at: 5,
            };
            let notification = note.is_local.then(|| NotificationRow {
                id: db.next_id(),
                account_id: note.author_id,
                kind: "favourite".to_owned(),
                from_actor_id: actor.id,
                note_id: Some(note.id),
                created_at: 5,
            });
            (row, notification)
        };
        let missing = new_note(&db, &alice, "public");
        let likes = [
            like(&alice, &mine, "1"),
            like(&alice, &mine, "1"),
            like(&bob, &mine, "2"),
            like(&bob, &mine, "3"),
            like(&alice, &known, "4"),
            like(&dave, &mine, "5"),
            like(&bob, &missing, "6"),
            like(&dave, &known, "7"),
        ];
        fn entry(like: &(FavouriteRow, Option<NotificationRow>)) -> ingest::Entry<'_> {
            let (row, notification) = like;
            let like = ingest::NewLike { row, notification: notification.as_ref() };
            ingest::Entry { claim: None, note: None, like: Some(like) }
        }
        let mut entries: Vec<ingest::Entry<'_>> = likes.iter().map(entry).collect();
        entries[7].claim = Some("https://r.example/seen");
        let written = ingest::write_alone(&db, &mut Held::default(), &entries, 5)
            .await
            .expect("write_alone")
            .expect("written alone");
        assert_eq!(
            written.liked,
            [true, false, true, false, true, true, false, false],
            "{name}: once per ap_id and per actor and note, of stored notes, on a new claim"
        );
        assert!(written.stored.iter().all(Option::is_none), "{name}: no notes");

        // A later batch, in a transaction: the same likes again, and one new.
        let (known_by_bob, again) = (like(&bob, &known, "8"), like(&alice, &mine, "9"));
        let mut replayed = entries.clone();
        replayed.extend([entry(&known_by_bob), entry(&again)]);
        let mut tx = db.begin().await.expect("begin");
        let written = ingest::write(&mut tx, &replayed, 6).await.expect("write");
        tx.commit().await.expect("commit");
        let mut want = vec![false; entries.len()];
        want.extend([true, false]);
        assert_eq!(written.liked, want, "{name}: a replay records nothing");

        let liked_by = |fav: Option<FavouriteRow>| fav.map(|f| (f.actor_id, f.note_id));
        for (row, _) in [&likes[0], &likes[2], &likes[4], &likes[5], &known_by_bob] {
            let stored = favourites::by_ap_id(&db, &row.ap_id).await.expect("by_ap_id");
            assert_eq!(
                liked_by(stored),
                Some((row.actor_id, row.note_id)),
                "{name}: {}",
                row.ap_id
            );
        }
        for (row, _) in [&likes[3], &likes[6], &likes[7], &again] {
            let stored = favourites::by_ap_id(&db, &row.ap_id).await.expect("by_ap_id");
            assert!(stored.is_none(), "{name}: {} not recorded", row.ap_id);
        }
        let mut counts = favourites::counts_of(&db, &[mine.id, known.id]).await.expect("counts");
        counts.sort_unstable();
        let mut want = vec![(mine.id, 3), (known.id, 2)];
        want.sort_unstable();
        assert_eq!(counts, want, "{name}: likes per note");
        let got = notifications::page(&db, carol.id, &[], &newest(20)).await.expect("page");
        let mut got: Vec<(String, i64, Option<i64>)> =
            got.into_iter().map(|n| (n.kind, n.from_actor_id, n.note_id)).collect();
        got.sort_unstable();
        let mut want = vec![
            ("favourite".to_owned(), alice.id, Some(mine.id)),
            ("favourite".to_owned(), bob.id, Some(mine.id)),
        ];
        want.sort_unstable();
        assert_eq!(got, want, "{name}: carol hears of alice's and bob's likes, not dave's");
    }
}

/// The notes a batch's likes and boosts name, looked up by the inbox writer at once: what each
/// needs of its note, and nothing for a note not stored.
#[tokio::test]
async fn the_inbox_writer_looks_up_the_notes_its_interactions_name() {
    for (name, db) in backends().await.iter() {
        let (carol, _, known) = ingest_fixture(&db).await;
        let mut mine = new_note(&db, &carol, "unlisted");
        mine.deleted_at = Some(7);
        let mine = insert_note(&db, &mine).await;
        let missing = "https://r.example/statuses/missing";
        let mut held = Held::default();
        let found = ingest::targets(&db, &mut held, &[&known.ap_id, missing, &mine.ap_id])
            .await
            .expect("targets");
        let target = |note: &NoteRow, deleted| ingest::Target {
            id: note.id,
            author_id: note.author_id,
            is_local: note.is_local,
            visibility: note.visibility.clone(),
            deleted,
        };
        assert_eq!(found.len(), 2, "{name}: {found:?}");
        assert_eq!(found.get(&known.ap_id), Some(&target(&known, false)), "{name}");
        assert_eq!(found.get(&mine.ap_id), Some(&target(&mine, true)), "{name}");
        assert!(mine.is_local && !known.is_local, "{name}");
    }
}

#[tokio::test]
async fn the_inbox_writer_keeps_its_connection_until_a_transaction_waits() {
    for (name, db) in backends().await.iter() {
        let (carol, alice, _) = ingest_fixture(&db).await;
        let mut held = Held::default();
        for n in 0..2 {
            let row = new_note(&db, &alice, "public");
            let entries = [ingest::Entry {
                claim: None,
                note: Some(ingest::NewNote { row: &row, mentions: &[], tags: &[] }),
                like: None,
            }];
            let written = ingest::write_alone(&db, &mut held, &entries, n).await.expect("write");
            assert!(written.expect("one statement").stored[0].is_some(), "{name}: batch {n}");
            assert!(held.is_held(), "{name}: the connection is kept after batch {n}");
        }

        let waiting = {
            let (db, note) = (db.clone(), new_note(&db, &alice, "public"));
            tokio::spawn(async move { insert_note(&db, &note).await })
        };
        if db.backend() == Backend::Sqlite {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            assert!(!waiting.is_finished(), "{name}: the transaction waits for the writer");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while held.is_held() && std::time::Instant::now() < deadline {
                db.release_if_wanted(&mut held);
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert!(!held.is_held(), "{name}: given back to the waiting transaction");
        }
        let note = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .unwrap_or_else(|_| panic!("{name}: the transaction did not get a connection"))
            .expect("insert task");
        db.release_if_wanted(&mut held);
        assert_eq!(
            held.is_held(),
            db.backend() == Backend::Postgres,
            "{name}: PostgreSQL keeps it"
        );
        assert_eq!(
            home(&db, carol.id, &newest(20)).await.len(),
            2,
            "{name}: both batches fanned out"
        );
        assert!(notes::by_id(&db, note.id).await.expect("by_id").is_some(), "{name}");
    }
}

/// A batch the database refuses (here a note by an author it does not know, or mentioning an
/// account it does not know) is a database error that says why, writes nothing of the batch,
/// and leaves the writer able to write the next one on the same `Held` (on SQLite, its own
/// connection is opened again). SQLite's inbox writer checks those two foreign keys itself.
#[tokio::test]
async fn a_refused_ingest_batch_writes_nothing_and_the_next_one_is_written() {
    for (name, db) in backends().await.iter() {
        let (carol, alice, _) = ingest_fixture(&db).await;
        let mut held = Held::default();
        let good = new_note(&db, &alice, "public");
        let mut orphan = new_note(&db, &alice, "public");
        orphan.author_id = i64::MAX;
        let note = |row| Some(ingest::NewNote { row, mentions: &[], tags: &[] });
        let entries = [
            ingest::Entry { claim: None, note: note(&good), like: None },
            ingest::Entry { claim: None, note: note(&orphan), like: None },
            ingest::Entry { claim: Some("https://r.example/refused"), note: None, like: None },
        ];
        let error = ingest::write_alone(&db, &mut held, &entries, 1)
            .await
            .expect_err("a note by an unknown author is refused");
        let refused = error.as_database_error().expect("a database error");
        assert!(refused.is_foreign_key_violation(), "{name}: {refused}");
        assert!(notes::by_ap_id(&db, &good.ap_id).await.expect("by_ap_id").is_none(), "{name}");
        assert!(!received::seen(&db, "https://r.example/refused").await.expect("seen"), "{name}");
        // So is a note that mentions an account the database does not know.
        let mentioning = new_note(&db, &alice, "public");
        let unknown = [i64::MAX];
        let entries_mentioning = [
            ingest::Entry { claim: None, note: note(&good), like: None },
            ingest::Entry {
                claim: None,
                note: Some(ingest::NewNote { row: &mentioning, mentions: &unknown, tags: &[] }),
                like: None,
            },
        ];
        let error = ingest::write_alone(&db, &mut held, &entries_mentioning, 1)
            .await
            .expect_err("a mention of an unknown account is refused");
        let refused = error.as_database_error().expect("a database error");
        assert!(refused.is_foreign_key_violation(), "{name}: {refused}");
        for row in [&good, &mentioning] {
            assert!(notes::by_ap_id(&db, &row.ap_id).await.expect("by_ap_id").is_none(), "{name}");
        }

        let written = ingest::write_alone(&db, &mut held, &entries[..1], 2)
            .await
            .expect("the next batch")
            .expect("one statement");
        assert_eq!(written.stored[0].as_ref().map(|n| n.id), Some(good.id), "{name}");
        assert_eq!(home(&db, carol.id, &newest(20)).await, vec![good.id], "{name}: fanned out");
    }
}

#[tokio::test]
async fn replies_that_arrive_before_their_parent_are_threaded_when_it_arrives() {
    for (name, db) in backends().await.iter() {
        let alice = remote_actor(&db, "alice", "remote.example", None).await;
        let bob = remote_actor(&db, "bob", "other.example", None).await;
        let parent = new_note(&db, &alice, "public");
        let mut reply = new_note(&db, &bob, "public");
        reply.in_reply_to_ap_id = Some(parent.ap_id.clone());
        let mut unrelated = new_note(&db, &bob, "public");
        unrelated.in_reply_to_ap_id = Some("https://gone.example/notes/1".to_owned());

        insert_note(&db, &reply).await;
        insert_note(&db, &unrelated).await;
        let before = notes::by_id(&db, reply.id).await.expect("by_id").expect("reply stored");
        assert_eq!(before.in_reply_to_id, None, "{name}: parent unknown yet");

        let parent = insert_note(&db, &parent).await;
        let after = notes::by_id(&db, reply.id).await.expect("by_id").expect("reply stored");
        assert_eq!(after.in_reply_to_id, Some(parent.id), "{name}: reply threaded on arrival");
        let other = notes::by_id(&db, unrelated.id).await.expect("by_id").expect("stored");
        assert_eq!(other.in_reply_to_id, None, "{name}: other replies untouched");

        let thread = notes::descendants(&db, &parent, 0).await.expect("descendants");
        assert_eq!(ids(&thread), vec![reply.id], "{name}: the thread shows the reply");
        let up = notes::ancestors(&db, &after, 0).await.expect("ancestors");
        assert_eq!(ids(&up), vec![parent.id], "{name}: the reply shows its parent");
    }
}

#[tokio::test]
async fn the_sqlite_wal_is_checkpointed_apart_from_the_writer() {
    for (name, db) in backends().await.iter() {
        let alice = remote_actor(&db, "alice", "remote.example", None).await;
        for _ in 0..3 {
            insert_note(&db, &new_note(&db, &alice, "public")).await;
        }
        let wal = db.checkpoint().await.expect("checkpoint");
        if name == "sqlite" {
            assert!(wal.backfilled > 0, "{name}: the writes were copied into the database file");
            assert_eq!(wal.backfilled, wal.frames, "{name}: nothing else was writing");
        } else {
            assert_eq!(wal, Default::default(), "{name}: nothing to checkpoint");
        }
    }
}

/// A checkpoint that cannot reach the WAL's end (here a reader keeps an older snapshot, as a
/// busy writer's new frames do in production) copies what it can, and syncs the database file
/// itself, which SQLite would not.
#[tokio::test]
async fn a_checkpoint_that_falls_short_of_the_wal_end_still_succeeds() {
    use sqlx::Connection as _;
    let backends = backends().await;
    let db = backends.iter().find(|(name, _)| *name == "sqlite").expect("sqlite").1;
    let alice = remote_actor(&db, "alice", "remote.example", None).await;
    insert_note(&db, &new_note(&db, &alice, "public")).await;
    let mut reader =
        sqlx::SqliteConnection::connect(backends.url("sqlite")).await.expect("a second handle");
    let mut snapshot = reader.begin().await.expect("a read transaction");
    let _: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM notes").fetch_one(&mut *snapshot).await.expect("read");
    for _ in 0..3 {
        insert_note(&db, &new_note(&db, &alice, "public")).await;
    }
    let short = db.checkpoint().await.expect("a checkpoint beside an old snapshot");
    assert!(short.backfilled > 0, "the frames before the snapshot were copied: {short:?}");
    assert!(short.backfilled < short.frames, "the reader held the rest back: {short:?}");
    snapshot.rollback().await.expect("end the read");
    let whole = db.checkpoint().await.expect("a checkpoint with no reader");
    assert_eq!(whole.backfilled, whole.frames, "then everything is copied");
}

#[tokio::test]
async fn ingest_tables_get_planner_statistics_on_postgres() {
    let backends = backends().await;
    for (name, db) in backends.iter() {
        let alice = remote_actor(&db, "alice", "remote.example", None).await;
        for _ in 0..3 {
            insert_note(&db, &new_note(&db, &alice, "public")).await;
        }
        let analyzed = notes::analyze_ingest_tables(&db).await.expect("analyze");
        if name != "postgres" {
            assert!(!analyzed, "{name}: nothing to analyze");
            continue;
        }
        assert!(analyzed, "{name}: a young table is analyzed");
        let url = backends.url(name);
        // What the planner reads; empty until the table is analyzed.
        let columns = count_rows(
            url,
            "SELECT COUNT(*) FROM pg_stats
             WHERE schemaname = current_schema() AND tablename = 'notes' AND $1 = 1",
            1,
        )
        .await;
        assert!(columns > 0, "{name}: notes has statistics");
        // Columns no query filters on are not described (their statistics cost the most).
        let wide = count_rows(
            url,
            "SELECT COUNT(*) FROM pg_stats WHERE schemaname = current_schema()
             AND (tablename = 'notes' AND attname IN ('content', 'summary', 'audience', 'url')
                  OR tablename = 'received_activities' AND attname = 'ap_id') AND $1 = 1",
            1,
        )
        .await;
        assert_eq!(wide, 0, "{name}: wide columns have no statistics");
        // Statistics that describe an older table are left to autovacuum. Writing the
        // catalog stands in for inserting 16,000 notes.
        let updated = count_rows(
            url,
            "WITH u AS (UPDATE pg_class SET reltuples = $1 WHERE oid = 'notes'::regclass
             RETURNING 1) SELECT COUNT(*) FROM u",
            notes::YOUNG_NOTES,
        )
        .await;
        assert_eq!(updated, 1);
        let analyzed = notes::analyze_ingest_tables(&db).await.expect("analyze");
        assert!(!analyzed, "{name}: an older table is not analyzed again");
    }
}

#[tokio::test]
async fn the_delivery_worker_has_connections_of_its_own_on_postgres() {
    let backends = backends().await;
    for (name, db) in backends.iter() {
        let delivery = db.for_delivery();
        // The handle works like the node's: it sees the same queue.
        assert_eq!(
            deliveries::status_counts(&delivery).await.expect("counts"),
            (0, 0, 0),
            "{name}"
        );
        let names = (
            db.application_name().await.expect("name"),
            delivery.application_name().await.expect("delivery name"),
        );
        if name == "postgres" {
            assert_eq!(names, (Some("ferry".into()), Some("ferry-delivery".into())), "{name}");
            // A name given in the URL is kept, for every pool.
            let url = format!("{}&application_name=ferry-test", backends.url(name));
            let named = Db::connect(&url).await.expect("connect with a name");
            assert_eq!(
                named.application_name().await.expect("name").as_deref(),
                Some("ferry-test")
            );
            assert_eq!(
                named.for_delivery().application_name().await.expect("name").as_deref(),
                Some("ferry-test")
            );
            named.close().await;
        } else {
            assert_eq!(names, (None, None), "{name}");
        }
    }
}

#[tokio::test]
async fn deleting_a_note_removes_it_and_its_boosts_from_home_feeds() {
    let backends = backends().await;
    for (name, db) in backends.iter() {
        let alice = local_account(&db, "alice").await;
        let bob = local_account(&db, "bob").await;
        follow(&db, &bob, &alice, true).await;
        let carol = local_account(&db, "carol").await;
        follow(&db, &carol, &bob, true).await;

        let note = insert_note(&db, &new_note(&db, &alice, "public")).await;
        fan_out(&db, &note).await;
        let mut boost = new_note(&db, &bob, "public");
        boost.reblog_of_id = Some(note.id);
        let boost = insert_note(&db, &boost).await;
        fan_out(&db, &boost).await;
        let keep = insert_note(&db, &new_note(&db, &alice, "public")).await;
        fan_out(&db, &keep).await;
        assert_eq!(
            home(&db, bob.id, &newest(20)).await,
            vec![keep.id, boost.id, note.id],
            "{name}"
        );
        assert_eq!(home(&db, carol.id, &newest(20)).await, vec![boost.id], "{name}");

        let mut tx = db.begin().await.expect("begin");
        notes::mark_deleted(&mut tx, note.id, now_ms()).await.expect("mark_deleted");
        tx.commit().await.expect("commit");

        assert_eq!(home(&db, alice.id, &newest(20)).await, vec![keep.id], "{name}: author");
        assert_eq!(home(&db, bob.id, &newest(20)).await, vec![keep.id], "{name}: follower");
        assert!(home(&db, carol.id, &newest(20)).await.is_empty(), "{name}: boost gone");
        // Reads filter deleted notes anyway; the entries themselves must go too.
        let url = backends.url(name);
        let entries = count_rows(
            url,
            "SELECT COUNT(*) FROM home_feed WHERE note_id IN
                (SELECT id FROM notes WHERE id = $1 OR reblog_of_id = $1)",
            note.id,
        )
        .await;
        assert_eq!(entries, 0, "{name}: feed entries of the note and its boosts removed");

        let tomb = notes::by_id(&db, note.id).await.expect("by_id").expect("row kept as marker");
        assert!(tomb.deleted_at.is_some(), "{name}: marked deleted");
        assert_eq!(tomb.content, "", "{name}: content dropped");
        let boost = notes::by_id(&db, boost.id).await.expect("by_id").expect("boost row");
        assert!(boost.deleted_at.is_some(), "{name}: boosts of it deleted too");
        assert!(!notes::is_visible(&db, note.id, alice.id).await.expect("is_visible"), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Home feed fan-out and timelines

#[tokio::test]
async fn fan_out_reaches_author_and_accepted_local_followers_only() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let bob = local_account(&db, "bob").await; // accepted follower
        let carol = local_account(&db, "carol").await; // pending follower
        let erin = local_account(&db, "erin").await; // no relation
        let dave = remote_actor(&db, "dave", "remote.example", None).await; // remote follower
        follow(&db, &bob, &alice, true).await;
        follow(&db, &carol, &alice, false).await;
        follow(&db, &dave, &alice, true).await;

        for visibility in ["public", "unlisted", "private"] {
            let note = insert_note(&db, &new_note(&db, &alice, visibility)).await;
            let written = fan_out(&db, &note).await;
            assert_eq!(written, 2, "{name}: {visibility}: author + bob");
            for (who, id, expected) in [
                ("author", alice.id, true),
                ("accepted follower", bob.id, true),
                ("pending follower", carol.id, false),
                ("stranger", erin.id, false),
                ("remote follower", dave.id, false),
            ] {
                let feed = home(&db, id, &newest(40)).await;
                assert_eq!(feed.contains(&note.id), expected, "{name}: {visibility} note, {who}");
            }
        }

        // Direct: the author and mentioned local accounts, never plain followers.
        let direct = insert_note(&db, &new_note(&db, &alice, "direct")).await;
        mention(&db, &direct, &[carol.id, dave.id]).await;
        let written = fan_out(&db, &direct).await;
        assert_eq!(written, 2, "{name}: direct: author + mentioned local account");
        for (who, id, expected) in [
            ("author", alice.id, true),
            ("accepted follower, not mentioned", bob.id, false),
            ("mentioned, pending follower", carol.id, true),
            ("stranger", erin.id, false),
        ] {
            let feed = home(&db, id, &newest(40)).await;
            assert_eq!(feed.contains(&direct.id), expected, "{name}: direct note, {who}");
        }

        // A remote author's note reaches local followers, and fan-out twice changes nothing.
        let remote_note = insert_note(&db, &new_note(&db, &dave, "public")).await;
        follow(&db, &erin, &dave, true).await;
        assert_eq!(fan_out(&db, &remote_note).await, 1, "{name}: remote author, erin");
        assert_eq!(fan_out(&db, &remote_note).await, 0, "{name}: fan-out is idempotent");
        assert_eq!(home(&db, erin.id, &newest(40)).await, vec![remote_note.id], "{name}");
    }
}

/// Checks Mastodon's pagination on a timeline of `all` ids (oldest first).
async fn check_pagination<F, Fut>(name: &str, what: &str, all: &[i64], list: F)
where
    F: Fn(Page) -> Fut,
    Fut: Future<Output = Vec<i64>>,
{
    let [n0, n1, n2, n3, n4] = all else { panic!("five notes expected") };
    let page = |max_id, since_id, min_id, limit| Page { max_id, since_id, min_id, limit };
    let cases = [
        ("newest first", page(None, None, None, 20), vec![*n4, *n3, *n2, *n1, *n0]),
        ("limit", page(None, None, None, 2), vec![*n4, *n3]),
        ("max_id is exclusive", page(Some(*n3), None, None, 20), vec![*n2, *n1, *n0]),
        ("max_id with limit", page(Some(*n3), None, None, 2), vec![*n2, *n1]),
        ("since_id: the newest above it", page(None, Some(*n1), None, 2), vec![*n4, *n3]),
        ("since_id is exclusive", page(None, Some(*n1), None, 20), vec![*n4, *n3, *n2]),
        (
            "min_id: the oldest above it, newest first",
            page(None, None, Some(*n1), 2),
            vec![*n3, *n2],
        ),
        ("min_id is exclusive", page(None, None, Some(*n1), 20), vec![*n4, *n3, *n2]),
        ("max_id and since_id", page(Some(*n4), Some(*n0), None, 20), vec![*n3, *n2, *n1]),
        ("max_id and min_id", page(Some(*n4), None, Some(*n0), 2), vec![*n2, *n1]),
        ("nothing newer", page(None, Some(*n4), None, 20), vec![]),
        ("nothing older", page(Some(*n0), None, None, 20), vec![]),
    ];
    for (case, page, expected) in cases {
        assert_eq!(list(page).await, expected, "{name}: {what}: {case} ({page:?})");
    }
}

#[tokio::test]
async fn notes_published_in_the_same_millisecond_all_get_stored() {
    for (name, db) in backends().await.iter() {
        let bob = remote_actor(&db, "bob", "remote.example", None).await;
        let first = new_note(&db, &bob, "public");
        // Same id (as two notes published in the same millisecond may draw), other ap_ids.
        let mut clash = new_note(&db, &bob, "public");
        clash.id = first.id;
        let stored = insert_note(&db, &first).await;
        let again = insert_note(&db, &clash).await;
        assert_eq!(stored.id, first.id, "{name}");
        assert_ne!(again.id, first.id, "{name}: a fresh id was drawn");
        assert_eq!(again.id >> 16, first.id >> 16, "{name}: at the same time");
        assert_eq!(again.ap_id, clash.ap_id, "{name}");
    }
}

#[tokio::test]
async fn an_accepted_follow_merges_recent_notes_into_the_home_feed() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let bob = remote_actor(&db, "bob", "remote.example", None).await;
        let public = insert_note(&db, &new_note(&db, &bob, "public")).await;
        let private = insert_note(&db, &new_note(&db, &bob, "private")).await;
        let direct = insert_note(&db, &new_note(&db, &bob, "direct")).await;
        let mut tx = db.begin().await.expect("begin");
        let merged = feed::merge_author(&mut tx, alice.id, bob.id, 40).await.expect("merge");
        // Merging twice adds nothing, and remote accounts have no home feed.
        let again = feed::merge_author(&mut tx, alice.id, bob.id, 40).await.expect("merge");
        let remote = feed::merge_author(&mut tx, bob.id, alice.id, 40).await.expect("merge");
        tx.commit().await.expect("commit");
        assert_eq!((merged, again, remote), (2, 0, 0), "{name}");
        let home = home(&db, alice.id, &newest(40)).await;
        assert!(home.contains(&public.id) && home.contains(&private.id), "{name}: {home:?}");
        assert!(!home.contains(&direct.id), "{name}: direct notes are not merged");
    }
}

#[tokio::test]
async fn home_timeline_pages_newest_first_with_mastodon_bounds() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let bob = local_account(&db, "bob").await;
        let mut all = Vec::new();
        for _ in 0..5 {
            let note = insert_note(&db, &new_note(&db, &alice, "public")).await;
            fan_out(&db, &note).await;
            all.push(note.id);
        }
        // Bob's own note is in his feed only.
        let other = insert_note(&db, &new_note(&db, &bob, "public")).await;
        fan_out(&db, &other).await;

        check_pagination(name, "home", &all, |page| {
            let db = db.clone();
            async move { home(&db, alice.id, &page).await }
        })
        .await;
    }
}

#[tokio::test]
async fn public_timeline_pages_newest_first_and_holds_only_public_originals() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let dave = remote_actor(&db, "dave", "remote.example", None).await;
        let mut all = Vec::new();
        for i in 0..5 {
            // Alternate local and remote authors; both belong on the federated timeline.
            let author = if i % 2 == 0 { &alice } else { &dave };
            all.push(insert_note(&db, &new_note(&db, author, "public")).await.id);
            // Interleave what must never show: unlisted, private, direct, a boost, a deletion.
            let hidden = ["unlisted", "private", "direct"][i % 3];
            insert_note(&db, &new_note(&db, author, hidden)).await;
        }
        let mut boost = new_note(&db, &dave, "public");
        boost.reblog_of_id = Some(all[0]);
        insert_note(&db, &boost).await;
        let deleted = insert_note(&db, &new_note(&db, &alice, "public")).await;
        let mut tx = db.begin().await.expect("begin");
        notes::mark_deleted(&mut tx, deleted.id, now_ms()).await.expect("mark_deleted");
        tx.commit().await.expect("commit");

        check_pagination(name, "public", &all, |page| {
            let db = db.clone();
            async move { public(&db, None, &page).await }
        })
        .await;

        let local = public(&db, Some(true), &newest(20)).await;
        assert_eq!(local, vec![all[4], all[2], all[0]], "{name}: local timeline");
        let remote = public(&db, Some(false), &newest(20)).await;
        assert_eq!(remote, vec![all[3], all[1]], "{name}: remote-only timeline");
    }
}

#[tokio::test]
async fn note_visibility_follows_audience_rules() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await; // author
        let bob = local_account(&db, "bob").await; // accepted follower
        let carol = local_account(&db, "carol").await; // pending follower
        let dave = remote_actor(&db, "dave", "remote.example", None).await; // mentioned
        let erin = local_account(&db, "erin").await; // stranger
        follow(&db, &bob, &alice, true).await;
        follow(&db, &carol, &alice, false).await;

        let public = insert_note(&db, &new_note(&db, &alice, "public")).await;
        let unlisted = insert_note(&db, &new_note(&db, &alice, "unlisted")).await;
        let private = insert_note(&db, &new_note(&db, &alice, "private")).await;
        let direct = insert_note(&db, &new_note(&db, &alice, "direct")).await;
        mention(&db, &direct, &[dave.id]).await;

        const ANONYMOUS: i64 = 0;
        let viewers = [
            ("anonymous", ANONYMOUS, [true, true, false, false]),
            ("author", alice.id, [true, true, true, true]),
            ("accepted follower", bob.id, [true, true, true, false]),
            ("pending follower", carol.id, [true, true, false, false]),
            ("mentioned", dave.id, [true, true, false, true]),
            ("stranger", erin.id, [true, true, false, false]),
        ];
        let audiences = [
            ("public", &public),
            ("unlisted", &unlisted),
            ("private", &private),
            ("direct", &direct),
        ];
        for (who, viewer, expected) in viewers {
            for ((kind, note), expected) in audiences.iter().zip(expected) {
                let visible = notes::is_visible(&db, note.id, viewer).await.expect("is_visible");
                assert_eq!(visible, expected, "{name}: {kind} note seen by {who}");
            }
        }
        assert!(
            !notes::is_visible(&db, db.next_id(), alice.id).await.expect("is_visible"),
            "{name}: a missing note is not visible"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Favourites and notifications

#[tokio::test]
async fn favourite_insert_twice_returns_none_the_second_time() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let dave = remote_actor(&db, "dave", "remote.example", None).await;
        let note = insert_note(&db, &new_note(&db, &alice, "public")).await;
        let like = |id: i64| FavouriteRow {
            id,
            ap_id: format!("{}/likes/{id}", dave.ap_id),
            actor_id: dave.id,
            note_id: note.id,
            created_at: now_ms(),
        };
        let first = like(db.next_id());
        let mut tx = db.begin().await.expect("begin");
        let inserted = favourites::insert(&mut tx, &first).await.expect("insert");
        // A second Like of the same note by the same actor, with its own activity id.
        let second = favourites::insert(&mut tx, &like(db.next_id())).await.expect("insert");
        // The very same Like again.
        let replay = favourites::insert(&mut tx, &first).await.expect("insert");
        tx.commit().await.expect("commit");
        assert_eq!(inserted.map(|f| f.id), Some(first.id), "{name}: first like stored");
        assert!(second.is_none(), "{name}: a second like of the same note returns None");
        assert!(replay.is_none(), "{name}: a replayed like returns None");

        let counts = favourites::counts_of(&db, &[note.id]).await.expect("counts_of");
        assert_eq!(counts, vec![(note.id, 1)], "{name}: counted once");
        let liked = favourites::liked_by(&db, dave.id, &[note.id]).await.expect("liked_by");
        assert_eq!(liked, vec![note.id], "{name}");
        let found = favourites::by_ap_id(&db, &first.ap_id).await.expect("by_ap_id");
        assert_eq!(found.map(|f| f.id), Some(first.id), "{name}");

        let mut tx = db.begin().await.expect("begin");
        let removed = favourites::delete(&mut tx, dave.id, note.id).await.expect("delete");
        tx.commit().await.expect("commit");
        assert_eq!(removed.map(|f| f.id), Some(first.id), "{name}: unlike returns the row");
        let counts = favourites::counts_of(&db, &[note.id]).await.expect("counts_of");
        assert!(counts.is_empty(), "{name}: no likes left");
    }
}

#[tokio::test]
async fn notifications_are_stored_only_for_local_accounts_and_page_dismiss_and_clear() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let bob = local_account(&db, "bob").await;
        let dave = remote_actor(&db, "dave", "remote.example", None).await;
        let note = insert_note(&db, &new_note(&db, &alice, "public")).await;
        let notification = |account: i64, kind: &str, note_id: Option<i64>| NotificationRow {
            id: db.next_id(),
            account_id: account,
            kind: kind.to_owned(),
            from_actor_id: dave.id,
            note_id,
            created_at: now_ms(),
        };
        let follow_n = notification(alice.id, "follow", None);
        let mention_n = notification(alice.id, "mention", Some(note.id));
        let like_n = notification(alice.id, "favourite", Some(note.id));
        let for_bob = notification(bob.id, "follow", None);
        let for_remote = notification(dave.id, "mention", Some(note.id));
        let mut tx = db.begin().await.expect("begin");
        for row in [&follow_n, &mention_n, &like_n, &for_bob, &for_remote] {
            notifications::insert(&mut tx, row).await.expect("notifications::insert");
        }
        tx.commit().await.expect("commit");

        let page = |account, kinds: &[&str], page: Page| {
            let db = db.clone();
            let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_owned()).collect();
            async move {
                let rows = notifications::page(&db, account, &kinds, &page).await.expect("page");
                rows.iter().map(|n| n.id).collect::<Vec<_>>()
            }
        };
        assert!(page(dave.id, &[], newest(20)).await.is_empty(), "{name}: remote: nothing");
        assert!(
            notifications::by_id(&db, dave.id, for_remote.id).await.expect("by_id").is_none(),
            "{name}: no row for a remote account"
        );
        assert_eq!(
            page(alice.id, &[], newest(20)).await,
            vec![like_n.id, mention_n.id, follow_n.id],
            "{name}: newest first"
        );
        assert_eq!(page(alice.id, &[], newest(2)).await, vec![like_n.id, mention_n.id], "{name}");
        let older = Page { max_id: Some(mention_n.id), ..newest(20) };
        assert_eq!(page(alice.id, &[], older).await, vec![follow_n.id], "{name}: max_id");
        let newer = Page { min_id: Some(follow_n.id), ..newest(1) };
        assert_eq!(page(alice.id, &[], newer).await, vec![mention_n.id], "{name}: min_id");
        assert_eq!(
            page(alice.id, &["mention", "favourite"], newest(20)).await,
            vec![like_n.id, mention_n.id],
            "{name}: filtered by kind"
        );
        assert_eq!(page(bob.id, &[], newest(20)).await, vec![for_bob.id], "{name}: per account");

        let mut tx = db.begin().await.expect("begin");
        let foreign = notifications::dismiss(&mut tx, bob.id, mention_n.id).await.expect("dismiss");
        let dismissed = notifications::dismiss(&mut tx, alice.id, mention_n.id).await.expect("d");
        let twice = notifications::dismiss(&mut tx, alice.id, mention_n.id).await.expect("d");
        tx.commit().await.expect("commit");
        assert!(!foreign, "{name}: cannot dismiss another account's notification");
        assert!(dismissed, "{name}: dismiss reports the row existed");
        assert!(!twice, "{name}: dismissing twice reports nothing");
        assert_eq!(
            page(alice.id, &[], newest(20)).await,
            vec![like_n.id, follow_n.id],
            "{name}: dismissed one"
        );

        let mut tx = db.begin().await.expect("begin");
        notifications::clear(&mut tx, alice.id).await.expect("clear");
        tx.commit().await.expect("commit");
        assert!(page(alice.id, &[], newest(20)).await.is_empty(), "{name}: cleared");
        assert_eq!(page(bob.id, &[], newest(20)).await, vec![for_bob.id], "{name}: bob's kept");
    }
}

// ---------------------------------------------------------------------------------------------
// Delivery queue

/// Stores an activity by `actor_id` and queues it for `(inbox, domain)` pairs at `now`.
async fn queue(db: &Db, actor_id: i64, inboxes: &[(String, String)], now: i64) -> i64 {
    let mut tx = db.begin().await.expect("begin");
    let ap_id = format!("https://{LOCAL_DOMAIN}/activities/{}", db.next_id());
    let activity = deliveries::insert_activity(&mut tx, &ap_id, actor_id, "{}", now)
        .await
        .expect("insert_activity");
    deliveries::enqueue(&mut tx, activity, inboxes, now).await.expect("enqueue");
    tx.commit().await.expect("commit");
    activity
}

fn inboxes_on(domain: &str, n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("https://{domain}/users/u{i}/inbox"), domain.to_owned())).collect()
}

fn sorted_ids(claimed: &[ClaimedDelivery]) -> Vec<i64> {
    let mut ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn a_claim_resumes_after_a_position_and_a_claim_from_the_start_finds_what_it_passed() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let now = now_ms();
        let lease = now + 60_000;
        let inboxes: Vec<(String, String)> = (0..30)
            .map(|i| {
                let domain = format!("s{i}.example");
                (format!("https://{domain}/inbox"), domain)
            })
            .collect();
        queue(&db, alice.id, &inboxes, now).await;
        // A later activity, due later: it comes after the first one's rows in claim order.
        queue(&db, alice.id, &inboxes[..5], now + 10).await;

        let first = deliveries::claim(&db, now + 10, lease, 10, &[]).await.expect("claim");
        let last = first.iter().map(ClaimedDelivery::position).max().expect("claimed");
        assert_eq!(first.len(), 10, "{name}");
        assert!(
            first.iter().all(|d| d.next_attempt_at == now && d.position() <= last),
            "{name}: the claim order starts with the earliest due"
        );
        // Give two rows back: they stand before `last`, so resuming there passes them.
        let given_back = sorted_ids(&first)[..2].to_vec();
        deliveries::release(&db, &given_back).await.expect("release");

        let resumed = deliveries::claim_after(&db, now + 10, lease, 100, &[], last)
            .await
            .expect("claim_after");
        assert_eq!(resumed.len(), 25, "{name}: the 20 other rows of the first activity, then 5");
        assert!(resumed.iter().all(|d| d.position() > last), "{name}: only rows after `last`");
        assert_eq!(
            resumed.iter().filter(|d| d.next_attempt_at == now + 10).count(),
            5,
            "{name}: the later activity's rows come last"
        );
        let start = deliveries::claim_after(
            &db,
            now + 10,
            lease,
            100,
            &[],
            deliveries::QueuePosition::START,
        )
        .await
        .expect("claim_after");
        assert_eq!(sorted_ids(&start), given_back, "{name}: from the start, the rows given back");
    }
}

#[tokio::test]
async fn delivery_claims_respect_the_limit_and_leases() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let now = now_ms();
        let lease = now + 60_000;
        let inboxes: Vec<(String, String)> = (0..1000)
            .map(|i| {
                let domain = format!("s{}.example", i % 25);
                (format!("https://{domain}/users/u{i}/inbox"), domain)
            })
            .collect();
        let activity = queue(&db, alice.id, &inboxes, now).await;
        assert_eq!(deliveries::status_counts(&db).await.expect("counts"), (1000, 0, 0), "{name}");
        assert_eq!(deliveries::next_due(&db).await.expect("next_due"), Some(now), "{name}");

        let first = deliveries::claim(&db, now, lease, 100, &[]).await.expect("claim");
        assert_eq!(first.len(), 100, "{name}: claim takes at most `limit`");
        assert!(first.iter().all(|d| d.activity_id == activity && d.attempts == 0), "{name}");
        let second = deliveries::claim(&db, now, lease, 100, &[]).await.expect("claim");
        assert_eq!(second.len(), 100, "{name}");
        let rest = deliveries::claim(&db, now + 1, lease, 5000, &[]).await.expect("claim");
        assert_eq!(rest.len(), 800, "{name}: the rest");

        let mut all: Vec<i64> =
            [&first, &second, &rest].iter().flat_map(|c| sorted_ids(c)).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 1000, "{name}: no delivery is claimed twice under a lease");
        let mut claimed_inboxes: Vec<&str> =
            first.iter().chain(&second).chain(&rest).map(|d| d.inbox.as_str()).collect();
        claimed_inboxes.sort_unstable();
        claimed_inboxes.dedup();
        assert_eq!(claimed_inboxes.len(), 1000, "{name}: every inbox claimed once");

        let during =
            deliveries::claim(&db, lease - 1, lease + 60_000, 5000, &[]).await.expect("claim");
        assert!(during.is_empty(), "{name}: leased rows stay with their worker");
        assert_eq!(deliveries::next_due(&db).await.expect("next_due"), Some(lease), "{name}");

        // A worker that died: its lease runs out and the rows come back.
        let after = deliveries::claim(&db, lease, lease + 60_000, 5000, &[]).await.expect("claim");
        assert_eq!(after.len(), 1000, "{name}: expired leases are claimable again");

        // A worker shutting down hands its rows back at once.
        deliveries::release(&db, &sorted_ids(&after)[..10]).await.expect("release");
        let released =
            deliveries::claim(&db, lease, lease + 60_000, 5000, &[]).await.expect("claim");
        assert_eq!(released.len(), 10, "{name}: released rows are claimable");
        assert_eq!(deliveries::status_counts(&db).await.expect("counts"), (1000, 0, 0), "{name}");

        let payloads = deliveries::activities(&db, &[activity]).await.expect("activities");
        assert_eq!(payloads.len(), 1, "{name}");
        assert_eq!(
            (payloads[0].actor_id, payloads[0].payload.as_str()),
            (alice.id, "{}"),
            "{name}"
        );
    }
}

// Several dispatchers (or node processes on one PostgreSQL) claim at once: each row must go
// to exactly one of them. On SQLite the single writer serialises the claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_never_hand_out_a_delivery_twice() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let now = now_ms();
        let inboxes: Vec<(String, String)> = (0..400)
            .map(|i| {
                let domain = format!("s{}.example", i % 10);
                (format!("https://{domain}/users/u{i}/inbox"), domain)
            })
            .collect();
        queue(&db, alice.id, &inboxes, now).await;

        let workers: Vec<_> = (0..8)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = deliveries::claim(&db, now, now + 60_000, 25, &[]).await;
                        let batch = batch.expect("claim");
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.iter().map(|d| d.id));
                    }
                })
            })
            .collect();
        let mut all = Vec::new();
        for worker in workers {
            all.extend(worker.await.expect("claiming worker"));
        }
        let claimed = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), claimed, "{name}: a delivery was handed to two workers");
        assert_eq!(claimed, 400, "{name}: every delivery claimed");
    }
}

#[tokio::test]
async fn claim_skips_servers_whose_window_is_saturated() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let now = now_ms();
        let mut inboxes = inboxes_on("slow.example", 3);
        inboxes.extend(inboxes_on("fast.example", 2));
        queue(&db, alice.id, &inboxes, now).await;
        let skip = vec!["slow.example".to_owned()];
        let claimed = deliveries::claim(&db, now, now + 60_000, 100, &skip).await.expect("claim");
        assert_eq!(claimed.len(), 2, "{name}");
        assert!(
            claimed.iter().all(|d| d.domain == "fast.example"),
            "{name}: saturated server skipped"
        );
        let later = deliveries::claim(&db, now, now + 60_000, 100, &[]).await.expect("claim");
        assert_eq!(later.len(), 3, "{name}: its rows wait in the database, not lost");
    }
}

#[tokio::test]
async fn backed_off_domains_are_skipped_by_claim() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let now = now_ms();
        let mut inboxes = inboxes_on("bad.example", 3);
        inboxes.extend(inboxes_on("good.example", 2));
        queue(&db, alice.id, &inboxes, now).await;

        assert_eq!(
            deliveries::domain_failed(&db, "bad.example").await.expect("failed"),
            1,
            "{name}"
        );
        assert_eq!(
            deliveries::domain_failed(&db, "bad.example").await.expect("failed"),
            2,
            "{name}"
        );
        deliveries::domain_backoff(&db, "bad.example", now + 10_000).await.expect("backoff");

        // The good server's rows stay leased past the backoff, so later claims see bad.example only.
        let claimed = deliveries::claim(&db, now, now + 60_000, 100, &[]).await.expect("claim");
        let domains: Vec<&str> = claimed.iter().map(|d| d.domain.as_str()).collect();
        assert_eq!(domains, vec!["good.example"; 2], "{name}: backed-off server skipped");

        let during =
            deliveries::claim(&db, now + 9_999, now + 20_000, 100, &[]).await.expect("claim");
        assert!(during.is_empty(), "{name}: still backed off");
        let after =
            deliveries::claim(&db, now + 10_000, now + 20_000, 100, &[]).await.expect("claim");
        assert_eq!(after.len(), 3, "{name}: the backoff ends");
        assert!(after.iter().all(|d| d.domain == "bad.example"), "{name}");

        // A delivery recorded as acknowledged resets its server's failure count.
        deliveries::mark_delivered(&db, &[after[0].id], now).await.expect("mark_delivered");
        assert_eq!(
            deliveries::domain_failed(&db, "bad.example").await.expect("failed"),
            1,
            "{name}"
        );
    }
}

#[tokio::test]
async fn backoff_applies_to_a_domain_never_seen_before() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let now = now_ms();
        queue(&db, alice.id, &inboxes_on("fresh.example", 2), now).await;
        // What `federation::delivery::retry` does on a 429 with Retry-After (server_down false).
        deliveries::domain_backoff(&db, "fresh.example", now + 10_000).await.expect("backoff");
        let claimed = deliveries::claim(&db, now, now + 1000, 100, &[]).await.expect("claim");
        assert!(claimed.is_empty(), "{name}: a server that asked us to wait is backed off");
    }
}

#[tokio::test]
async fn delivered_retried_and_failed_deliveries_change_status_counts() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let now = now_ms();
        queue(&db, alice.id, &inboxes_on("remote.example", 4), now).await;
        let claimed = deliveries::claim(&db, now, now + 60_000, 10, &[]).await.expect("claim");
        let [a, b, c, d] = &sorted_ids(&claimed)[..] else { panic!("{name}: four claimed") };

        deliveries::mark_delivered(&db, &[*a, *d], now).await.expect("mark_delivered");
        assert_eq!(deliveries::status_counts(&db).await.expect("counts"), (2, 2, 0), "{name}");

        deliveries::retry_later(&db, *b, 1, now + 5_000, "timed out").await.expect("retry_later");
        deliveries::mark_failed(&db, *c, 7, "410 Gone", now).await.expect("mark_failed");
        assert_eq!(deliveries::status_counts(&db).await.expect("counts"), (1, 2, 1), "{name}");
        assert_eq!(
            deliveries::next_due(&db).await.expect("next_due"),
            Some(now + 5_000),
            "{name}: the retry is what comes due next"
        );

        // The retry's lease is released, but it waits for its time.
        let early =
            deliveries::claim(&db, now + 4_999, now + 60_000, 10, &[]).await.expect("claim");
        assert!(early.is_empty(), "{name}: not before next_attempt_at");
        let due = deliveries::claim(&db, now + 5_000, now + 60_000, 10, &[]).await.expect("claim");
        assert_eq!(due.len(), 1, "{name}: only the retry; delivered and failed rows are done");
        assert_eq!((due[0].id, due[0].attempts), (*b, 1), "{name}: attempts recorded");

        deliveries::mark_delivered(&db, &[*b], now + 5_000).await.expect("mark_delivered");
        assert_eq!(deliveries::status_counts(&db).await.expect("counts"), (0, 3, 1), "{name}");
        assert_eq!(deliveries::next_due(&db).await.expect("next_due"), None, "{name}: idle");
        let none =
            deliveries::claim(&db, now + 600_000, now + 660_000, 10, &[]).await.expect("claim");
        assert!(none.is_empty(), "{name}: nothing left to claim");
    }
}

// ---------------------------------------------------------------------------------------------
// Replay protection, OAuth, key pool

#[tokio::test]
async fn forgotten_and_pruned_ids_can_be_received_again() {
    for (name, db) in backends().await.iter() {
        let (old, new) = ("https://remote.example/a/old", "https://remote.example/a/new");
        let now = now_ms();
        let mut tx = db.begin().await.expect("begin");
        assert!(
            received::insert_if_new(&mut tx, old, now - 10_000).await.expect("insert"),
            "{name}"
        );
        assert!(received::insert_if_new(&mut tx, new, now).await.expect("insert"), "{name}");
        // A handler failed for `new`: its id is forgotten so the sender's retry is processed.
        received::forget(&mut tx, new).await.expect("forget");
        assert_eq!(
            received::prune(&mut tx, now - 5_000).await.expect("prune"),
            1,
            "{name}: only the old id"
        );
        tx.commit().await.expect("commit");
        assert!(!received::seen(&db, old).await.expect("seen"), "{name}");
        assert!(!received::seen(&db, new).await.expect("seen"), "{name}");
    }
}

#[tokio::test]
async fn pruning_keeps_queued_deliveries_and_their_activities() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let now = now_ms();
        let done = queue(&db, alice.id, &inboxes_on("done.example", 2), now - 100_000).await;
        let waiting = queue(&db, alice.id, &inboxes_on("waiting.example", 1), now - 100_000).await;
        let claimed = deliveries::claim(&db, now, now + 60_000, 100, &[]).await.expect("claim");
        let delivered: Vec<i64> =
            claimed.iter().filter(|d| d.activity_id == done).map(|d| d.id).collect();
        deliveries::mark_delivered(&db, &delivered, now - 50_000).await.expect("delivered");
        let mut tx = db.begin().await.expect("begin");
        let removed = deliveries::prune(&mut tx, now - 10_000).await.expect("prune");
        tx.commit().await.expect("commit");
        assert_eq!(removed, 2, "{name}: the two finished deliveries");
        assert_eq!(
            deliveries::status_counts(&db).await.expect("counts"),
            (1, 0, 0),
            "{name}: queued one stays"
        );
        let left = deliveries::activities(&db, &[done, waiting]).await.expect("activities");
        assert_eq!(
            left.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![waiting],
            "{name}: its activity too"
        );
    }
}

#[tokio::test]
async fn received_activity_ids_are_new_only_once() {
    for (name, db) in backends().await.iter() {
        let id = "https://remote.example/activities/1";
        let mut tx = db.begin().await.expect("begin");
        let first = received::insert_if_new(&mut tx, id, now_ms()).await.expect("insert_if_new");
        let second = received::insert_if_new(&mut tx, id, now_ms()).await.expect("insert_if_new");
        tx.commit().await.expect("commit");
        assert!(first, "{name}: first sight is new");
        assert!(!second, "{name}: a replay is not");

        let mut tx = db.begin().await.expect("begin");
        let later = received::insert_if_new(&mut tx, id, now_ms()).await.expect("insert_if_new");
        tx.commit().await.expect("commit");
        assert!(!later, "{name}: not new in a later transaction either");
        assert!(received::seen(&db, id).await.expect("seen"), "{name}");
        let other = "https://remote.example/activities/2";
        assert!(!received::seen(&db, other).await.expect("seen"), "{name}");
    }
}

#[tokio::test]
async fn oauth_tokens_revoke_and_codes_are_taken_once() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let app = AppRow {
            id: db.next_id(),
            client_id: "client-1".to_owned(),
            client_secret: "secret".to_owned(),
            name: "Test app".to_owned(),
            website: None,
            redirect_uris: "urn:ietf:wg:oauth:2.0:oob".to_owned(),
            scopes: "read write".to_owned(),
            created_at: now_ms(),
        };
        let token = TokenRow {
            id: db.next_id(),
            token_hash: "a".repeat(64),
            refresh_hash: Some("b".repeat(64)),
            app_id: Some(app.id),
            account_id: Some(alice.id),
            scopes: "read".to_owned(),
            created_at: now_ms(),
            revoked: false,
        };
        let code = CodeRow {
            code_hash: "c".repeat(64),
            app_id: app.id,
            account_id: alice.id,
            redirect_uri: "urn:ietf:wg:oauth:2.0:oob".to_owned(),
            scopes: "read".to_owned(),
            expires_at: now_ms() + 600_000,
            used: false,
        };
        let mut tx = db.begin().await.expect("begin");
        oauth::insert_app(&mut tx, &app).await.expect("insert_app");
        oauth::insert_token(&mut tx, &token).await.expect("insert_token");
        oauth::insert_code(&mut tx, &code).await.expect("insert_code");
        tx.commit().await.expect("commit");

        let stored = oauth::app_by_client_id(&db, "client-1").await.expect("app_by_client_id");
        assert_eq!(stored.map(|a| a.id), Some(app.id), "{name}");
        let found = oauth::token_by_hash(&db, &token.token_hash).await.expect("token_by_hash");
        let found = found.unwrap_or_else(|| panic!("{name}: token found by hash"));
        assert_eq!((found.id, found.account_id, found.revoked), (token.id, Some(alice.id), false));
        let refresh = oauth::token_by_refresh(&db, "bbb").await.expect("token_by_refresh");
        assert!(refresh.is_none(), "{name}: refresh lookup is exact");
        assert!(oauth::token_by_hash(&db, &"d".repeat(64)).await.expect("by_hash").is_none());
        // The account and scopes in one statement; none for an unknown token or an app token.
        let session = actors::by_token_hash(&db, &token.token_hash).await.expect("by_token_hash");
        assert_eq!(session.map(|(a, s)| (a.id, s)), Some((alice.id, "read".to_owned())), "{name}");
        assert!(actors::by_token_hash(&db, &"d".repeat(64)).await.expect("by_token").is_none());
        let app_token = TokenRow {
            id: db.next_id(),
            token_hash: "e".repeat(64),
            refresh_hash: None,
            account_id: None,
            ..token.clone()
        };
        let mut tx = db.begin().await.expect("begin");
        oauth::insert_token(&mut tx, &app_token).await.expect("insert_token");
        tx.commit().await.expect("commit");
        assert!(
            actors::by_token_hash(&db, &app_token.token_hash).await.expect("by_token").is_none(),
            "{name}: an app token names no account"
        );

        let mut tx = db.begin().await.expect("begin");
        oauth::revoke(&mut tx, token.id).await.expect("revoke");
        tx.commit().await.expect("commit");
        assert!(
            oauth::token_by_hash(&db, &token.token_hash).await.expect("by_hash").is_none(),
            "{name}: a revoked token no longer authenticates"
        );
        assert!(
            actors::by_token_hash(&db, &token.token_hash).await.expect("by_token").is_none(),
            "{name}: nor names its account"
        );
        let refresh = token.refresh_hash.as_deref().expect("refresh hash");
        assert!(
            oauth::token_by_refresh(&db, refresh).await.expect("by_refresh").is_none(),
            "{name}: nor refreshes"
        );

        let mut tx = db.begin().await.expect("begin");
        let taken = oauth::take_code(&mut tx, &code.code_hash).await.expect("take_code");
        let again = oauth::take_code(&mut tx, &code.code_hash).await.expect("take_code");
        let unknown = oauth::take_code(&mut tx, &"e".repeat(64)).await.expect("take_code");
        tx.commit().await.expect("commit");
        let taken = taken.unwrap_or_else(|| panic!("{name}: code taken the first time"));
        assert_eq!((taken.app_id, taken.account_id), (app.id, alice.id), "{name}");
        assert!(taken.used, "{name}: the returned code is marked used");
        assert!(again.is_none(), "{name}: a code works once");
        assert!(unknown.is_none(), "{name}: unknown code");

        let mut tx = db.begin().await.expect("begin");
        let later = oauth::take_code(&mut tx, &code.code_hash).await.expect("take_code");
        tx.commit().await.expect("commit");
        assert!(later.is_none(), "{name}: still used in a later transaction");
    }
}

// Two sign-ups at once, with keys to spare: the second must not come away empty-handed
// (it would then generate an RSA key on the request path, which the pool exists to avoid).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_key_takes_both_get_a_pooled_key() {
    let backends = backends().await;
    for (name, db) in backends.iter() {
        let mut tx = db.begin().await.expect("begin");
        for pem in ["key-a", "key-b", "key-c"] {
            keys::push(&mut tx, pem).await.expect("push");
        }
        tx.commit().await.expect("commit");

        let mut first = db.begin().await.expect("begin");
        let taken = keys::take(&mut first).await.expect("take");
        let second = tokio::spawn({
            let db = db.clone();
            async move {
                let mut tx = db.begin().await.expect("begin");
                let key = keys::take(&mut tx).await.expect("take");
                tx.commit().await.expect("commit");
                key
            }
        });
        // PostgreSQL: the second take must finish while the first still holds its row (it
        // skips the row instead of waiting and then finding it gone); a hang is a failure.
        // SQLite has one writer connection, so the second take runs after the first commits.
        let mut first = Some(first);
        if db.backend() == Backend::Sqlite {
            first.take().expect("open").commit().await.expect("commit");
        }
        let other = tokio::time::timeout(std::time::Duration::from_secs(10), second)
            .await
            .unwrap_or_else(|_| panic!("{name}: second take waited on the first"))
            .expect("second sign-up");
        if let Some(first) = first {
            first.commit().await.expect("commit");
        }
        assert_eq!(taken.as_deref(), Some("key-a"), "{name}");
        assert_eq!(other.as_deref(), Some("key-b"), "{name}: the second sign-up gets a key too");
        assert_eq!(keys::len(&db).await.expect("len"), 1, "{name}");
    }
}

#[tokio::test]
async fn key_pool_hands_out_each_key_once_oldest_first() {
    for (name, db) in backends().await.iter() {
        assert_eq!(keys::len(&db).await.expect("len"), 0, "{name}: empty at start");
        let mut tx = db.begin().await.expect("begin");
        for pem in ["key-a", "key-b", "key-c"] {
            keys::push(&mut tx, pem).await.expect("push");
        }
        tx.commit().await.expect("commit");
        assert_eq!(keys::len(&db).await.expect("len"), 3, "{name}");

        let mut tx = db.begin().await.expect("begin");
        let first = keys::take(&mut tx).await.expect("take");
        tx.commit().await.expect("commit");
        assert_eq!(first.as_deref(), Some("key-a"), "{name}: oldest first");
        assert_eq!(keys::len(&db).await.expect("len"), 2, "{name}");

        // A sign-up that rolls back must put its key back.
        let mut tx = db.begin().await.expect("begin");
        let rolled_back = keys::take(&mut tx).await.expect("take");
        tx.rollback().await.expect("rollback");
        assert_eq!(rolled_back.as_deref(), Some("key-b"), "{name}");
        assert_eq!(keys::len(&db).await.expect("len"), 2, "{name}: rollback keeps the key");

        let mut tx = db.begin().await.expect("begin");
        let rest = [
            keys::take(&mut tx).await.expect("take"),
            keys::take(&mut tx).await.expect("take"),
            keys::take(&mut tx).await.expect("take"),
        ];
        tx.commit().await.expect("commit");
        assert_eq!(
            rest,
            [Some("key-b".to_owned()), Some("key-c".to_owned()), None],
            "{name}: each key once, then none"
        );
        assert_eq!(keys::len(&db).await.expect("len"), 0, "{name}: empty again");
    }
}

// ---------------------------------------------------------------------------------------------
// Blocks and mutes

#[tokio::test]
async fn blocks_and_mutes_filter_home_and_notifications_and_list_by_kind() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let carol = local_account(&db, "carol").await;
        let bob = remote_actor(&db, "bob", "remote.example", None).await;
        let dave = remote_actor(&db, "dave", "remote.example", None).await;
        follow(&db, &alice, &bob, true).await;
        follow(&db, &alice, &dave, true).await;
        let from_bob = insert_note(&db, &new_note(&db, &bob, "public")).await;
        let from_dave = insert_note(&db, &new_note(&db, &dave, "public")).await;
        fan_out(&db, &from_bob).await;
        fan_out(&db, &from_dave).await;
        let row = |target: &ActorRow, kind: Kind, hide: bool| BlockRow {
            id: db.next_id(),
            account_id: alice.id,
            target_id: target.id,
            kind: kind.as_str().to_owned(),
            hide_notifications: hide,
            created_at: now_ms(),
        };
        let mut tx = db.begin().await.expect("begin");
        let block = blocks::upsert(&mut tx, &row(&bob, Kind::Block, true)).await.expect("upsert");
        // A mute that keeps notifications, then the same mute again hiding them: one row.
        let mute = blocks::upsert(&mut tx, &row(&dave, Kind::Mute, false)).await.expect("upsert");
        let again = blocks::upsert(&mut tx, &row(&dave, Kind::Mute, true)).await.expect("upsert");
        tx.commit().await.expect("commit");
        assert_eq!((again.id, again.hide_notifications), (mute.id, true), "{name}: repeat mute");

        assert!(home(&db, alice.id, &newest(20)).await.is_empty(), "{name}: both hidden");
        assert_eq!(
            home(&db, carol.id, &newest(20)).await,
            Vec::<i64>::new(),
            "{name}: carol follows neither"
        );
        assert!(blocks::blocks(&db, alice.id, bob.id).await.expect("blocks"), "{name}");
        assert!(!blocks::blocks(&db, alice.id, dave.id).await.expect("blocks"), "{name}: a mute");
        let listed = blocks::page(&db, alice.id, Kind::Block, i64::MAX, 10).await.expect("page");
        assert_eq!(listed.iter().map(|b| b.target_id).collect::<Vec<_>>(), vec![bob.id], "{name}");
        let of = blocks::of(&db, alice.id, &[bob.id, dave.id, carol.id]).await.expect("of");
        assert_eq!(of.len(), 2, "{name}: one block, one mute");
        let of_bob = blocks::of_target(&db, bob.id, 0, 10).await.expect("of_target");
        assert_eq!(of_bob.iter().map(|b| b.id).collect::<Vec<_>>(), vec![block.id], "{name}");

        // Notifications from a blocked or notification-muted account are not stored.
        let mut tx = db.begin().await.expect("begin");
        for from in [&bob, &dave, &carol] {
            let n = NotificationRow {
                id: db.next_id(),
                account_id: alice.id,
                kind: "follow".to_owned(),
                from_actor_id: from.id,
                note_id: None,
                created_at: now_ms(),
            };
            notifications::insert(&mut tx, &n).await.expect("notifications::insert");
        }
        tx.commit().await.expect("commit");
        let got = notifications::page(&db, alice.id, &[], &newest(20)).await.expect("page");
        assert_eq!(
            got.iter().map(|n| n.from_actor_id).collect::<Vec<_>>(),
            vec![carol.id],
            "{name}: only carol's"
        );

        // Lifting them: the notes come back; a second delete finds nothing.
        let mut tx = db.begin().await.expect("begin");
        assert!(blocks::delete(&mut tx, alice.id, bob.id, Kind::Block).await.expect("d").is_some());
        assert!(blocks::delete(&mut tx, alice.id, dave.id, Kind::Mute).await.expect("d").is_some());
        assert!(blocks::delete(&mut tx, alice.id, dave.id, Kind::Mute).await.expect("d").is_none());
        tx.commit().await.expect("commit");
        let mut want = vec![from_bob.id, from_dave.id];
        want.sort_unstable_by(|a, b| b.cmp(a));
        assert_eq!(home(&db, alice.id, &newest(20)).await, want, "{name}: both back");
    }
}

#[tokio::test]
async fn imported_notes_are_found_by_their_old_ids_once_per_author() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let bob = local_account(&db, "bob").await;
        let note = insert_note(&db, &new_note(&db, &alice, "public")).await;
        let old = "https://old.example/users/alice/statuses/1".to_owned();
        let mut tx = db.begin().await.expect("begin");
        notes::set_imported_from(&mut tx, note.id, &old).await.expect("set_imported_from");
        tx.commit().await.expect("commit");
        let found =
            notes::imported(&db, alice.id, &[old.clone(), "https://x.example/2".to_owned()])
                .await
                .expect("imported");
        assert_eq!(found, vec![(old.clone(), note.id, note.ap_id.clone())], "{name}");
        assert!(
            notes::imported(&db, bob.id, std::slice::from_ref(&old))
                .await
                .expect("imported")
                .is_empty(),
            "{name}: bob's are his own"
        );
        // The same old id twice for one author is refused by the database.
        let second = insert_note(&db, &new_note(&db, &alice, "public")).await;
        let mut tx = db.begin().await.expect("begin");
        let clash = notes::set_imported_from(&mut tx, second.id, &old).await;
        assert!(clash.is_err_and(|e| ferry_node::db::is_unique_violation(&e)), "{name}");
        tx.rollback().await.expect("rollback");
    }
}

#[tokio::test]
async fn move_servers_count_followers_per_server_and_come_due_for_resending() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let r1 = remote_actor(&db, "r1", "one.example", Some("https://one.example/inbox")).await;
        let r2 = remote_actor(&db, "r2", "one.example", Some("https://one.example/inbox")).await;
        let r3 = remote_actor(&db, "r3", "two.example", None).await;
        for r in [&r1, &r2, &r3] {
            follow(&db, r, &alice, true).await;
        }
        let target = "https://new.example/users/alice";
        let record = moves::MoveRow {
            id: db.next_id(),
            actor_id: alice.id,
            target_ap_id: target.to_owned(),
            created_at: 1_000,
        };
        let mut tx = db.begin().await.expect("begin");
        moves::insert(&mut tx, &record).await.expect("insert");
        assert_eq!(
            moves::snapshot_servers(&mut tx, record.id, alice.id, 1_000).await.expect("snapshot"),
            2,
            "{name}"
        );
        actors::set_moved_to(&mut tx, alice.id, target).await.expect("set_moved_to");
        follows::delete(&mut tx, r1.id, alice.id).await.expect("delete");
        tx.commit().await.expect("commit");

        let like = format!("{}#moves/%", alice.ap_id);
        let rows = moves::progress(&db, record.id, alice.id, &like).await.expect("progress");
        let got: Vec<(String, i64, i64, i32, i32)> = rows
            .iter()
            .map(|r| (r.domain.clone(), r.followers, r.pending, r.sends, r.delivery))
            .collect();
        assert_eq!(
            got,
            vec![("one.example".to_owned(), 2, 1, 1, -1), ("two.example".to_owned(), 1, 1, 1, -1)],
            "{name}"
        );
        assert_eq!(rows[0].inbox, "https://one.example/inbox", "{name}");

        let hour = 3_600_000;
        let due = |now: i64| {
            let db = db.clone();
            async move {
                let rows = moves::due_resends(&db, 0, now, 6 * hour, 5).await.expect("due_resends");
                rows.into_iter().map(|(_, domain, _, _)| domain).collect::<Vec<_>>()
            }
        };
        assert!(due(1_000 + 5 * hour).await.is_empty(), "{name}: not yet");
        let mut both = due(1_000 + 7 * hour).await;
        both.sort();
        assert_eq!(both, ["one.example", "two.example"], "{name}");
        let mut tx = db.begin().await.expect("begin");
        moves::mark_resent(&mut tx, record.id, "one.example", 1_000 + 7 * hour)
            .await
            .expect("mark");
        tx.commit().await.expect("commit");
        assert_eq!(
            due(1_000 + 8 * hour).await,
            ["two.example"],
            "{name}: one.example waits 12 h now"
        );
    }
}

#[tokio::test]
async fn references_to_a_moved_note_are_repointed_and_its_new_id_remembered() {
    for (name, db) in backends().await.iter() {
        let alice = remote_actor(&db, "alice", "old.example", None).await;
        let carol = local_account(&db, "carol").await;
        let dave = local_account(&db, "dave").await;
        let old = insert_note(&db, &new_note(&db, &alice, "public")).await;
        let new = insert_note(&db, &new_note(&db, &alice, "public")).await;
        let mut reply = new_note(&db, &carol, "public");
        (reply.in_reply_to_id, reply.in_reply_to_ap_id) = (Some(old.id), Some(old.ap_id.clone()));
        let reply = insert_note(&db, &reply).await;
        let mut boost = new_note(&db, &dave, "public");
        boost.reblog_of_id = Some(old.id);
        let boost = insert_note(&db, &boost).await;
        let like = |actor: &ActorRow, note: &NoteRow| FavouriteRow {
            id: db.next_id(),
            ap_id: format!("{}/likes/{}", actor.ap_id, db.next_id()),
            actor_id: actor.id,
            note_id: note.id,
            created_at: now_ms(),
        };
        let mut tx = db.begin().await.expect("begin");
        // carol liked both copies; dave only the old one.
        favourites::insert(&mut tx, &like(&carol, &old)).await.expect("like");
        favourites::insert(&mut tx, &like(&carol, &new)).await.expect("like");
        favourites::insert(&mut tx, &like(&dave, &old)).await.expect("like");
        notes::repoint(&mut tx, &old, &new).await.expect("repoint");
        moves::set_note_move(&mut tx, old.id, None, 1).await.expect("set_note_move");
        moves::set_note_move(&mut tx, old.id, Some(&new.ap_id), 2).await.expect("set_note_move");
        tx.commit().await.expect("commit");
        let reply = notes::by_id(&db, reply.id).await.expect("by_id").expect("reply");
        assert_eq!(
            (reply.in_reply_to_id, reply.in_reply_to_ap_id),
            (Some(new.id), Some(new.ap_id.clone())),
            "{name}"
        );
        let boost = notes::by_id(&db, boost.id).await.expect("by_id").expect("boost");
        assert_eq!(boost.reblog_of_id, Some(new.id), "{name}");
        let mut counts = favourites::counts_of(&db, &[old.id, new.id]).await.expect("counts");
        counts.sort_unstable();
        // dave's like moved; carol's like of the old copy stays there (she liked the new one).
        assert_eq!(counts, vec![(old.id, 1), (new.id, 2)], "{name}");
        assert_eq!(
            moves::note_move(&db, old.id).await.expect("note_move"),
            Some((Some(new.ap_id.clone()), 2)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn counts_of_many_actors_match_the_counts_of_each() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let bob = local_account(&db, "bob").await;
        let carol = remote_actor(&db, "carol", "remote.example", None).await;
        let quiet = local_account(&db, "quiet").await;
        follow(&db, &bob, &alice, true).await;
        follow(&db, &carol, &alice, true).await;
        follow(&db, &alice, &carol, true).await;
        follow(&db, &quiet, &alice, false).await;
        for author in [&alice, &alice, &carol] {
            insert_note(&db, &new_note(&db, author, "public")).await;
        }
        let ids = [alice.id, bob.id, carol.id, quiet.id];
        let many = actors::counts_of(&db, &ids).await.expect("counts_of");
        for id in ids {
            let one = actors::counts(&db, id).await.expect("counts");
            let got = many[&id];
            assert_eq!(
                (got.notes, got.followers, got.following),
                (one.notes, one.followers, one.following),
                "{name}: actor {id}"
            );
        }
        assert_eq!(
            (many[&alice.id].notes, many[&alice.id].followers, many[&alice.id].following),
            (2, 2, 1),
            "{name}"
        );
        assert!(actors::counts_of(&db, &[]).await.expect("empty").is_empty());
    }
}

#[tokio::test]
async fn archive_followers_are_listed_once() {
    for (name, db) in backends().await.iter() {
        let alice = local_account(&db, "alice").await;
        let list = |ids: &[&str]| ids.iter().map(|s| (*s).to_owned()).collect::<Vec<String>>();
        let mut tx = db.begin().await.expect("begin");
        let first = moves::add_archive_followers(
            &mut tx,
            alice.id,
            &list(&["https://b.example/u/2", "https://a.example/u/1"]),
        )
        .await
        .expect("add");
        let again = moves::add_archive_followers(
            &mut tx,
            alice.id,
            &list(&["https://a.example/u/1", "https://c.example/u/3"]),
        )
        .await
        .expect("add");
        tx.commit().await.expect("commit");
        assert_eq!((first, again), (2, 1), "{name}: a follower listed twice is kept once");
        assert_eq!(
            moves::archive_followers(&db, alice.id).await.expect("list"),
            list(&["https://a.example/u/1", "https://b.example/u/2", "https://c.example/u/3"]),
            "{name}"
        );
    }
}
