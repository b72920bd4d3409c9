//! Where a moved account's notes went: the copies its new account imported.

use url::Url;

use crate::db::notes::NoteRow;
use crate::db::{self};
use crate::error::AppResult;
use crate::federation::fetch;
use crate::ids::now_ms;
use crate::state::AppState;

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
pub(super) async fn lookup_moved(state: &AppState, target: &str, old: &str) -> Option<String> {
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
