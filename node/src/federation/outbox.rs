//! Building outbound activities and queueing them, inside the caller's transaction.
//!
//! Services call these functions with their open transaction, so an action and the activity
//! announcing it commit together (the transactional outbox): a crash can never leave a post
//! without its `Create` queued, nor a queued `Create` for a post that was rolled back.

use std::collections::BTreeSet;

use activitystreams_kinds::activity::{
    AcceptType, AnnounceType, BlockType, CreateType, DeleteType, FollowType, LikeType, MoveType,
    RejectType, UndoType, UpdateType,
};
use ferry_protocol::activities::{
    Accept, Announce, Block, Create, Delete, Follow, Like, Move, Reject, Undo, UndoObject, Update,
    UpdateObject,
};
use ferry_protocol::context::{PUBLIC, WithContext};
use ferry_protocol::objects::ObjectOrId;
use serde::Serialize;
use url::Url;

use crate::db::actors::ActorRow;
use crate::db::blocks::BlockRow;
use crate::db::follows::FollowRow;
use crate::db::media::MediaRow;
use crate::db::notes::NoteRow;
use crate::db::{self, Tx};
use crate::error::{AppError, AppResult};
use crate::federation::objects::note::{addressing, to_note};
use crate::federation::origin;
use crate::ids::now_ms;
use crate::state::AppState;
use crate::urls;

/// Above this many followers, an activity to them is queued as one deferred fan-out
/// (`db::deliveries::defer_followers`). Below it the deliveries are queued in the action's own
/// transaction: a few milliseconds' work, and delivery can start as soon as it commits.
pub const DEFER_FOLLOWERS_ABOVE: i64 = 1_000;

fn url(s: &str) -> AppResult<Url> {
    Url::parse(s).map_err(|e| AppError::Other(anyhow::anyhow!("stored URL {s:?}: {e}")))
}

/// Stores `activity` once and queues one delivery per distinct remote inbox: the remote
/// followers of `followers_of` (read by the database straight into the queue, so a post to
/// 50,000 followers never holds their inboxes in memory; past `DEFER_FOLLOWERS_ABOVE`, by the
/// delivery worker after the commit) and the `inboxes` named besides.
pub async fn enqueue<A: Serialize>(
    tx: &mut Tx,
    state: &AppState,
    actor: &ActorRow,
    ap_id: &Url,
    activity: A,
    followers_of: Option<i64>,
    inboxes: impl IntoIterator<Item = String>,
) -> AppResult<()> {
    let targets = remote_targets(state, inboxes);
    if targets.is_empty() && followers_of.is_none() {
        return Ok(());
    }
    let payload = serde_json::to_string(&WithContext::new(activity))
        .map_err(|e| AppError::Other(e.into()))?;
    enqueue_payload(tx, state, actor, ap_id, &payload, followers_of, targets).await
}

/// `enqueue` for an activity already serialised, `@context` included (one that carries an
/// integrity proof over its exact JSON).
pub async fn enqueue_document(
    tx: &mut Tx,
    state: &AppState,
    actor: &ActorRow,
    ap_id: &Url,
    payload: &str,
    inboxes: impl IntoIterator<Item = String>,
) -> AppResult<()> {
    let targets = remote_targets(state, inboxes);
    if targets.is_empty() {
        return Ok(());
    }
    enqueue_payload(tx, state, actor, ap_id, payload, None, targets).await
}

/// The distinct `(inbox, server)` pairs of `inboxes` that are on other servers.
fn remote_targets(
    state: &AppState,
    inboxes: impl IntoIterator<Item = String>,
) -> BTreeSet<(String, String)> {
    let mut targets = BTreeSet::new();
    for inbox in inboxes {
        let Ok(parsed) = Url::parse(&inbox) else { continue };
        let domain = origin(&parsed);
        if domain != state.config.domain && !domain.is_empty() {
            targets.insert((inbox, domain));
        }
    }
    targets
}

