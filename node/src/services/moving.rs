//! Moving house: aliases (`alsoKnownAs`), moving a local account to another (push-mode `Move`),
//! and acting on a `Move` of an account this node's users follow.

use url::Url;

use crate::db::actors::ActorRow;
use crate::db::blocks::Kind;
use crate::db::moves::MoveRow;
use crate::db::notes::{NoteRow, Page};
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::{fetch, outbox, policy};
use crate::ids::now_ms;
use crate::services::{blocks, follows};
use crate::state::AppState;

/// Most aliases an account may list (Misskey's limit; Mastodon and GoToSocial set none).
pub const MAX_ALIASES: usize = 10;
/// How long after a move an account must wait before moving to another account (Mastodon's
/// cooldown: a move costs every follower's server work, and followers must not be traded).
pub const MOVE_COOLDOWN_MS: i64 = 30 * 24 * 3600 * 1000;
/// How long a remote account's accepted move stands: a `Move` to another target inside this
/// window is ignored (Mastodon and GoToSocial use 7 days).
pub const RECEIVED_MOVE_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;
/// Followers carried over per database page.
const PAGE: i64 = 200;

/// Finds the actor an alias or move target names: an actor URL, or `@user@host` / `user@host`.
/// `fresh` fetches a remote actor again, as a move must see the document as it is now.
async fn resolve(state: &AppState, raw: &str, fresh: bool) -> AppResult<ActorRow> {
    let raw = raw.trim();
    if raw.starts_with("http://") || raw.starts_with("https://") {
        let url =
            Url::parse(raw).map_err(|e| AppError::Invalid(format!("{raw:?} is not a URL: {e}")))?;
        fetch::actor(state, &url, fresh).await
    } else if raw.contains('@') {
        let found = fetch::resolve_handle(state, raw.trim_start_matches('@')).await?;
        if fresh && !found.is_local {
            let url = Url::parse(&found.ap_id).map_err(|e| AppError::Other(e.into()))?;
            return fetch::actor(state, &url, true).await;
        }
        Ok(found)
    } else {
        Err(AppError::Invalid(format!("{raw:?} is neither an actor URL nor a user@host handle")))
    }
}

