//! `ctct-sync auth …`: connect Constant Contact accounts and look at their tokens.
//!
//! - `login`: authorization code + PKCE; a loopback listener catches the browser's redirect;
//! - `device`: the device flow, for machines without a browser;
//! - `logout`: revokes an account's tokens at the authorization server and forgets them;
//! - `import`: exchanges a refresh token read from stdin (it is spent and rotated at once);
//! - `status`: accounts, scopes, expiry, last refresh and state — never a secret (`--json`:
//!   the same as one JSON document).

use std::borrow::Cow;
use std::io::{Read as _, Write as _};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Subcommand};
use oauth2::{
    AuthorizationCode, CsrfToken, DeviceAuthorizationUrl, PkceCodeChallenge, RedirectUrl, Scope,
    StandardDeviceAuthorizationResponse, TokenResponse,
};
use secrecy::SecretString;
use serde::Serialize;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::api;
use crate::api::budget::BudgetSnapshot;
use crate::api::tokens::{LogoutError, LogoutMode, TokenManager, jwt_expiry};
use crate::cli::json;
use crate::clock::SystemClock;
use crate::config::Settings;
use crate::store::Store;
use crate::store::tokens::{AccountState, NewTokens, StoredAccount};

#[derive(Debug, Args)]
pub struct AuthArgs {
    #[command(subcommand)]
    pub command: AuthCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Authorise an account in a browser (authorization code with PKCE). Prints the URL to
    /// open, waits for the redirect on oauth.redirect_uri, and stores the tokens.
    Login {
        /// Name for the connected account (commands pick it with their `account` field).
        #[arg(long, default_value = "default")]
        account: String,
        /// How long to wait for the browser, in seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Authorise an account with the device flow: prints a code and a URL to open on any
    /// device, then waits for approval.
    Device {
        #[arg(long, default_value = "default")]
        account: String,
    },
    /// Log an account out: revoke its tokens at the authorization server (oauth.revoke_url),
    /// then forget them here. The account then needs `auth login` again; a running daemon
    /// parks its commands meanwhile. If revocation fails, nothing is forgotten.
    Logout {
        /// The account to log out.
        #[arg(long, default_value = "default")]
        account: String,
        /// Do not call the authorization server: only forget the tokens here. They stay
        /// valid at Constant Contact (the refresh token until it goes 180 days unused).
        #[arg(long)]
        local_only: bool,
    },
    /// Read an existing refresh token from stdin, exchange it (it is rotated at once) and
    /// store the new tokens.
    Import {
        #[arg(long, default_value = "default")]
        account: String,
    },
    /// Show connected accounts: state, scopes, token expiry, last refresh. Never a secret.
    Status {
        /// Print one JSON document instead of the table: each account's state, token expiry,
        /// last refresh, generation and scopes, and the day's API budget. Never a token or
        /// secret.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `auth` subcommand.
pub async fn run(settings: &Settings, args: AuthArgs) -> anyhow::Result<()> {
    let store = crate::daemon::open_stores(settings).await?.state;
    let tokens = api::token_manager(settings, store.clone(), Arc::new(SystemClock))?;
    match args.command {
        AuthCommand::Login { account, timeout } => {
            login(settings, &tokens, &account, timeout).await
        }
        AuthCommand::Device { account } => device(settings, &tokens, &account).await,
        AuthCommand::Logout {
            account,
            local_only,
        } => logout(settings, &tokens, &account, local_only).await,
        AuthCommand::Import { account } => import(&tokens, &account).await,
        AuthCommand::Status { json } => status(settings, &tokens, store, json).await,
    }
}

fn scopes(settings: &Settings) -> Vec<Scope> {
    settings
        .oauth
        .scopes
        .split_whitespace()
        .map(|s| Scope::new(s.to_owned()))
        .collect()
}

async fn login(
    settings: &Settings,
    tokens: &TokenManager,
    account: &str,
    timeout: u64,
) -> anyhow::Result<()> {
    let configured = url::Url::parse(&settings.oauth.redirect_uri).context("oauth.redirect_uri")?;
    let host = configured.host_str().unwrap_or("127.0.0.1").to_owned();
    let listener = TcpListener::bind((host.as_str(), configured.port().unwrap_or(80)))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the browser's redirect",
                settings.oauth.redirect_uri
            )
        })?;
    let mut redirect = configured.clone();
    let _ = redirect.set_port(Some(listener.local_addr()?.port()));
    let redirect_url = RedirectUrl::new(redirect.to_string())?;