async fn enqueue_payload(
    tx: &mut Tx,
    state: &AppState,
    actor: &ActorRow,
    ap_id: &Url,
    payload: &str,
    followers_of: Option<i64>,
    targets: BTreeSet<(String, String)>,
) -> AppResult<()> {
    let now = now_ms();
    let activity_id =
        db::deliveries::insert_activity(tx, ap_id.as_str(), actor.id, payload, now).await?;
    let mut queued = 0;
    let mut deferred = false;
    if let Some(followee) = followers_of {
        // An account with many followers queues one row now, which the delivery worker expands
        // a chunk at a time: the action answers as quickly whatever the number of followers.
        if db::deliveries::follower_count(tx, followee).await? > DEFER_FOLLOWERS_ABOVE {
            db::deliveries::defer_followers(tx, activity_id, followee, now).await?;
            deferred = true;
        } else {
            queued += db::deliveries::enqueue_followers(
                tx,
                activity_id,
                followee,
                &state.config.domain,
                now,
            )
            .await?;
        }
    }
    let targets: Vec<(String, String)> = targets.into_iter().collect();
    queued += db::deliveries::enqueue(tx, activity_id, &targets, now).await?;
    if queued == 0 && !deferred {
        // Nobody remote to tell (a small node's usual post): keep no activity without deliveries.
        db::deliveries::delete_activity(tx, activity_id).await?;
    }
    Ok(())
}

fn inboxes_of(actors: &[ActorRow]) -> Vec<String> {
    actors.iter().filter(|a| !a.is_local).map(|a| a.delivery_inbox().to_owned()).collect()
}

/// Queues `Create(Note)` to remote followers (unless direct) and to mentioned remote actors.
pub async fn note_created(
    tx: &mut Tx,
    state: &AppState,
    note: &NoteRow,
    author: &ActorRow,
    mentioned: &[ActorRow],
    tags: &[String],
    media: &[MediaRow],
) -> AppResult<()> {
    let object = to_note(state, note, author, mentioned, tags, media)?;
    let followers = (note.visibility != "direct").then_some(author.id);
    let id = url(&format!("{}/activity", note.ap_id))?;
    let activity = Create {
        id: id.clone(),
        kind: CreateType::Create,
        actor: url(&author.ap_id)?,
        to: object.to.clone(),
        cc: object.cc.clone(),
        published: object.published,
        object,
    };
    enqueue(tx, state, author, &id, activity, followers, inboxes_of(mentioned)).await
}

/// Queues `Delete` of a note to everyone its `Create` went to.
pub async fn note_deleted(
    tx: &mut Tx,
    state: &AppState,
    note: &NoteRow,
    author: &ActorRow,
    mentioned: &[ActorRow],
) -> AppResult<()> {
    let (to, cc) = addressing(state, author, &note.visibility, mentioned);
    let followers = (note.visibility != "direct").then_some(author.id);
    let id = url(&format!("{}#delete", note.ap_id))?;
    let activity = Delete {
        id: id.clone(),
        kind: DeleteType::Delete,
        actor: url(&author.ap_id)?,
        object: url(&note.ap_id)?,
        to,
        cc,
        published: None,
    };
    enqueue(tx, state, author, &id, activity, followers, inboxes_of(mentioned)).await
}

fn follow_activity(
    follow: &FollowRow,
    follower: &ActorRow,
    followee: &ActorRow,
) -> AppResult<Follow> {
    Ok(Follow {
        id: url(&follow.ap_id)?,
        kind: FollowType::Follow,
        actor: url(&follower.ap_id)?,
        object: url(&followee.ap_id)?,
        to: vec![url(&followee.ap_id)?],
        cc: Vec::new(),
        published: None,
    })
}

/// Queues a `Follow` from a local actor to a remote one.
pub async fn follow(
    tx: &mut Tx,
    state: &AppState,
    follow: &FollowRow,
    follower: &ActorRow,
    followee: &ActorRow,
) -> AppResult<()> {
    let activity = follow_activity(follow, follower, followee)?;
    let id = activity.id.clone();
    enqueue(tx, state, follower, &id, activity, None, [followee.inbox_url.clone()]).await
}