/// Replaces `actor`'s aliases with `aliases` (actor URLs or handles; at most [`MAX_ALIASES`])
/// and tells its followers with `Update(Person)`. An alias whose server does not answer is
/// kept as given when it is a URL: the old server may be gone for good, and an alias to it
/// is what a move from a lost server starts from.
pub async fn set_aliases(
    state: &AppState,
    actor: &ActorRow,
    aliases: &[String],
) -> AppResult<ActorRow> {
    ensure_not_moved(actor)?;
    let wanted: Vec<&str> = aliases.iter().map(|a| a.trim()).filter(|a| !a.is_empty()).collect();
    if wanted.len() > MAX_ALIASES {
        return Err(AppError::Invalid(format!(
            "at most {MAX_ALIASES} aliases, got {}",
            wanted.len()
        )));
    }
    let mut ids: Vec<String> = Vec::with_capacity(wanted.len());
    for raw in wanted {
        let id = match resolve(state, raw, false).await {
            Ok(found) => found.ap_id,
            Err(e) => match Url::parse(raw) {
                Ok(url) if matches!(e, AppError::Remote(_)) => {
                    crate::federation::client::check_target(&url, state.config.dev_http)?;
                    url.to_string()
                }
                _ => return Err(AppError::Invalid(format!("alias {raw:?}: {e}"))),
            },
        };
        if id == actor.ap_id {
            return Err(AppError::Invalid("an account cannot be an alias of itself".to_owned()));
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let json = serde_json::to_string(&ids).map_err(|e| AppError::Other(e.into()))?;
    let mut tx = state.db.begin().await?;
    let row = db::actors::set_aliases(&mut tx, actor.id, &json).await?;
    outbox::person_updated(&mut tx, state, &row).await?;
    tx.commit().await?;
    state.delivery_wake.notify_one();
    Ok(row)
}

/// Refuses changes to an account that has moved: it stays readable, and its owner may only
/// re-send the move.
pub fn ensure_not_moved(actor: &ActorRow) -> AppResult<()> {
    match &actor.moved_to {
        Some(to) => {
            Err(AppError::Forbidden(format!("this account has moved to {to} and is read-only")))
        }
        None => Ok(()),
    }
}

/// Moves the local account `actor` to `target` (an actor URL or handle): the target, fetched
/// fresh, must list `actor` in its `alsoKnownAs`. Sends `Update(Person)` with `movedTo` and
/// then `Move` to every follower's server, and moves this node's own followers at once.
/// Moving again to the same target re-sends the move (for followers whose servers missed it);
/// moving to another target waits [`MOVE_COOLDOWN_MS`] after the last move.
pub async fn move_account(state: &AppState, actor: &ActorRow, target: &str) -> AppResult<ActorRow> {
    if !actor.is_local {
        return Err(AppError::Invalid(format!("{} is not a local account", actor.ap_id)));
    }
    let target = resolve(state, target, true).await?;
    if target.id == actor.id {
        return Err(AppError::Invalid("an account cannot move to itself".to_owned()));
    }
    policy::allows_actor(&target)?;
    if target.deleted_at.is_some() {
        return Err(AppError::Invalid(format!("{} has been deleted", target.ap_id)));
    }
    if let Some(elsewhere) = &target.moved_to {
        return Err(AppError::Invalid(format!(
            "{} has itself moved to {elsewhere}; move there instead",
            target.ap_id
        )));
    }
    if !target.aliases().iter().any(|a| a == &actor.ap_id) {
        return Err(AppError::Invalid(format!(
            "{} does not list {} as an alias (alsoKnownAs); add the alias on the new account first",
            target.ap_id, actor.ap_id
        )));
    }
    let now = now_ms();
    let resend = actor.moved_to.as_deref() == Some(target.ap_id.as_str());
    if !resend && let Some(last) = db::moves::latest(&state.db, actor.id).await? {
        let wait = last.created_at + MOVE_COOLDOWN_MS - now;
        if wait > 0 {
            return Err(AppError::RateLimited(format!(
                "this account moved less than 30 days ago; it can move again in {} days",
                (wait + 86_399_999) / 86_400_000
            )));
        }
    }
    // A re-sent move counts towards the first one's progress; a new one starts its own.
    let (record, is_new) = match db::moves::latest(&state.db, actor.id).await? {
        Some(last) if resend && last.target_ap_id == target.ap_id => (last, false),
        _ => {
            let id = state.db.next_id();
            (
                MoveRow {
                    id,
                    actor_id: actor.id,
                    target_ap_id: target.ap_id.clone(),
                    created_at: now,
                },
                true,
            )
        }
    };
    let mut tx = state.db.begin().await?;
    if is_new {
        db::moves::insert(&mut tx, &record).await?;
    }
    db::moves::snapshot_servers(&mut tx, record.id, actor.id, now).await?;
    let moved = db::actors::set_moved_to(&mut tx, actor.id, &target.ap_id).await?;
    // The profile with `movedTo` first, so a server that checks the old account sees it moved.
    outbox::person_updated(&mut tx, state, &moved).await?;
    outbox::moved(&mut tx, state, &moved, &target, true, []).await?;
    tx.commit().await?;
    state.delivery_wake.notify_one();
    tracing::info!(from = %moved.ap_id, to = %target.ap_id, resend, "account moved");
    carry_followers(state, &moved, &target).await?;
    carry_blocks(state, &moved, &target).await?;
    Ok(moved)
}

/// A remote account `old` announced (in a verified push-mode `Move`) that it moved to
/// `target`. Both are fetched fresh; the move stands only if `target` lists `old` in its
/// `alsoKnownAs`, `old` does not name another account in `movedTo`, and neither is suspended,
/// deleted or (the target) moved on. Returns `false` for a repeat this node ignores.
pub async fn receive_move(state: &AppState, old: &Url, target: &Url) -> AppResult<bool> {
    if old == target {
        return Err(AppError::Invalid("an account cannot move to itself".to_owned()));
    }
    let old = fetch::actor(state, old, true).await?;
    let target = fetch::actor(state, target, true).await?;
    accept_move(state, old, target).await
}

/// A pull-mode `Move` (FEP-7628), sent by the new account `target` for the old account `old`
/// with an integrity proof (`document`, as received). It stands when the proof verifies with
/// a `did:key` that both accounts proved to hold (FEP-c390): the target, fetched fresh, and the
/// old account, fetched fresh if its server still answers, else as this node stored it. Then
/// the same checks and effects as a push-mode move.
pub async fn receive_pull_move(
    state: &AppState,
    old: &Url,
    target: &Url,
    document: &serde_json::Value,
) -> AppResult<bool> {
    if old == target {
        return Err(AppError::Invalid("an account cannot move to itself".to_owned()));
    }
    let did = ferry_protocol::identity::verify(document)
        .map_err(|e| AppError::Forbidden(format!("the Move's proof: {e}")))?;
    let target = fetch::actor(state, target, true).await?;
    if target.identity_did.as_deref() != Some(did.as_str()) {
        return Err(AppError::Forbidden(format!(
            "the Move is proved by {did}, which {} does not prove to hold",
            target.ap_id
        )));
    }
    let old = match fetch::actor(state, old, true).await {
        Ok(fresh) => fresh,
        Err(e) => db::actors::by_ap_id(&state.db, old.as_str()).await?.ok_or_else(|| {
            AppError::Forbidden(format!(
                "{old} cannot be fetched ({e}) and this node never stored it, so nothing shows it is {did}"
            ))
        })?,
    };
    if old.identity_did.as_deref() != Some(did.as_str()) {
        return Err(AppError::Forbidden(format!("{} never proved to hold {did}", old.ap_id)));
    }
    accept_move(state, old, target).await
}

/// The checks every received move passes, and what it then does (see `receive_move`).
async fn accept_move(state: &AppState, old: ActorRow, target: ActorRow) -> AppResult<bool> {
    if old.is_local {
        return Err(AppError::Forbidden(format!(
            "{} is local; it moves through this node",
            old.ap_id
        )));
    }
    for side in [&old, &target] {
        policy::allows_actor(side)?;
        if side.deleted_at.is_some() {
            return Err(AppError::Invalid(format!("{} has been deleted", side.ap_id)));
        }
    }
    if !target.aliases().iter().any(|a| a == &old.ap_id) {
        return Err(AppError::Forbidden(format!(
            "{} does not list {} in alsoKnownAs",
            target.ap_id, old.ap_id
        )));
    }
    if let Some(to) = old.moved_to.as_deref()
        && to != target.ap_id
    {
        return Err(AppError::Forbidden(format!(
            "{} says it moved to {to}, not to {}",
            old.ap_id, target.ap_id
        )));
    }
    if let Some(to) = &target.moved_to {
        return Err(AppError::Forbidden(format!("{} has itself moved to {to}", target.ap_id)));
    }
    let now = now_ms();
    let last = db::moves::latest(&state.db, old.id).await?;
    match &last {
        Some(last)
            if last.target_ap_id != target.ap_id
                && now - last.created_at < RECEIVED_MOVE_WINDOW_MS =>
        {
            tracing::info!(from = %old.ap_id, to = %target.ap_id, "ignoring a second move within 7 days");
            return Ok(false);
        }
        _ => {}
    }
    let mut tx = state.db.begin().await?;
    if last.as_ref().is_none_or(|l| l.target_ap_id != target.ap_id) {
        let record = MoveRow {
            id: state.db.next_id(),
            actor_id: old.id,
            target_ap_id: target.ap_id.clone(),
            created_at: now,
        };
        db::moves::insert(&mut tx, &record).await?;
    }
    let old = db::actors::set_moved_to(&mut tx, old.id, &target.ap_id).await?;
    tx.commit().await?;
    tracing::info!(from = %old.ap_id, to = %target.ap_id, "remote account moved");
    // A popular account has many followers here; the sender need not wait for all of them.
    // A crash part-way is finished by the next `Move` (a re-sent one is processed again).
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = carry_followers(&state, &old, &target).await {
            tracing::warn!(error = %e, from = %old.ap_id, "moving followers failed part-way");
        }
        if let Err(e) = carry_blocks(&state, &old, &target).await {
            tracing::warn!(error = %e, from = %old.ap_id, "moving blocks and mutes failed part-way");
        }
        match repoint_notes(&state, &old, &target).await {
            Ok(n) if n > 0 => {
                tracing::info!(from = %old.ap_id, notes = n, "re-pointed references to moved notes");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, from = %old.ap_id, "re-pointing moved notes failed part-way");
            }
        }
    });
    Ok(true)
}