    let client = tokens.endpoint().oauth_client()?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(scopes(settings))
        .set_pkce_challenge(challenge)
        .set_redirect_uri(Cow::Borrowed(&redirect_url))
        .url();
    println!("Open this URL in a browser to authorise account `{account}`:\n{url}");
    std::io::stdout().flush()?;

    let callback = tokio::time::timeout(Duration::from_secs(timeout), wait_for_redirect(&listener))
        .await
        .map_err(|_| anyhow!("no browser came back within {timeout} s"))??;
    if let Some(error) = callback.error {
        bail!("the authorization server refused: {error}");
    }
    if callback.state.as_deref() != Some(state.secret().as_str()) {
        bail!("the redirect's state does not match the request (possible forgery); nothing stored");
    }
    let code = callback
        .code
        .ok_or_else(|| anyhow!("the redirect carried no code"))?;
    tokens.endpoint().pace_token_request().await;
    let response = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .set_redirect_uri(Cow::Borrowed(&redirect_url))
        .request_async(&tokens.endpoint().token_http())
        .await
        .map_err(|e| anyhow!("the code exchange failed: {}", describe_token_error(&e)))?;
    store_response(tokens, account, &response).await
}

async fn device(settings: &Settings, tokens: &TokenManager, account: &str) -> anyhow::Result<()> {
    // The device flow names the client with a `client_id` parameter (reference §1.3), so
    // the client's credentials go in the form body for this flow.
    let client = tokens
        .endpoint()
        .oauth_client()?
        .set_auth_type(oauth2::AuthType::RequestBody)
        .set_device_authorization_url(DeviceAuthorizationUrl::new(
            settings.oauth.device_authorize_url.clone(),
        )?);
    tokens.endpoint().pace_token_request().await;
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .add_scopes(scopes(settings))
        .request_async(&tokens.endpoint().token_http())
        .await
        .map_err(|e| {
            anyhow!(
                "the device authorization request failed: {}",
                describe_token_error(&e)
            )
        })?;
    match details.verification_uri_complete() {
        Some(complete) => println!(
            "To authorise account `{account}`, open {} (code {} is filled in).",
            complete.secret(),
            details.user_code().secret()
        ),
        None => println!(
            "To authorise account `{account}`, open {} and enter the code {}.",
            details.verification_uri().as_str(),
            details.user_code().secret()
        ),
    }
    std::io::stdout().flush()?;
    let response = client
        .exchange_device_access_token(&details)
        .request_async(&tokens.endpoint().token_http(), tokio::time::sleep, None)
        .await
        .map_err(|e| {
            anyhow!(
                "the device authorization did not complete: {}",
                describe_token_error(&e)
            )
        })?;
    store_response(tokens, account, &response).await
}

async fn logout(
    settings: &Settings,
    tokens: &TokenManager,
    account: &str,
    local_only: bool,
) -> anyhow::Result<()> {
    let mode = if local_only {
        LogoutMode::LocalOnly
    } else {
        LogoutMode::Revoke
    };
    let done = match tokens.logout(account, mode).await {
        Ok(done) => done,
        Err(LogoutError::UnknownAccount { .. }) => {
            let known: Vec<String> = tokens
                .accounts()
                .await?
                .into_iter()
                .map(|row| format!("`{}`", row.account))
                .collect();
            let known = if known.is_empty() {
                "none is".to_owned()
            } else {
                format!(
                    "{} {}",
                    known.join(", "),
                    if known.len() == 1 { "is" } else { "are" }
                )
            };
            bail!("account `{account}` is not known to this store ({known}); nothing to log out");
        }
        Err(error @ LogoutError::Revocation { .. }) => bail!(
            "{error} (at {}); nothing was forgotten: the tokens stay stored and in use. Try \
             again, or run `ctct-sync auth logout --account {account} --local-only` to forget \
             them here without revoking them (they then stay valid at Constant Contact)",
            settings.oauth.revoke_url
        ),
        Err(error) => return Err(error.into()),
    };
    if !done.held_tokens {
        println!("account `{account}` holds no tokens (logged out already); nothing to do");
        return Ok(());
    }
    let again = format!("`ctct-sync auth login --account {account}` connects it again");
    match mode {
        LogoutMode::Revoke => {
            let revoked = match done.revoked.as_slice() {
                [] => "no token needed revoking".to_owned(),
                kinds => format!(
                    "{} revoked at the authorization server",
                    kinds
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            };
            println!("account `{account}` logged out: {revoked}, tokens forgotten; {again}");
        }
        LogoutMode::LocalOnly => {
            println!("account `{account}` logged out here: its tokens are forgotten; {again}");
            eprintln!(
                "warning: the tokens were not revoked: they stay valid at Constant Contact (the \
                 refresh token until it goes 180 days unused) for any copy of them, such as a \
                 backup of the store"
            );
        }
    }
    Ok(())
}

async fn import(tokens: &TokenManager, account: &str) -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the refresh token from stdin")?;
    let token = input.trim();
    if token.is_empty() {
        bail!("no refresh token on stdin");
    }
    tokens
        .import_refresh_token(account, SecretString::from(token.to_owned()))
        .await?;
    report_stored(tokens, account).await
}