/// Queues `Undo(Follow)`.
pub async fn unfollow(
    tx: &mut Tx,
    state: &AppState,
    follow: &FollowRow,
    follower: &ActorRow,
    followee: &ActorRow,
) -> AppResult<()> {
    let inner = follow_activity(follow, follower, followee)?;
    let id = urls::activity(&state.config, state.db.next_id());
    let activity = Undo {
        id: id.clone(),
        kind: UndoType::Undo,
        actor: url(&follower.ap_id)?,
        object: UndoObject::Follow(inner),
        to: vec![url(&followee.ap_id)?],
        cc: Vec::new(),
        published: None,
    };
    enqueue(tx, state, follower, &id, activity, None, [followee.inbox_url.clone()]).await
}

/// Queues `Accept(Follow)` (`accepted`) or `Reject(Follow)` to a remote follower.
pub async fn answer_follow(
    tx: &mut Tx,
    state: &AppState,
    follow: &FollowRow,
    follower: &ActorRow,
    followee: &ActorRow,
    accepted: bool,
) -> AppResult<()> {
    let inner = follow_activity(follow, follower, followee)?;
    let id = urls::activity(&state.config, state.db.next_id());
    let actor = url(&followee.ap_id)?;
    let to = vec![url(&follower.ap_id)?];
    let inbox = [follower.inbox_url.clone()];
    if accepted {
        let activity = Accept {
            id: id.clone(),
            kind: AcceptType::Accept,
            actor,
            object: ObjectOrId::Object(inner),
            to,
            cc: Vec::new(),
            published: None,
        };
        enqueue(tx, state, followee, &id, activity, None, inbox).await
    } else {
        let activity = Reject {
            id: id.clone(),
            kind: RejectType::Reject,
            actor,
            object: ObjectOrId::Object(inner),
            to,
            cc: Vec::new(),
            published: None,
        };
        enqueue(tx, state, followee, &id, activity, None, inbox).await
    }
}

fn like_activity(
    ap_id: &str,
    actor: &ActorRow,
    note: &NoteRow,
    note_author: &ActorRow,
) -> AppResult<Like> {
    Ok(Like {
        id: url(ap_id)?,
        kind: LikeType::Like,
        actor: url(&actor.ap_id)?,
        object: url(&note.ap_id)?,
        content: None,
        to: vec![url(&note_author.ap_id)?],
        cc: Vec::new(),
        published: None,
    })
}

/// Queues a `Like` (or its `Undo`) to the note's author.
pub async fn like(
    tx: &mut Tx,
    state: &AppState,
    ap_id: &str,
    actor: &ActorRow,
    note: &NoteRow,
    note_author: &ActorRow,
    undo: bool,
) -> AppResult<()> {
    let like = like_activity(ap_id, actor, note, note_author)?;
    let inbox = [note_author.inbox_url.clone()];
    if undo {
        let id = urls::activity(&state.config, state.db.next_id());
        let activity = Undo {
            id: id.clone(),
            kind: UndoType::Undo,
            actor: like.actor.clone(),
            to: like.to.clone(),
            object: UndoObject::Like(like),
            cc: Vec::new(),
            published: None,
        };
        enqueue(tx, state, actor, &id, activity, None, inbox).await
    } else {
        let id = like.id.clone();
        enqueue(tx, state, actor, &id, like, None, inbox).await
    }
}

