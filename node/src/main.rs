//! The `ferry` binary: `serve`, and the admin commands. Parses arguments, loads `Config`,
//! starts logging, and calls into the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use ferry_node::config::{Config, LogFormat};
use ferry_node::services::accounts::CreateAccount;
use ferry_node::{Server, open_files, open_state, services, telemetry};

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: ferry_node::Allocator = ferry_node::Allocator;

#[derive(Parser)]
#[command(name = "ferry", version, about = "A federated social node")]
struct Cli {
    /// Configuration file (every key can also be set as FERRY_<KEY>).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Log as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the node.
    Serve,
    /// Manage local accounts.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Manage access tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create a local account.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        password: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        admin: bool,
    },
    /// Set an account's aliases (alsoKnownAs): the accounts it may move from. Replaces the
    /// list; give none to clear it.
    Alias {
        #[arg(long)]
        username: String,
        /// Actor URLs (or user@host handles) of the other accounts.
        aliases: Vec<String>,
    },
    /// Move the followers of an old account whose server may be gone to this account (pull
    /// mode): needs the old account's archive imported with its passphrase, and the old account
    /// as an alias.
    MoveFrom {
        #[arg(long)]
        username: String,
        /// The old account's actor URL.
        #[arg(long)]
        from: String,
    },
    /// Show how a move is going: followers moved and pending, per server.
    MoveStatus {
        #[arg(long)]
        username: String,
    },
    /// Write an account's archive (notes, media, likes, follows, blocks, mutes) to a zip file
    /// that another Ferry node, or a Mastodon tool, can read.
    Export {
        #[arg(long)]
        username: String,
        #[arg(long)]
        output: PathBuf,
        /// Also put the identity key in the archive, encrypted with this passphrase (needed to
        /// move from this server once it is gone).
        #[arg(long)]
        passphrase: Option<String>,
    },
    /// Import an archive (Ferry's or Mastodon's) or one of Mastodon's CSV lists into an
    /// account. Safe to repeat: nothing is imported twice.
    Import {
        #[arg(long)]
        username: String,
        #[arg(long)]
        input: PathBuf,
        /// `merge` adds to the account's follows, blocks and mutes; `overwrite` also removes
        /// those the lists do not name.
        #[arg(long, default_value = "merge")]
        mode: String,
        /// The archive's passphrase: the account takes over the identity key it carries.
        #[arg(long)]
        passphrase: Option<String>,
    },
    /// Move an account to another one, which must list it as an alias. Its followers follow
    /// the new account; the old one becomes read-only.
    Move {
        #[arg(long)]
        username: String,
        /// The new account: actor URL or user@host.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new bearer token (scopes read write follow push) for an account.
    Create {
        #[arg(long)]
        username: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(e) => {
            // Refused at start, naming the key, before logging exists: stderr is the only channel.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("ferry: {e}");
            }
            std::process::exit(2);
        }
    };
    telemetry::init(if cli.log_json { LogFormat::Json } else { config.log_format });
    match cli.command {
        Command::Serve => {
            let mut config = config;
            if let Some(limit) = open_files::raise_limit() {
                let wanted = config.delivery.max_in_flight;
                let fitted = open_files::fit_in_flight(wanted, limit);
                if fitted < wanted {
                    tracing::warn!(
                        "delivery_max_in_flight lowered from {wanted} to {fitted}: the process may open only {limit} files; raise its limit (ulimit -n, LimitNOFILE=) to keep {wanted}"
                    );
                    config.delivery.max_in_flight = fitted;
                }
            }
            let server = Server::build(config).await?;
            let state = server.state();
            tokio::spawn(async move {
                let ctrl_c = tokio::signal::ctrl_c();
                #[cfg(unix)]
                {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                            .expect("signal handler");
                    tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
                }
                #[cfg(not(unix))]
                let _ = ctrl_c.await;
                ferry_node::shutdown(&state);
            });
            server.run().await
        }
        Command::Account {
            command: AccountCommand::Create { username, password, email, admin },
        } => {
            let state = open_state(config).await?;
            let actor = services::accounts::create(
                &state,
                CreateAccount { username, password, email, admin },
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created {} ({})", actor.handle(), actor.ap_id);
            state.db.close().await;
            Ok(())
        }
        Command::Account { command: AccountCommand::Alias { username, aliases } } => {
            let state = open_state(config).await?;
            let actor = local_account(&state, &username).await?;
            let actor = services::moving::set_aliases(&state, &actor, &aliases)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let list = actor.aliases();
            if list.is_empty() {
                println!("{} has no aliases", actor.handle());
            } else {
                println!("{} is also known as:\n  {}", actor.handle(), list.join("\n  "));
            }
            state.db.close().await;
            Ok(())
        }
        Command::Account { command: AccountCommand::MoveFrom { username, from } } => {
            let state = open_state(config).await?;
            let actor = local_account(&state, &username).await?;
            let sent = services::moving::move_from(&state, &actor, &from)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "move from {from} to {} queued for {} servers ({} followers listed, {} unreachable); the running node delivers it",
                actor.handle(),
                sent.servers,
                sent.followers,
                sent.unreachable
            );
            state.db.close().await;
            Ok(())
        }
        Command::Account { command: AccountCommand::MoveStatus { username } } => {
            let state = open_state(config).await?;
            let actor = local_account(&state, &username).await?;
            let progress = services::moving::progress(&state, &actor)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .with_context(|| format!("{username} has not moved"))?;
            println!(
                "{} moved to {} at {}: {} of {} remote followers moved, {} pending ({} on servers the move could not reach)",
                actor.handle(),
                progress.moved_to,
                progress.moved_at,
                progress.moved,
                progress.followers,
                progress.pending,
                progress.failed
            );
            for s in &progress.servers {
                println!(
                    "  {}: {} of {} moved, {} pending; move {} (sent {} times)",
                    s.domain, s.moved, s.followers, s.pending, s.delivery, s.sends
                );
            }
            state.db.close().await;
            Ok(())
        }
        Command::Account { command: AccountCommand::Export { username, output, passphrase } } => {
            let state = open_state(config).await?;
            let actor = local_account(&state, &username).await?;
            let summary = services::archive::export(&state, &actor, &output, passphrase.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "wrote {} ({} bytes): {} notes, {} boosts, {} media files, {} likes, {} follows, {} followers, {} blocks, {} mutes",
                output.display(),
                summary.bytes,
                summary.notes,
                summary.boosts,
                summary.media,
                summary.likes,
                summary.following,
                summary.followers,
                summary.blocks,
                summary.mutes
            );
            state.db.close().await;
            Ok(())
        }
        Command::Account {
            command: AccountCommand::Import { username, input, mode, passphrase },
        } => {
            let mode = match mode.as_str() {
                "merge" => services::import::Mode::Merge,
                "overwrite" => services::import::Mode::Overwrite,
                other => anyhow::bail!("--mode {other:?}: use merge or overwrite"),
            };
            let state = open_state(config).await?;
            let actor = local_account(&state, &username).await?;
            let name = input.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            let report = if name.ends_with(".csv") {
                let text = std::fs::read_to_string(&input)
                    .with_context(|| format!("reading {}", input.display()))?;
                // Mastodon's names, or GoToSocial's (`following.csv`, `blocks.csv`, …).
                let list = match name.as_str() {
                    n if n.starts_with("follow") => "following_accounts.csv",
                    n if n.starts_with("block") => "blocked_accounts.csv",
                    n if n.starts_with("mute") => "muted_accounts.csv",
                    other => anyhow::bail!(
                        "{other}: name the list following_accounts.csv, blocked_accounts.csv or muted_accounts.csv"
                    ),
                };
                let mut report = services::import::ImportReport::default();
                services::import::import_csv(&state, &actor, list, &text, mode, &mut report)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                report
            } else {
                services::import::import_archive(
                    &state,
                    &actor,
                    &input,
                    mode,
                    passphrase.as_deref(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            };
            println!(
                "imported {} notes ({} already there, {} boosts skipped), {} media files, {} follows, {} blocks, {} mutes; {} unfollowed",
                report.notes_imported,
                report.notes_already_there,
                report.boosts_skipped,
                report.media_imported,
                report.follows,
                report.blocks,
                report.mutes,
                report.unfollowed
            );
            for p in &report.problems {
                println!("  {} row {}: {}: {}", p.file, p.row, p.item, p.error);
            }
            state.db.close().await;
            Ok(())
        }
        Command::Account { command: AccountCommand::Move { username, to } } => {
            let state = open_state(config).await?;
            let actor = local_account(&state, &username).await?;
            let moved = services::moving::move_account(&state, &actor, &to)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{} moved to {}; the running node delivers the move to its followers' servers",
                moved.handle(),
                moved.moved_to.unwrap_or_default()
            );
            state.db.close().await;
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { username } } => {
            let state = open_state(config).await?;
            let token = services::tokens::create_for(&state, &username)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("creating token")?;
            println!("{token}");
            state.db.close().await;
            Ok(())
        }
    }
}

/// The local account `username`, or an error that names it.
async fn local_account(
    state: &ferry_node::state::AppState,
    username: &str,
) -> anyhow::Result<ferry_node::db::actors::ActorRow> {
    let account = ferry_node::db::accounts::by_username(&state.db, username)
        .await?
        .with_context(|| format!("no local account {username:?}"))?;
    ferry_node::db::actors::by_id(&state.db, account.actor_id)
        .await?
        .with_context(|| format!("account {username:?} has no actor"))
}