async fn store_response(
    tokens: &TokenManager,
    account: &str,
    response: &oauth2::basic::BasicTokenResponse,
) -> anyhow::Result<()> {
    let access = response.access_token().secret().clone();
    let expires_at = jwt_expiry(&access).unwrap_or_else(|| {
        chrono::Utc::now()
            + chrono::Duration::from_std(response.expires_in().unwrap_or(Duration::from_secs(3600)))
                .unwrap_or_default()
    });
    let refresh = response
        .refresh_token()
        .map(|t| SecretString::from(t.secret().clone()));
    if refresh.is_none() {
        bail!(
            "no refresh token was issued: add offline_access to oauth.scopes and authorise again"
        );
    }
    let scopes = response
        .scopes()
        .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    tokens
        .store_grant(
            account,
            NewTokens {
                access_token: SecretString::from(access),
                refresh_token: refresh,
                access_expires_at: expires_at,
                scopes,
            },
        )
        .await?;
    report_stored(tokens, account).await
}

async fn report_stored(tokens: &TokenManager, account: &str) -> anyhow::Result<()> {
    let row = tokens
        .account(account)
        .await?
        .ok_or_else(|| anyhow!("account `{account}` was not stored"))?;
    println!(
        "account `{account}` authorised: scopes [{}], access token valid until {}",
        row.scopes,
        row.access_expires_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "unknown".into())
    );
    Ok(())
}

/// One account's line of `auth status`, and the note printed under it.
struct StatusRow {
    cells: [String; 6],
    note: Option<String>,
}

const STATUS_HEADER: [&str; 6] = [
    "account",
    "state",
    "access token expires",
    "last refresh",
    "gen",
    "scopes",
];

/// The `auth status` table: every column as wide as its widest cell (header included), two
/// spaces between columns, the generation right-aligned, the last column unpadded.
fn status_table(rows: &[StatusRow]) -> Vec<String> {
    let mut widths = STATUS_HEADER.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(&row.cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut out = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let padding = " ".repeat(width - cell.chars().count());
            match index {
                4 => out.push_str(&format!("{padding}{cell}  ")),
                5 => out.push_str(cell),
                _ => out.push_str(&format!("{cell}{padding}  ")),
            }
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(STATUS_HEADER)];
    for row in rows {
        lines.push(line(row.cells.each_ref().map(String::as_str)));
        lines.extend(row.note.clone());
    }
    lines
}

async fn status(
    settings: &Settings,
    tokens: &TokenManager,
    store: Store,
    json: bool,
) -> anyhow::Result<()> {
    let accounts = tokens.accounts().await?;
    if json {
        let today = budget_today(settings, store).await?;
        return json::print(&StatusDocument::of(&accounts, &today));
    }
    if accounts.is_empty() {
        println!("no account is authorised yet; run `ctct-sync auth login`");
    } else {
        let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_else(|| "-".into())
        };
        let rows: Vec<StatusRow> = accounts
            .iter()
            .map(|row| StatusRow {
                cells: [
                    row.account.clone(),
                    match row.state {
                        AccountState::Active => "active".to_owned(),
                        AccountState::ReauthRequired => "reauth_required".to_owned(),
                    },
                    time(row.access_expires_at),
                    time(row.last_refresh_at),
                    row.generation.to_string(),
                    row.scopes.clone(),
                ],
                note: match (row.state, &row.state_reason) {
                    (AccountState::ReauthRequired, Some(reason)) => Some(format!(
                        "  └ {reason}; run `ctct-sync auth login --account {}`",
                        row.account
                    )),
                    _ => None,
                },
            })
            .collect();
        for line in status_table(&rows) {
            println!("{line}");
        }
    }
    let today = budget_today(settings, store).await?;
    println!(
        "API key {}: {} of {} requests left today{} (resets at {})",
        today.client_id,
        today.remaining,
        today.per_day,
        if today.exhausted {
            ", quota exhausted"
        } else {
            ""
        },
        today.resets_at.to_rfc3339()
    );
    Ok(())
}