/// Queues an `Announce` (or its `Undo`) to the booster's followers and the note's author.
pub async fn announce(
    tx: &mut Tx,
    state: &AppState,
    boost: &NoteRow,
    actor: &ActorRow,
    note: &NoteRow,
    note_author: &ActorRow,
    undo: bool,
) -> AppResult<()> {
    let followers = urls::followers_of(&state.config, actor);
    let announce = Announce {
        id: url(&boost.ap_id)?,
        kind: AnnounceType::Announce,
        actor: url(&actor.ap_id)?,
        object: url(&note.ap_id)?,
        to: vec![url(PUBLIC)?],
        cc: vec![url(&note_author.ap_id)?, url(&followers)?],
        published: None,
    };
    let inboxes = [note_author.delivery_inbox().to_owned()];
    if undo {
        let id = urls::activity(&state.config, state.db.next_id());
        let activity = Undo {
            id: id.clone(),
            kind: UndoType::Undo,
            actor: announce.actor.clone(),
            to: announce.to.clone(),
            cc: announce.cc.clone(),
            object: UndoObject::Announce(announce),
            published: None,
        };
        enqueue(tx, state, actor, &id, activity, Some(actor.id), inboxes).await
    } else {
        let id = announce.id.clone();
        enqueue(tx, state, actor, &id, announce, Some(actor.id), inboxes).await
    }
}

/// Queues `Update(Person)` with the actor's current document to its remote followers.
pub async fn person_updated(tx: &mut Tx, state: &AppState, actor: &ActorRow) -> AppResult<()> {
    let person = crate::federation::objects::person::to_person(actor)?;
    let followers = urls::followers_of(&state.config, actor);
    let id = urls::activity(&state.config, state.db.next_id());
    let activity = Update {
        id: id.clone(),
        kind: UpdateType::Update,
        actor: url(&actor.ap_id)?,
        object: UpdateObject::Person(person),
        to: vec![url(PUBLIC)?],
        cc: vec![url(&followers)?],
        published: None,
    };
    enqueue(tx, state, actor, &id, activity, Some(actor.id), []).await
}

/// Queues a push-mode `Move` of the local `actor` to `target` (Mastodon's shape: `actor` and
/// `object` the old account, `id` `<actor>#moves/<n>`, `n` fresh for each sending) to every
/// remote follower's server (`to_followers`) and to `inboxes`.
pub async fn moved(
    tx: &mut Tx,
    state: &AppState,
    actor: &ActorRow,
    target: &ActorRow,
    to_followers: bool,
    inboxes: impl IntoIterator<Item = String>,
) -> AppResult<()> {
    let move_id = state.db.next_id();
    let followers = urls::followers_of(&state.config, actor);
    let id = url(&format!("{}#moves/{move_id}", actor.ap_id))?;
    let activity = Move {
        id: id.clone(),
        kind: MoveType::Move,
        actor: url(&actor.ap_id)?,
        object: url(&actor.ap_id)?,
        target: url(&target.ap_id)?,
        to: vec![url(&followers)?],
        cc: Vec::new(),
        proof: None,
        published: None,
    };
    enqueue(tx, state, actor, &id, activity, to_followers.then_some(actor.id), inboxes).await
}

/// Queues a `Block` (or its `Undo`) of a remote account to its server. The id is the block's
/// row id, so the `Undo` names the same `Block` that was sent.
pub async fn block(
    tx: &mut Tx,
    state: &AppState,
    row: &BlockRow,
    actor: &ActorRow,
    target: &ActorRow,
    undo: bool,
) -> AppResult<()> {
    let block = Block {
        id: urls::activity(&state.config, row.id),
        kind: BlockType::Block,
        actor: url(&actor.ap_id)?,
        object: url(&target.ap_id)?,
        to: vec![url(&target.ap_id)?],
        cc: Vec::new(),
        published: None,
    };
    let inbox = [target.inbox_url.clone()];
    if undo {
        let id = urls::activity(&state.config, state.db.next_id());
        let activity = Undo {
            id: id.clone(),
            kind: UndoType::Undo,
            actor: block.actor.clone(),
            to: block.to.clone(),
            object: UndoObject::Block(block),
            cc: Vec::new(),
            published: None,
        };
        enqueue(tx, state, actor, &id, activity, None, inbox).await
    } else {
        let id = block.id.clone();
        enqueue(tx, state, actor, &id, block, None, inbox).await
    }
}