/// Every local follower of `old` follows `target` (a request where it is locked) and stops
/// following `old`. Safe to run again: a follower already moved is not followed twice.
async fn carry_followers(state: &AppState, old: &ActorRow, target: &ActorRow) -> AppResult<usize> {
    let mut after = 0;
    let mut moved = 0;
    loop {
        let page = db::follows::local_followers(&state.db, old.id, after, PAGE).await?;
        let Some(&(last, _)) = page.last() else { break };
        after = last;
        let ids: Vec<i64> = page.iter().map(|&(_, follower)| follower).collect();
        for follower in db::actors::by_ids(&state.db, &ids).await? {
            if follower.id != target.id {
                follows::follow(state, &follower, target).await?;
            }
            follows::unfollow(state, &follower, old).await?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// Local accounts' blocks and mutes of `old` apply to `target` too, unless the account already
/// follows `target` (it chose to, after the move). Safe to run again.
async fn carry_blocks(state: &AppState, old: &ActorRow, target: &ActorRow) -> AppResult<()> {
    let mut after = 0;
    loop {
        let page = db::blocks::of_target(&state.db, old.id, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        let ids: Vec<i64> = page.iter().map(|b| b.account_id).collect();
        let accounts = db::actors::by_ids(&state.db, &ids).await?;
        for row in &page {
            let Some(account) = accounts.iter().find(|a| a.id == row.account_id && a.is_local)
            else {
                continue;
            };
            if account.id == target.id
                || db::follows::by_pair(&state.db, account.id, target.id)
                    .await?
                    .is_some_and(|f| f.accepted)
            {
                continue;
            }
            if row.kind == Kind::Block.as_str() {
                blocks::block(state, account, target).await?;
            } else {
                blocks::mute(state, account, target, row.hide_notifications).await?;
            }
        }
    }
    Ok(())
}

/// How many times, at most, a Move is sent to one server, and the pause before the first
/// re-sending (doubled each time after): 6 h, 12 h, 24 h, 48 h.
pub const MAX_SENDS: i32 = 5;
const RESEND_PAUSE_MS: i64 = 6 * 3600 * 1000;

/// A move's progress, for the user who made it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MoveProgress {
    pub moved_to: String,
    /// When the move was made (RFC 3339).
    pub moved_at: String,
    /// Remote followers when the move was made.
    pub followers: i64,
    /// Of those, how many no longer follow the old account (their servers acted on the move).
    pub moved: i64,
    /// How many still follow the old account.
    pub pending: i64,
    /// How many of the pending are on servers the Move could not be delivered to.
    pub failed: i64,
    pub servers: Vec<ServerMove>,
}

/// One server's part of a move.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServerMove {
    pub domain: String,
    pub followers: i64,
    pub moved: i64,
    pub pending: i64,
    /// `delivered`, `queued`, `failed` or `unknown` (deliveries are pruned after a week).
    pub delivery: &'static str,
    /// How many times the Move was sent there.
    pub sends: i32,
}

/// The progress of `actor`'s last move, or `None` if it never moved.
pub async fn progress(state: &AppState, actor: &ActorRow) -> AppResult<Option<MoveProgress>> {
    let Some(target) = actor.moved_to.clone() else { return Ok(None) };
    let Some(record) = db::moves::latest(&state.db, actor.id).await? else { return Ok(None) };
    let like = format!("{}#moves/%", actor.ap_id);
    let rows = db::moves::progress(&state.db, record.id, actor.id, &like).await?;
    let servers: Vec<ServerMove> = rows
        .into_iter()
        .map(|r| {
            let pending = r.pending.min(r.followers);
            ServerMove {
                moved: r.followers - pending,
                pending,
                followers: r.followers,
                delivery: match r.delivery {
                    1 => "delivered",
                    0 => "queued",
                    2 => "failed",
                    _ => "unknown",
                },
                sends: r.sends,
                domain: r.domain,
            }
        })
        .collect();
    let sum = |f: fn(&ServerMove) -> i64| servers.iter().map(f).sum::<i64>();
    Ok(Some(MoveProgress {
        moved_to: target,
        moved_at: chrono::DateTime::from_timestamp_millis(record.created_at)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default(),
        followers: sum(|s| s.followers),
        moved: sum(|s| s.moved),
        pending: sum(|s| s.pending),
        failed: servers.iter().filter(|s| s.delivery == "failed").map(|s| s.pending).sum(),
        servers,
    }))
}

/// Sends the Move again to servers whose followers have not moved yet (their server missed
/// it, or failed to act), with growing pauses; moves older than the cooldown are left alone.
/// Returns how many servers it was sent to.
pub async fn resend_pending(state: &AppState, now: i64) -> AppResult<usize> {
    let due =
        db::moves::due_resends(&state.db, now - MOVE_COOLDOWN_MS, now, RESEND_PAUSE_MS, MAX_SENDS)
            .await?;
    let mut sent = 0;
    for (record, domain, inbox, _) in due {
        let (Some(actor), Some(target)) = (
            db::actors::by_id(&state.db, record.actor_id).await?,
            db::actors::by_ap_id(&state.db, &record.target_ap_id).await?,
        ) else {
            continue;
        };
        let mut tx = state.db.begin().await?;
        outbox::moved(&mut tx, state, &actor, &target, false, [inbox]).await?;
        db::moves::mark_resent(&mut tx, record.id, &domain, now).await?;
        tx.commit().await?;
        sent += 1;
    }
    if sent > 0 {
        state.delivery_wake.notify_one();
        tracing::info!(servers = sent, "re-sent moves to servers whose followers have not moved");
    }
    Ok(sent)
}

/// How long "the new node does not know this note" stands before it is asked again.
const NOTE_MOVE_RECHECK_MS: i64 = 3600 * 1000;

/// The id a moved local account's note has on the new account's node, if that node imported
/// it: asked of the new node once (`GET {new actor}/imported?from={old id}`, Ferry's), then
/// remembered. `None` for notes of accounts that have not moved, and for notes the new node
/// does not have (or a new node that is not Ferry).
pub async fn moved_note(state: &AppState, note: &NoteRow) -> AppResult<Option<String>> {
    let Some(author) = db::actors::by_id(&state.db, note.author_id).await? else { return Ok(None) };
    let Some(target) = author.moved_to.filter(|_| author.is_local) else { return Ok(None) };
    let now = now_ms();
    if let Some((new, checked_at)) = db::moves::note_move(&state.db, note.id).await?
        && (new.is_some() || now - checked_at < NOTE_MOVE_RECHECK_MS)
    {
        return Ok(new);
    }
    let found = lookup_moved(state, &target, &note.ap_id).await;
    let mut tx = state.db.begin().await?;
    db::moves::set_note_move(&mut tx, note.id, found.as_deref(), now).await?;
    tx.commit().await?;
    Ok(found)
}

/// The public or unlisted note the local account `actor_id` imported with the old id `old`.
pub async fn imported_note(
    state: &AppState,
    actor_id: i64,
    old: &str,
) -> AppResult<Option<NoteRow>> {
    let found = db::notes::imported(&state.db, actor_id, &[old.to_owned()]).await?;
    let Some((_, id, _)) = found.into_iter().next() else { return Ok(None) };
    Ok(db::notes::by_id(&state.db, id).await?.filter(|n| {
        n.deleted_at.is_none() && matches!(n.visibility.as_str(), "public" | "unlisted")
    }))
}

/// Asks the node of `target` (an actor id) where the note `old` went; the answer counts only if
/// it is a note of `target` on its own server. A target on this node is looked up here.
async fn lookup_moved(state: &AppState, target: &str, old: &str) -> Option<String> {
    if let Ok(Some(local)) = db::actors::by_ap_id(&state.db, target).await
        && local.is_local
    {
        return imported_note(state, local.id, old).await.ok()?.map(|n| n.ap_id);
    }
    let mut url = Url::parse(&format!("{target}/imported")).ok()?;
    url.query_pairs_mut().append_pair("from", old);
    let (value, found_at) = match fetch::fetch_json(state, &url).await {
        Ok(found) => found,
        Err(e) => {
            tracing::debug!(note = old, error = %e, "no new id for a moved note");
            return None;
        }
    };
    let is_note = matches!(value["type"].as_str(), Some("Note" | "Article" | "Page" | "Question"));
    (is_note && value["attributedTo"].as_str() == Some(target)).then(|| found_at.to_string())
}

/// Re-points this node's references to `old`'s notes (replies, boosts, likes) at the copies
/// `target` imported, note by note, as far as `target`'s node knows them. Runs after a
/// received move; notes imported later keep the old references.
async fn repoint_notes(state: &AppState, old: &ActorRow, target: &ActorRow) -> AppResult<usize> {
    let mut page = Page { max_id: None, since_id: None, min_id: None, limit: PAGE };
    let mut repointed = 0;
    loop {
        let notes = db::notes::by_author(&state.db, old.id, 0, &page).await?;
        let Some(last) = notes.last() else { break };
        page.max_id = Some(last.id);
        let full = notes.len() as i64 == PAGE;
        for note in notes.iter().filter(|n| n.reblog_of_id.is_none()) {
            let Some(new_id) = lookup_moved(state, &target.ap_id, &note.ap_id).await else {
                continue;
            };
            let Ok(url) = Url::parse(&new_id) else { continue };
            let Ok(fetch::Resolved::Note(new)) = fetch::resolve_url(state, &url).await else {
                continue;
            };
            let mut tx = state.db.begin().await?;
            db::notes::repoint(&mut tx, note, &new).await?;
            tx.commit().await?;
            repointed += 1;
        }
        if !full {
            break;
        }
    }
    Ok(repointed)
}

/// What a pull-mode move was sent to.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PullMove {
    /// Followers listed in the imported archive.
    pub followers: usize,
    /// Servers (inboxes) the `Move` was queued for.
    pub servers: usize,
    /// Followers whose actor could not be fetched (their server is down, or they are gone).
    pub unreachable: usize,
}

/// Moves the followers of `old`, an account whose server may be gone, to the local `actor`
/// (pull mode, FEP-7628): `actor` must list `old` as an alias and hold the identity key `old`
/// proved (taken over from its archive), and the followers come from that archive. Sends
/// `Move {actor: actor, object: old, target: actor}` with a proof by the identity key to each
/// follower's server.
pub async fn move_from(state: &AppState, actor: &ActorRow, old: &str) -> AppResult<PullMove> {
    ensure_not_moved(actor)?;
    let old = Url::parse(old.trim())
        .map_err(|e| AppError::Invalid(format!("{old:?} is not an actor URL: {e}")))?;
    if old.as_str() == actor.ap_id {
        return Err(AppError::Invalid("an account cannot move to itself".to_owned()));
    }
    if !actor.aliases().iter().any(|a| a == old.as_str()) {
        return Err(AppError::Invalid(format!(
            "{old} is not an alias of this account; add it first (POST /api/v1/accounts/alias)"
        )));
    }
    let followers = db::moves::archive_followers(&state.db, actor.id).await?;
    if followers.is_empty() {
        return Err(AppError::Invalid(
            "no followers are listed: import the old account's archive first".to_owned(),
        ));
    }
    let key = crate::services::accounts::identity_key(state, actor).await?;
    let mut inboxes = Vec::new();
    let mut unreachable = 0;
    for follower in &followers {
        let found = match Url::parse(follower) {
            Ok(url) => fetch::actor(state, &url, false).await,
            Err(e) => Err(AppError::Invalid(e.to_string())),
        };
        match found {
            Ok(follower) if !follower.is_local => {
                inboxes.push(follower.delivery_inbox().to_owned());
            }
            Ok(_) => {}
            Err(_) => unreachable += 1,
        }
    }
    inboxes.sort();
    inboxes.dedup();
    let id = crate::urls::activity(&state.config, state.db.next_id());
    let followers_url = actor
        .followers_url
        .clone()
        .unwrap_or_else(|| crate::urls::followers(&state.config, &actor.username).to_string());
    let mut document = serde_json::json!({
        "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/data-integrity/v1"],
        "id": id,
        "type": "Move",
        "actor": actor.ap_id,
        "object": old,
        "target": actor.ap_id,
        "to": [followers_url],
    });
    document["proof"] = key.prove(&document, chrono::Utc::now());
    let mut tx = state.db.begin().await?;
    outbox::enqueue_document(&mut tx, state, actor, &id, &document.to_string(), inboxes.clone())
        .await?;
    tx.commit().await?;
    state.delivery_wake.notify_one();
    tracing::info!(from = %old, to = %actor.ap_id, servers = inboxes.len(), "pull-mode move sent");
    Ok(PullMove { followers: followers.len(), servers: inboxes.len(), unreachable })
}
