//! Local accounts: creation (CLI, sign-up), password checks, the RSA key pool and the
//! instance actor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use ferry_protocol::identity::{IdentityKey, identity_statement};
use ferry_protocol::signatures::PrivateKey;

use crate::config::Config;
use crate::db::accounts::AccountRow;
use crate::db::actors::{ActorRow, NewActor};
use crate::db::{self, Db, Tx};
use crate::error::{AppError, AppResult, FieldError};
use crate::ids::now_ms;
use crate::state::AppState;
use crate::urls;

/// A validated local username: 1-30 of `[a-z0-9_]` (lowercase, as WebFinger lookups are).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Checks and normalises a requested username.
    pub fn parse(raw: &str) -> AppResult<Username> {
        let lower = raw.trim().to_ascii_lowercase();
        let ok = (1..=30).contains(&lower.len())
            && lower.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !ok {
            return Err(AppError::Invalid(format!(
                "invalid username {raw:?}: use 1-30 letters, digits or underscores"
            )));
        }
        Ok(Username(lower))
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What it takes to create a local account.
#[derive(Clone, Debug)]
pub struct CreateAccount {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub admin: bool,
}

/// Hashes a password with Argon2id (default parameters), off the async threads.
pub async fn hash_password(state: &AppState, password: String) -> AppResult<String> {
    hashing(state, move |memory| hash_with(memory, &password)).await?
}

/// Checks a password against a stored hash, off the async threads.
pub async fn password_matches(state: &AppState, hash: String, password: String) -> bool {
    hashing(state, move |memory| matches_with(memory, &hash, &password)).await.unwrap_or(false)
}

/// Runs `f` on a blocking thread with the node's kept Argon2 memory. At most one hash per core
/// runs at once: more cannot go faster, and each holds 19 MiB.
async fn hashing<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&HashMemory) -> T + Send + 'static,
) -> AppResult<T> {
    let _slot = state.hashing.acquire().await.map_err(|e| AppError::Other(e.into()))?;
    let worker = state.clone();
    let result = tokio::task::spawn_blocking(move || f(&worker.hash_memory))
        .await
        .map_err(|e| AppError::Other(e.into()));
    release_hash_memory_later(state);
    result
}

/// Argon2id hash of `password` in PHC form, working in `memory`.
fn hash_with(memory: &HashMemory, password: &str) -> AppResult<String> {
    let failed = |e: &dyn std::fmt::Display| {
        AppError::Other(anyhow::anyhow!("password hashing failed: {e}"))
    };
    let params = Params::default();
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    memory
        .with(&params, |blocks| {
            Argon2::from(&params).hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                &mut out,
                blocks,
            )
        })
        .map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC `hash`, working in `memory`.
fn matches_with(memory: &HashMemory, hash: &str, password: &str) -> bool {
    let check = || -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed.version.map(Version::try_from).transpose().ok()?.unwrap_or_default();
        let params = Params::try_from(&parsed).ok()?;
        let (salt, expected) = (parsed.salt?, parsed.hash?);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).ok()?;
        let mut out = vec![0u8; expected.len()];
        let argon = Argon2::new(algorithm, version, params.clone());
        memory
            .with(&params, |blocks| {
                argon.hash_password_into_with_memory(
                    password.as_bytes(),
                    salt_bytes,
                    &mut out,
                    blocks,
                )
            })
            .ok()?;
        // `Output`'s equality is constant-time.
        Some(Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

/// Argon2 working memory, kept between hashes. Allocating and freeing 19 MiB per hash on
/// short-lived blocking threads left glibc holding about 900 MiB after a sign-up surge (B4);
/// reused buffers keep it at one per concurrent hash. Buffers unused for `HASH_MEMORY_IDLE`
/// are freed, so an idle node does not hold 19 MiB per core for one past sign-up (B7a).
#[derive(Default)]
pub struct HashMemory(std::sync::Mutex<Vec<(Vec<Block>, Instant)>>);

/// How long a kept Argon2 buffer may sit unused before it is freed.
const HASH_MEMORY_IDLE: Duration = Duration::from_secs(3);

impl HashMemory {
    /// Runs `f` with a buffer sized for `params`, reusing a kept one when the size matches
    /// (the node's own parameters); other sizes (hashes imported from elsewhere) get their own.
    fn with<T>(&self, params: &Params, f: impl FnOnce(&mut [Block]) -> T) -> T {
        let wanted = params.block_count();
        let kept = self.0.lock().expect("hash memory lock").pop();
        let mut blocks = match kept {
            Some((blocks, _)) if blocks.len() == wanted => blocks,
            _ => vec![Block::default(); wanted],
        };
        let result = f(&mut blocks);
        if wanted == Params::default().block_count() {
            self.0.lock().expect("hash memory lock").push((blocks, Instant::now()));
        }
        result
    }

    /// Frees the buffers no hash has used for `idle`.
    fn release_idle(&self, idle: Duration) {
        let idle_buffers: Vec<_> = {
            let mut kept = self.0.lock().expect("hash memory lock");
            let (old, fresh) = kept.drain(..).partition(|(_, at)| at.elapsed() >= idle);
            *kept = fresh;
            old
        };
        // Freed outside the lock: returning 19 MiB to the system takes a moment.
        drop(idle_buffers);
    }

    /// How many buffers are kept (for tests).
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.0.lock().expect("hash memory lock").len()
    }
}