/// What is left of the configured API key's requests today.
async fn budget_today(settings: &Settings, store: Store) -> anyhow::Result<BudgetSnapshot> {
    let budget = api::RateBudget::new(
        &settings.oauth.client_id,
        api::BudgetSettings::new(
            settings.limits.per_second,
            settings.limits.per_day,
            settings.limits.mirror_share,
        ),
        store,
        Arc::new(SystemClock),
    );
    Ok(budget.snapshot().await?)
}

/// `auth status --json`: every account, then the API key's budget for today. Built field by
/// field from the stored rows, so no token can reach it.
#[derive(Debug, Serialize)]
struct StatusDocument<'a> {
    accounts: Vec<AccountDocument<'a>>,
    api_budget: BudgetDocument<'a>,
}

/// One account of `auth status --json`.
#[derive(Debug, Serialize)]
struct AccountDocument<'a> {
    account: &'a str,
    /// `active` or `reauth_required`.
    state: &'static str,
    /// Why it needs re-authorisation; null when active.
    state_reason: Option<&'a str>,
    /// RFC 3339 UTC, whole seconds; null when unknown.
    access_token_expires_at: Option<String>,
    last_refresh_at: Option<String>,
    /// How many times the tokens were replaced (the table's `gen`).
    generation: i64,
    scopes: Vec<&'a str>,
}

/// The API key's budget for the current UTC day.
#[derive(Debug, Serialize)]
struct BudgetDocument<'a> {
    client_id: &'a str,
    day: String,
    per_day: u32,
    used: u32,
    remaining: u32,
    exhausted: bool,
    resets_at: String,
}

impl<'a> StatusDocument<'a> {
    fn of(accounts: &'a [StoredAccount], today: &'a BudgetSnapshot) -> Self {
        Self {
            accounts: accounts
                .iter()
                .map(|row| AccountDocument {
                    account: &row.account,
                    state: match row.state {
                        AccountState::Active => "active",
                        AccountState::ReauthRequired => "reauth_required",
                    },
                    state_reason: match row.state {
                        AccountState::ReauthRequired => row.state_reason.as_deref(),
                        AccountState::Active => None,
                    },
                    access_token_expires_at: row.access_expires_at.map(json::time),
                    last_refresh_at: row.last_refresh_at.map(json::time),
                    generation: row.generation,
                    scopes: row.scopes.split_whitespace().collect(),
                })
                .collect(),
            api_budget: BudgetDocument {
                client_id: &today.client_id,
                day: today.day.to_string(),
                per_day: today.per_day,
                used: today.used,
                remaining: today.remaining,
                exhausted: today.exhausted,
                resets_at: json::time(today.resets_at),
            },
        }
    }
}

/// A token endpoint error without its raw body (which may hold tokens).
fn describe_token_error<RE: std::error::Error, T: oauth2::ErrorResponse>(
    error: &oauth2::RequestTokenError<RE, T>,
) -> String {
    match error {
        oauth2::RequestTokenError::ServerResponse(response) => response.to_string(),
        oauth2::RequestTokenError::Request(error) => error.to_string(),
        oauth2::RequestTokenError::Parse(error, body) => {
            format!(
                "unreadable answer ({} bytes) at {}",
                body.len(),
                error.path()
            )
        }
        oauth2::RequestTokenError::Other(detail) => detail.clone(),
    }
}

