-- Ferry schema, SQLite dialect. The PostgreSQL file of the same name is the same schema;
-- BIGSERIAL becomes INTEGER PRIMARY KEY AUTOINCREMENT, a BIGINT primary key becomes INTEGER
-- PRIMARY KEY (the rowid itself, 64-bit: no second index to keep and search), and tables
-- looked up only by a composite or text key are WITHOUT ROWID (the key is the table).
-- Times are BIGINT milliseconds since the Unix epoch on both backends (see ARCHITECTURE.md).
-- Ids of actors, notes, notifications are node-generated, time-ordered 64-bit integers.

CREATE TABLE actors (
    id INTEGER PRIMARY KEY,
    ap_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    username TEXT NOT NULL,
    domain TEXT NOT NULL,
    is_local BOOLEAN NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '',
    inbox_url TEXT NOT NULL,
    shared_inbox_url TEXT,
    outbox_url TEXT,
    followers_url TEXT,
    following_url TEXT,
    profile_url TEXT,
    avatar_url TEXT,
    header_url TEXT,
    public_key_id TEXT NOT NULL,
    public_key_pem TEXT NOT NULL,
    manually_approves BOOLEAN NOT NULL DEFAULT FALSE,
    discoverable BOOLEAN NOT NULL DEFAULT TRUE,
    also_known_as TEXT NOT NULL DEFAULT '[]',
    moved_to TEXT,
    suspended BOOLEAN NOT NULL DEFAULT FALSE,
    published_at BIGINT NOT NULL,
    fetched_at BIGINT NOT NULL,
    deleted_at BIGINT
);
CREATE UNIQUE INDEX actors_handle ON actors (LOWER(username), domain);
CREATE INDEX actors_public_key_id ON actors (public_key_id);

CREATE TABLE accounts (
    actor_id INTEGER PRIMARY KEY REFERENCES actors (id),
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    private_key_pem TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    email TEXT,
    created_at BIGINT NOT NULL
);

-- RSA keys generated ahead of sign-ups, so key generation never sits on a request path.
CREATE TABLE key_pool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    private_key_pem TEXT NOT NULL
);

CREATE TABLE follows (
    id INTEGER PRIMARY KEY,
    ap_id TEXT NOT NULL UNIQUE,
    follower_id BIGINT NOT NULL REFERENCES actors (id),
    followee_id BIGINT NOT NULL REFERENCES actors (id),
    accepted BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (follower_id, followee_id)
);
CREATE INDEX follows_followee ON follows (followee_id, accepted);

CREATE TABLE notes (
    id INTEGER PRIMARY KEY,
    ap_id TEXT NOT NULL UNIQUE,
    author_id BIGINT NOT NULL REFERENCES actors (id),
    is_local BOOLEAN NOT NULL,
    visibility TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT '',
    summary TEXT NOT NULL DEFAULT '',
    sensitive BOOLEAN NOT NULL DEFAULT FALSE,
    language TEXT,
    url TEXT,
    in_reply_to_ap_id TEXT,
    in_reply_to_id BIGINT,
    reblog_of_id BIGINT,
    audience TEXT NOT NULL DEFAULT '[]',
    published_at BIGINT NOT NULL,
    updated_at BIGINT,
    deleted_at BIGINT
);
CREATE INDEX notes_author ON notes (author_id, id);
CREATE INDEX notes_reply ON notes (in_reply_to_id);
CREATE INDEX notes_reply_ap ON notes (in_reply_to_ap_id);
CREATE INDEX notes_reblog ON notes (reblog_of_id);

CREATE TABLE mentions (
    note_id BIGINT NOT NULL REFERENCES notes (id),
    actor_id BIGINT NOT NULL REFERENCES actors (id),
    PRIMARY KEY (note_id, actor_id)
) WITHOUT ROWID;
CREATE INDEX mentions_actor ON mentions (actor_id);

CREATE TABLE note_tags (
    note_id BIGINT NOT NULL REFERENCES notes (id),
    name TEXT NOT NULL,
    PRIMARY KEY (note_id, name)
) WITHOUT ROWID;

CREATE TABLE media (
    id INTEGER PRIMARY KEY,
    owner_id BIGINT NOT NULL REFERENCES actors (id),
    note_id BIGINT REFERENCES notes (id),
    file_name TEXT,
    remote_url TEXT,
    content_type TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    blurhash TEXT,
    width INTEGER,
    height INTEGER,
    position INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX media_note ON media (note_id);

CREATE TABLE favourites (
    id INTEGER PRIMARY KEY,
    ap_id TEXT NOT NULL UNIQUE,
    actor_id BIGINT NOT NULL REFERENCES actors (id),
    note_id BIGINT NOT NULL REFERENCES notes (id),
    created_at BIGINT NOT NULL,
    UNIQUE (actor_id, note_id)
);
CREATE INDEX favourites_note ON favourites (note_id);

-- Home timelines, filled on write: one row per (local account, note) that belongs in its feed.
CREATE TABLE home_feed (
    account_id BIGINT NOT NULL REFERENCES actors (id),
    note_id BIGINT NOT NULL REFERENCES notes (id),
    PRIMARY KEY (account_id, note_id)
) WITHOUT ROWID;

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES actors (id),
    kind TEXT NOT NULL,
    from_actor_id BIGINT NOT NULL REFERENCES actors (id),
    note_id BIGINT REFERENCES notes (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX notifications_account ON notifications (account_id, id);

-- Outbound activities, each stored once; deliveries point at them.
CREATE TABLE activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ap_id TEXT NOT NULL UNIQUE,
    actor_id BIGINT NOT NULL REFERENCES actors (id),
    payload TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- One row per destination inbox. status: 0 queued, 1 delivered, 2 failed for good.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    activity_id BIGINT NOT NULL REFERENCES activities (id),
    inbox TEXT NOT NULL,
    domain TEXT NOT NULL,
    status SMALLINT NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    done_at BIGINT
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_activity ON deliveries (activity_id);

-- Health of remote servers: a server that keeps failing is backed off as a whole.
CREATE TABLE domains (
    domain TEXT PRIMARY KEY,
    failures INTEGER NOT NULL DEFAULT 0,
    backoff_until BIGINT NOT NULL DEFAULT 0,
    last_success_at BIGINT
);

-- Inbound activity ids already processed: a replay changes nothing.
CREATE TABLE received_activities (
    ap_id TEXT PRIMARY KEY,
    received_at BIGINT NOT NULL
) WITHOUT ROWID;

CREATE TABLE oauth_apps (
    id INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    client_secret TEXT NOT NULL,
    name TEXT NOT NULL,
    website TEXT,
    redirect_uris TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- Tokens and codes are stored as SHA-256 hashes, never in clear.
CREATE TABLE oauth_tokens (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    refresh_hash TEXT UNIQUE,
    app_id BIGINT REFERENCES oauth_apps (id),
    account_id BIGINT REFERENCES actors (id),
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE oauth_codes (
    code_hash TEXT PRIMARY KEY,
    app_id BIGINT NOT NULL REFERENCES oauth_apps (id),
    account_id BIGINT NOT NULL REFERENCES actors (id),
    redirect_uri TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used BOOLEAN NOT NULL DEFAULT FALSE
);