/// Frees the hash buffers once they have been idle for `HASH_MEMORY_IDLE`.
fn release_hash_memory_later(state: &AppState) {
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(HASH_MEMORY_IDLE).await;
        state.hash_memory.release_idle(HASH_MEMORY_IDLE);
    });
}

/// Generates an RSA-2048 key off the async threads.
pub async fn generate_key() -> AppResult<PrivateKey> {
    tokio::task::spawn_blocking(PrivateKey::generate)
        .await
        .map_err(|e| AppError::Other(e.into()))?
        .map_err(|e| AppError::Other(anyhow::anyhow!("key generation failed: {e}")))
}

fn local_actor(
    config: &Config,
    id: i64,
    kind: &str,
    username: &str,
    ap_id: String,
    public_key_pem: String,
) -> NewActor {
    let now = now_ms();
    NewActor {
        id,
        kind: kind.to_owned(),
        username: username.to_owned(),
        domain: config.domain.clone(),
        is_local: true,
        display_name: String::new(),
        summary: String::new(),
        inbox_url: urls::inbox(config, username).to_string(),
        shared_inbox_url: Some(urls::shared_inbox(config).to_string()),
        outbox_url: Some(urls::outbox(config, username).to_string()),
        followers_url: Some(urls::followers(config, username).to_string()),
        following_url: Some(urls::following(config, username).to_string()),
        profile_url: Some(urls::profile(config, username).to_string()),
        avatar_url: None,
        header_url: None,
        public_key_id: urls::key_id(&ap_id),
        public_key_pem,
        manually_approves: false,
        discoverable: true,
        also_known_as: "[]".to_owned(),
        moved_to: None,
        ap_id,
        published_at: now,
        fetched_at: now,
        identity_did: None,
    }
}

/// What is wrong with a requested username and password, field by field, as Mastodon reports
/// it to sign-up forms (empty when both are fine).
async fn sign_up_problems(
    state: &AppState,
    username: &str,
    password: &str,
) -> AppResult<Vec<FieldError>> {
    let mut problems = Vec::new();
    let name = username.trim().to_ascii_lowercase();
    if name.is_empty() {
        problems.push(FieldError::new("username", "ERR_BLANK", "can't be blank"));
    } else if name.len() > 30 {
        problems.push(FieldError::new(
            "username",
            "ERR_TOO_LONG",
            "is too long (maximum is 30 characters)",
        ));
    } else if Username::parse(&name).is_err() {
        problems.push(FieldError::new(
            "username",
            "ERR_INVALID",
            "must contain only letters, numbers and underscores",
        ));
    } else if db::actors::by_handle(&state.db, &name, &state.config.domain).await?.is_some() {
        problems.push(FieldError::new("username", "ERR_TAKEN", "has already been taken"));
    }
    if password.is_empty() {
        problems.push(FieldError::new("password", "ERR_BLANK", "can't be blank"));
    } else if password.chars().count() < 8 {
        problems.push(FieldError::new(
            "password",
            "ERR_TOO_SHORT",
            "is too short (minimum is 8 characters)",
        ));
    }
    Ok(problems)
}