/// What the browser's redirect carried.
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Accepts connections on the loopback listener until one carries the OAuth redirect, and
/// answers it with a short page.
async fn wait_for_redirect(listener: &TcpListener) -> anyhow::Result<Callback> {
    loop {
        let (mut socket, _) = listener.accept().await?;
        let mut buffer = vec![0u8; 8192];
        let mut read = 0;
        while read < buffer.len() {
            let n = socket.read(&mut buffer[read..]).await?;
            if n == 0 {
                break;
            }
            read += n;
            if buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
        let head = String::from_utf8_lossy(&buffer[..read]);
        let target = head
            .lines()
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .unwrap_or("/");
        let url = url::Url::parse(&format!("http://localhost{target}"))?;
        let mut callback = Callback {
            code: None,
            state: None,
            error: None,
        };
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "code" => callback.code = Some(value.into_owned()),
                "state" => callback.state = Some(value.into_owned()),
                "error" => callback.error = Some(value.into_owned()),
                "error_description" => {
                    callback.error =
                        Some(format!("{}: {value}", callback.error.unwrap_or_default()))
                }
                _ => {}
            }
        }
        let found = callback.code.is_some() || callback.error.is_some();
        let page = if found {
            "ctct-sync received the authorization. You can close this tab."
        } else {
            "ctct-sync is waiting for the authorization redirect."
        };
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = socket.write_all(reply.as_bytes()).await;
        let _ = socket.shutdown().await;
        if found {
            return Ok(callback);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(account: &str, state: &str, generation: &str, note: Option<&str>) -> StatusRow {
        StatusRow {
            cells: [
                account.into(),
                state.into(),
                "2026-12-03T10:15:00Z".into(),
                "-".into(),
                generation.into(),
                "contact_data campaign_data offline_access".into(),
            ],
            note: note.map(str::to_owned),
        }
    }

    /// The byte offset where each column starts on a line, found from the header's titles.
    fn column_starts(header: &str) -> Vec<usize> {
        STATUS_HEADER
            .iter()
            .map(|title| header.find(title).expect("every title in the header"))
            .collect()
    }

    #[test]
    fn status_columns_line_up_whatever_the_lengths_of_their_cells() {
        let rows = [
            row("default", "active", "3", None),
            row(
                "a-rather-long-account-name",
                "reauth_required",
                "12345",
                Some("  └ the refresh token was revoked"),
            ),
        ];
        let lines = status_table(&rows);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        let starts = column_starts(&lines[0]);
        for line in [&lines[1], &lines[2]] {
            // Every cell but the right-aligned generation starts under its title, after
            // a separator of at least two spaces.
            for (index, start) in starts.iter().enumerate() {
                if index == 4 {
                    continue;
                }
                assert!(
                    !line[*start..].starts_with(' ') && line[..*start].ends_with("  ")
                        || *start == 0,
                    "column {index} of {line:?} does not start at {start}:\n{}",
                    lines.join("\n")
                );
            }
            // The generation ends where its title ends.
            let gen_end = starts[4] + "gen".len();
            assert!(
                line[..gen_end].ends_with(|c: char| c.is_ascii_digit()),
                "{line:?}"
            );
            assert_eq!(&line[gen_end..gen_end + 2], "  ", "{line:?}");
        }
        assert_eq!(lines[3], "  └ the refresh token was revoked");
        assert!(lines[2].starts_with("a-rather-long-account-name  reauth_required  "));
    }

    fn stored(account: &str, state: AccountState, reason: Option<&str>) -> StoredAccount {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        StoredAccount {
            account: account.into(),
            client_id: "client-1".into(),
            state,
            state_reason: reason.map(str::to_owned),
            refresh_token: Some(SecretString::from("refresh-s3cret")),
            access_token: Some(SecretString::from("access-s3cret")),
            access_expires_at: Some(at("2026-12-03T10:15:00.123Z")),
            scopes: "contact_data  offline_access".into(),
            generation: 4,
            last_refresh_at: None,
            created_at: at("2026-12-01T08:00:00Z"),
        }
    }

    #[test]
    fn status_json_keeps_its_keys_and_carries_no_token() {
        let accounts = [
            stored("default", AccountState::Active, Some("an old reason")),
            stored(
                "eu",
                AccountState::ReauthRequired,
                Some("the refresh token was revoked"),
            ),
        ];
        let today = BudgetSnapshot {
            client_id: "client-1".into(),
            day: chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap(),
            per_day: 10_000,
            used: 12,
            remaining: 9_988,
            exhausted: false,
            resets_at: chrono::DateTime::parse_from_rfc3339("2026-12-04T00:00:00Z")
                .unwrap()
                .to_utc(),
        };
        let document = serde_json::to_value(StatusDocument::of(&accounts, &today)).unwrap();
        assert_eq!(
            document,
            serde_json::json!({
                "accounts": [
                    {
                        "account": "default",
                        "state": "active",
                        "state_reason": null,
                        "access_token_expires_at": "2026-12-03T10:15:00Z",
                        "last_refresh_at": null,
                        "generation": 4,
                        "scopes": ["contact_data", "offline_access"]
                    },
                    {
                        "account": "eu",
                        "state": "reauth_required",
                        "state_reason": "the refresh token was revoked",
                        "access_token_expires_at": "2026-12-03T10:15:00Z",
                        "last_refresh_at": null,
                        "generation": 4,
                        "scopes": ["contact_data", "offline_access"]
                    }
                ],
                "api_budget": {
                    "client_id": "client-1",
                    "day": "2026-12-03",
                    "per_day": 10000,
                    "used": 12,
                    "remaining": 9988,
                    "exhausted": false,
                    "resets_at": "2026-12-04T00:00:00Z"
                }
            })
        );
        let text = document.to_string();
        assert!(!text.contains("s3cret"), "{text}");
    }
}
