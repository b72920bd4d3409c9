//! Aliases: the accounts a local account may move from.

use url::Url;

use crate::db::actors::ActorRow;
use crate::db::{self};
use crate::error::{AppError, AppResult};
use crate::federation::outbox;
use crate::state::AppState;

use super::{MAX_ALIASES, ensure_not_moved, resolve};

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
    state.wake_delivery();
    Ok(row)
}