/// Creates a local account. The key comes from the pool when one is ready; otherwise the
/// account starts keyless and gets its key in the background (or on first need, see
/// `ensure_key`), so a sign-up costs one Argon2 hash and a few rows, never a key generation.
pub async fn create(state: &AppState, cmd: CreateAccount) -> AppResult<ActorRow> {
    create_reporting(state, cmd, Vec::new()).await
}

/// `create`, for a form that found `problems` of its own (an unaccepted agreement): they are
/// reported with the username's and password's, every problem at once as Mastodon does.
pub async fn create_reporting(
    state: &AppState,
    cmd: CreateAccount,
    mut problems: Vec<FieldError>,
) -> AppResult<ActorRow> {
    problems.extend(sign_up_problems(state, &cmd.username, &cmd.password).await?);
    if !problems.is_empty() {
        return Err(AppError::Validation(problems));
    }
    let username = Username::parse(&cmd.username)?;
    let taken = || {
        AppError::Validation(vec![FieldError::new(
            "username",
            "ERR_TAKEN",
            "has already been taken",
        )])
    };
    let password_hash = hash_password(state, cmd.password).await?;
    let mut tx = state.db.begin().await?;
    let (private_pem, public_pem) = match db::keys::take(&mut tx).await? {
        Some(pem) => {
            let public = PrivateKey::from_pem(&pem)
                .map_err(|e| AppError::Other(anyhow::anyhow!("pooled key unusable: {e}")))?
                .public_key_pem();
            (pem, public)
        }
        None => (String::new(), String::new()),
    };
    let id = state.db.next_id();
    let ap_id = urls::actor(&state.config, username.as_str()).to_string();
    let actor = local_actor(&state.config, id, "Person", username.as_str(), ap_id, public_pem);
    let row = db::actors::upsert(&mut tx, &actor)
        .await
        .map_err(|e| if db::is_unique_violation(&e) { taken() } else { e.into() })?;
    if row.id != id {
        return Err(taken());
    }
    db::accounts::insert(
        &mut tx,
        &AccountRow {
            actor_id: id,
            username: username.as_str().to_owned(),
            password_hash,
            private_key_pem: private_pem,
            is_admin: cmd.admin,
            email: cmd.email,
            created_at: now_ms(),
        },
    )
    .await?;
    // The identity key is cheap (an Ed25519 seed), so every account has one from the start.
    let identity = IdentityKey::generate().map_err(|e| AppError::Other(e.into()))?;
    set_identity(&mut tx, &row, &identity).await?;
    tx.commit().await?;
    state.key_pool_wake.notify_one();
    tracing::info!(actor.ap_id = %row.ap_id, "created local account {}", row.handle());
    Ok(db::actors::by_id(&state.db, row.id).await?.unwrap_or(row))
}

/// Checks a username and password; returns the actor on success.
pub async fn authenticate(state: &AppState, username: &str, password: &str) -> AppResult<ActorRow> {
    let db = &state.db;
    let fail = || AppError::Unauthorized("invalid username or password".to_owned());
    let Some(account) = db::accounts::by_username(db, username).await? else {
        // Hash anyway, so response time does not reveal whether the username exists.
        let _ = password_matches(state, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI".to_owned(), password.to_owned()).await;
        return Err(fail());
    };
    if !password_matches(state, account.password_hash, password.to_owned()).await {
        return Err(fail());
    }
    let actor = db::actors::by_id(db, account.actor_id).await?.ok_or_else(fail)?;
    if actor.suspended || actor.deleted_at.is_some() {
        return Err(AppError::Forbidden("account is suspended".to_owned()));
    }
    Ok(actor)
}

/// The instance actor (`/actor`), created on first start with its own key.
pub async fn ensure_instance_actor(
    config: &Config,
    db: &Db,
) -> anyhow::Result<(ActorRow, Arc<PrivateKey>)> {
    let ap_id = urls::instance_actor(config).to_string();
    if let Some(existing) = db::actors::by_handle(db, INSTANCE_USERNAME, &config.domain).await?
        && existing.ap_id != ap_id
    {
        anyhow::bail!(
            "this database belongs to a node whose instance actor is {}, but the configuration \
                 makes it {ap_id}: check domain and dev_http (FERRY_DOMAIN, FERRY_DEV_HTTP)",
            existing.ap_id
        );
    }
    if let Some(actor) = db::actors::by_ap_id(db, &ap_id).await? {
        let account = db::accounts::by_actor(db, actor.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("instance actor without key"))?;
        let key = PrivateKey::from_pem(&account.private_key_pem)?;
        return Ok((actor, Arc::new(key)));
    }
    let key = generate_key().await?;
    let id = db.next_id();
    let mut actor =
        local_actor(config, id, "Application", INSTANCE_USERNAME, ap_id, key.public_key_pem());
    actor.inbox_url = urls::shared_inbox(config).to_string();
    actor.outbox_url = None;
    actor.followers_url = None;
    actor.following_url = None;
    actor.discoverable = false;
    let mut tx = db.begin().await?;
    let row = db::actors::upsert(&mut tx, &actor).await?;
    db::accounts::insert(
        &mut tx,
        &AccountRow {
            actor_id: row.id,
            username: INSTANCE_USERNAME.to_owned(),
            // Not a valid PHC string: no password ever matches it.
            password_hash: "!".to_owned(),
            private_key_pem: key.to_pem(),
            is_admin: false,
            email: None,
            created_at: now_ms(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((row, Arc::new(key)))
}

/// Username of the instance actor; the dot keeps it out of the user namespace.
pub const INSTANCE_USERNAME: &str = "instance.actor";

/// Stores `key` as the local account's identity key, and its signed identity statement
/// (FEP-c390) on the actor, inside `tx`.
pub async fn set_identity(tx: &mut Tx, actor: &ActorRow, key: &IdentityKey) -> AppResult<()> {
    let seed = base64::engine::general_purpose::STANDARD.encode(key.seed());
    let statement = identity_statement(key, &actor.ap_id, chrono::Utc::now());
    db::accounts::set_identity_seed(tx, actor.id, &seed).await?;
    db::actors::set_identity(tx, actor.id, Some(&key.did()), Some(&statement.to_string())).await?;
    Ok(())
}

/// A local account's identity key, created now for an account made before they existed.
pub async fn identity_key(state: &AppState, actor: &ActorRow) -> AppResult<IdentityKey> {
    if let Some(seed) = db::accounts::identity_seed(&state.db, actor.id).await? {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(seed)
            .map_err(|e| AppError::Other(anyhow::anyhow!("stored identity seed: {e}")))?;
        return IdentityKey::from_seed(&bytes).map_err(|e| AppError::Other(e.into()));
    }
    let key = IdentityKey::generate().map_err(|e| AppError::Other(e.into()))?;
    let mut tx = state.db.begin().await?;
    set_identity(&mut tx, actor, &key).await?;
    tx.commit().await?;
    Ok(key)
}

/// Makes sure a local account has its key, generating it now if it was created keyless.
pub async fn ensure_key(state: &AppState, actor_id: i64) -> AppResult<()> {
    let account = db::accounts::by_actor(&state.db, actor_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no local account {actor_id}")))?;
    if !account.private_key_pem.is_empty() {
        return Ok(());
    }
    // One generation at a time: concurrent callers for the same account (deliveries, actor
    // fetches) wait for the first key instead of each making one (80 ms of CPU apiece).
    let _single = state.keys.generation.lock().await;
    let account = db::accounts::by_actor(&state.db, actor_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no local account {actor_id}")))?;
    if !account.private_key_pem.is_empty() {
        return Ok(());
    }
    let key = generate_key().await?;
    let mut tx = state.db.begin().await?;
    // A concurrent caller may have won; then its key stays and this one is dropped.
    db::accounts::set_key(&mut tx, actor_id, &key.to_pem(), &key.public_key_pem()).await?;
    tx.commit().await?;
    Ok(())
}

/// Keeps `key_pool_size` RSA keys ready, generating one at a time in the background; accounts
/// created while the pool was empty get their keys first.
pub async fn run_key_pool(state: AppState) {
    let mut shutdown = state.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        if let Ok(waiting) = db::accounts::keyless(&state.db, 1).await
            && let Some(actor_id) = waiting.first()
        {
            if let Err(e) = ensure_key(&state, *actor_id).await {
                tracing::warn!(error = %e, "could not give account {actor_id} its key");
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
            continue;
        }
        let have = db::keys::len(&state.db).await.unwrap_or(i64::MAX);
        if (have as usize) < state.config.key_pool_size {
            match generate_key().await {
                Ok(key) => {
                    let stored = async {
                        let mut tx = state.db.begin().await?;
                        db::keys::push(&mut tx, &key.to_pem()).await?;
                        tx.commit().await
                    };
                    if let Err(e) = stored.await {
                        tracing::warn!(error = %e, "could not store a pooled key");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "key generation failed");
                    // Do not spin on a persistent failure.
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                }
            }
            continue;
        }
        tokio::select! {
            _ = state.key_pool_wake.notified() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[test]
    fn usernames_are_checked() {
        assert_eq!(Username::parse("Alice_1").unwrap().as_str(), "alice_1");
        for bad in ["", "a b", "a.b", "ålice", &"x".repeat(31)] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn idle_hash_memory_is_freed_and_busy_memory_kept() {
        let memory = HashMemory::default();
        let hash = hash_with(&memory, "correct horse").expect("hash");
        assert_eq!(memory.kept(), 1, "kept for the next hash");
        memory.release_idle(Duration::from_secs(60));
        assert_eq!(memory.kept(), 1, "used just now: kept");
        assert!(matches_with(&memory, &hash, "correct horse"), "the kept buffer is reused");
        assert_eq!(memory.kept(), 1, "still one buffer, not two");
        memory.release_idle(Duration::ZERO);
        assert_eq!(memory.kept(), 0, "idle: freed");
        assert!(matches_with(&memory, &hash, "correct horse"), "a fresh buffer works too");
    }

    #[test]
    fn hashes_verify_with_the_reference_implementation_and_back() {
        let memory = HashMemory::default();
        let ours = hash_with(&memory, "correct horse").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        assert!(Argon2::default().verify_password(b"wrong horse", &parsed).is_err());

        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let theirs = Argon2::default().hash_password(b"battery staple", &salt).unwrap().to_string();
        assert!(matches_with(&memory, &theirs, "battery staple"));
        assert!(!matches_with(&memory, &theirs, "battery stapler"));
        assert!(!matches_with(&memory, "not a hash", "battery staple"));
        // One buffer, kept for the next hash.
        assert_eq!(memory.kept(), 1);
    }

    #[test]
    fn hashes_with_other_parameters_verify_without_being_kept() {
        let memory = HashMemory::default();
        let params = Params::new(8 * 1024, 1, 1, None).unwrap();
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let other = Argon2::from(&params).hash_password(b"pw", &salt).unwrap().to_string();
        assert!(matches_with(&memory, &other, "pw"));
        assert_eq!(memory.kept(), 0, "odd-sized buffers are not kept");
    }
}

/// A profile change from the client API; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UpdateProfile {
    pub display_name: Option<String>,
    /// Plain text; rendered to HTML (links and hashtags) like a note.
    pub note: Option<String>,
    pub locked: Option<bool>,
    pub discoverable: Option<bool>,
}

/// Changes a local profile and tells remote followers with `Update(Person)`.
pub async fn update_profile(
    state: &AppState,
    actor: &ActorRow,
    cmd: UpdateProfile,
) -> AppResult<ActorRow> {
    if actor.moved_to.is_some() {
        return Err(AppError::Forbidden("this account has moved and is read-only".to_owned()));
    }
    let display_name = match cmd.display_name {
        Some(name) if name.chars().count() > 30 => {
            return Err(AppError::Invalid("display_name is longer than 30 characters".to_owned()));
        }
        Some(name) => name.trim().to_owned(),
        None => actor.display_name.clone(),
    };
    let summary = match cmd.note {
        Some(note) if note.chars().count() > 500 => {
            return Err(AppError::Invalid("note is longer than 500 characters".to_owned()));
        }
        Some(note) => crate::services::content::render(&note, &|_| None, &|tag| {
            urls::tag(&state.config, tag).to_string()
        }),
        None => actor.summary.clone(),
    };
    let update = crate::db::actors::ProfileUpdate {
        display_name,
        summary,
        manually_approves: cmd.locked.unwrap_or(actor.manually_approves),
        discoverable: cmd.discoverable.unwrap_or(actor.discoverable),
    };
    let mut tx = state.db.begin().await?;
    let row = db::actors::update_profile(&mut tx, actor.id, &update).await?;
    crate::federation::outbox::person_updated(&mut tx, state, &row).await?;
    tx.commit().await?;
    state.wake_delivery();
    Ok(row)
}
