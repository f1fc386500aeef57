//! OAuth2 tokens per connected account, kept in SQLite and refreshed safely.
//!
//! Constant Contact's refresh tokens rotate: each works once, and presenting a used one
//! revokes the whole grant (shared/reference/constant-contact-v3.md §1.4, §12.2). So:
//! - only one refresh per account runs at a time: an async mutex inside the process and a
//!   lease row in SQLite (taken in a `BEGIN IMMEDIATE` transaction) across processes;
//! - before refreshing, the stored row is re-read: if someone else refreshed meanwhile, their
//!   token is used instead of spending ours;
//! - the refresh call and the commit of its result run in a spawned task, so a caller that is
//!   cancelled (shutdown, timeout) cannot drop the new refresh token on the floor; the new
//!   refresh token is committed (synchronous=FULL) before the new access token is handed out;
//! - a reply that may have been lost (timeout, reset, 5xx) is retried once with the same
//!   refresh token; `invalid_grant` puts the account into `reauth_required`, where its work
//!   waits for a person instead of burning requests, and an event tells the pipeline;
//! - an access token held in memory is checked against the stored account every
//!   `recheck_stored`, so an account logged out from another process (`auth logout`) stops
//!   being used even when the server never refuses its token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::broadcast;

mod config;
mod error;
mod exchange;
mod logout;
mod revoke;

pub use config::OAuthConfig;
pub use error::AuthError;
pub(crate) use exchange::{Exchange, TokenEndpoint};
pub use exchange::{TokenHttpError, jwt_expiry};
pub use logout::{LoggedOut, LogoutError, LogoutMode};
pub use revoke::{RevokeError, TokenKind};

use crate::clock::Clock;
use crate::store::Store;
use crate::store::tokens::{AccountState, NewTokens, StoredAccount};

/// Something the pipeline and health checks want to know about an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    ReauthRequired { account: String, reason: String },
    Authorised { account: String },
}

/// An access token ready for a request. `generation` tells which stored grant it came from,
/// so that a 401 refreshes only if nobody has refreshed since.
#[derive(Clone)]
pub struct AccessToken {
    value: SecretString,
    pub generation: i64,
    pub expires_at: DateTime<Utc>,
}

impl AccessToken {
    /// The bearer value, for the Authorization header only.
    pub fn bearer(&self) -> &str {
        self.value.expose_secret()
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("generation", &self.generation)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An access token held in memory, and when the stored account was last read for it.
#[derive(Clone)]
struct Cached {
    token: AccessToken,
    read_at: DateTime<Utc>,
}

#[derive(Default)]
struct AccountSlot {
    refresh: tokio::sync::Mutex<()>,
    cached: Mutex<Option<Cached>>,
    /// This process saw the account needing re-authorisation; when it finds the account
    /// authorised again (by `auth import` or `auth login` in another process), it says so.
    lost: std::sync::atomic::AtomicBool,
}

struct Inner {
    /// The token endpoint: the application's settings, HTTP client, pacer and request count.
    endpoint: TokenEndpoint,
    store: Store,
    clock: Arc<dyn Clock>,
    /// Identifies this process in the refresh lease.
    owner: String,
    slots: Mutex<HashMap<String, Arc<AccountSlot>>>,
    events: broadcast::Sender<AuthEvent>,
}

/// Hands out access tokens per account, refreshing them safely. Cheap to clone.
#[derive(Clone)]
pub struct TokenManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("client_id", &self.inner.endpoint.config.client_id)
            .finish_non_exhaustive()
    }
}

impl TokenManager {
    pub fn new(
        config: OAuthConfig,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, AuthError> {
        let endpoint = TokenEndpoint::new(config, clock.clone())?;
        let (events, _) = broadcast::channel(64);
        Ok(Self {
            inner: Arc::new(Inner {
                endpoint,
                store,
                clock,
                owner: format!("{}-{}", std::process::id(), uuid::Uuid::new_v4()),
                slots: Mutex::new(HashMap::new()),
                events,
            }),
        })
    }

    pub fn client_id(&self) -> &str {
        &self.inner.endpoint.config.client_id
    }

    pub fn config(&self) -> &OAuthConfig {
        &self.inner.endpoint.config
    }

    /// Account events (re-authorisation needed, authorised again).
    pub fn subscribe(&self) -> broadcast::Receiver<AuthEvent> {
        self.inner.events.subscribe()
    }

    /// Token requests this process has sent (refreshes, code and device exchanges).
    pub fn token_requests(&self) -> u64 {
        self.inner.endpoint.requests()
    }

    /// The token endpoint, for the authorisation flows of `auth login`.
    pub(crate) fn endpoint(&self) -> &TokenEndpoint {
        &self.inner.endpoint
    }

    /// Every stored account (tokens stay secret).
    pub async fn accounts(&self) -> Result<Vec<StoredAccount>, AuthError> {
        Ok(self.inner.store.tokens_accounts().await?)
    }

    /// The stored state of one account, if it was ever authorised.
    pub async fn account(&self, account: &str) -> Result<Option<StoredAccount>, AuthError> {
        Ok(self.inner.store.tokens_account(account).await?)
    }

    fn slot(&self, account: &str) -> Arc<AccountSlot> {
        let mut slots = self.inner.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(account.to_owned()).or_default().clone()
    }

    fn fresh(&self, token: &AccessToken) -> bool {
        let ahead = chrono::Duration::from_std(self.inner.endpoint.config.refresh_ahead)
            .unwrap_or_default();
        token.expires_at - ahead > self.inner.clock.now()
    }

    /// True while a token read from the store at `read_at` may be used without reading
    /// the store again.
    fn recently_read(&self, read_at: DateTime<Utc>) -> bool {
        let recheck = chrono::Duration::from_std(self.inner.endpoint.config.recheck_stored)
            .unwrap_or_default();
        self.inner.clock.now() < read_at + recheck
    }

    /// Holds `token` in memory for `slot`, as read from the store now.
    fn cache(&self, slot: &AccountSlot, token: AccessToken) {
        *slot.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(Cached {
            token,
            read_at: self.inner.clock.now(),
        });
    }

    /// A valid access token for `account`, refreshing it first when it is about to expire.
    /// The stored account is read again every `recheck_stored`, so a logout or a new grant
    /// made by another process is noticed.
    pub async fn access_token(&self, account: &str) -> Result<AccessToken, AuthError> {
        let slot = self.slot(account);
        let cached = slot
            .cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(cached) =
            cached.filter(|c| self.fresh(&c.token) && self.recently_read(c.read_at))
        {
            return Ok(cached.token);
        }
        self.refresh(account, None).await
    }

    /// The API answered 401 to a request made with `rejected`: get a token newer than it.
    pub async fn after_unauthorized(
        &self,
        account: &str,
        rejected: &AccessToken,
    ) -> Result<AccessToken, AuthError> {
        self.refresh(account, Some(rejected.generation)).await
    }

    async fn refresh(
        &self,
        account: &str,
        rejected_generation: Option<i64>,
    ) -> Result<AccessToken, AuthError> {
        let slot = self.slot(account);
        let _one_at_a_time = slot.refresh.lock().await;
        loop {
            let row = self
                .account(account)
                .await?
                .ok_or_else(|| AuthError::NotAuthorised {
                    account: account.to_owned(),
                })?;
            if row.state == AccountState::ReauthRequired {
                *slot.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
                slot.lost.store(true, std::sync::atomic::Ordering::Relaxed);
                return Err(AuthError::ReauthRequired {
                    account: account.to_owned(),
                    reason: row
                        .state_reason
                        .unwrap_or_else(|| "refresh token refused".into()),
                });
            }
            if slot.lost.swap(false, std::sync::atomic::Ordering::Relaxed) {
                let _ = self.inner.events.send(AuthEvent::Authorised {
                    account: account.to_owned(),
                });
            }
            if let Some(token) =
                usable_stored_token(&row, rejected_generation).filter(|t| self.fresh(t))
            {
                self.cache(&slot, token.clone());
                return Ok(token);
            }
            if !self.take_lease(account).await? {
                // Another process is refreshing: wait for its result, then look again.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            // The row was read before the lease was ours: another process may have refreshed
            // and released the lease in between, spending the refresh token read above. Read
            // again under the lease, and refresh only from the newest row (presenting a spent
            // refresh token would make the server revoke the whole grant).
            let Some(row) = self.account(account).await? else {
                self.release_lease(account).await;
                continue;
            };
            if row.state == AccountState::ReauthRequired
                || usable_stored_token(&row, rejected_generation).is_some_and(|t| self.fresh(&t))
            {
                self.release_lease(account).await;
                continue;
            }
            let manager = self.clone();
            let name = account.to_owned();
            // Detached: the refresh and its commit finish even if our caller goes away.
            let task = tokio::spawn(async move { manager.refresh_under_lease(&name, row).await });
            let token = task.await.map_err(|e| AuthError::Unavailable {
                detail: format!("refresh task failed: {e}"),
            })??;
            self.cache(&slot, token.clone());
            return Ok(token);
        }
    }

    async fn take_lease(&self, account: &str) -> Result<bool, AuthError> {
        let now = self.inner.clock.now();
        let until =
            now + chrono::Duration::from_std(self.inner.endpoint.config.lease).unwrap_or_default();
        Ok(self
            .inner
            .store
            .tokens_take_lease(account, &self.inner.owner, now, until)
            .await?)
    }

    async fn release_lease(&self, account: &str) {
        if let Err(error) = self
            .inner
            .store
            .tokens_release_lease(account, &self.inner.owner)
            .await
        {
            tracing::warn!(account, error = %error, "could not release the refresh lease; it expires by itself");
        }
    }

    #[tracing::instrument(skip_all, fields(account = account, generation = row.generation))]
    async fn refresh_under_lease(
        &self,
        account: &str,
        row: StoredAccount,
    ) -> Result<AccessToken, AuthError> {
        let Some(refresh_token) = row.refresh_token.clone() else {
            self.release_lease(account).await;
            return self
                .lose(
                    account,
                    "no refresh token is stored (offline_access was not granted)",
                )
                .await;
        };
        let mut outcome = self.inner.endpoint.exchange_refresh(&refresh_token).await;
        let mut ambiguous_retries = 0;
        let mut pauses = 0;
        loop {
            match outcome {
                Exchange::Retry(detail) if pauses < 5 => {
                    pauses += 1;
                    tracing::warn!(detail, "token endpoint asked us to slow down; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Exchange::Ambiguous(detail) if ambiguous_retries == 0 => {
                    ambiguous_retries += 1;
                    tracing::warn!(
                        detail,
                        "refresh reply not received; retrying once with the same refresh token"
                    );
                }
                _ => break,
            }
            outcome = self.inner.endpoint.exchange_refresh(&refresh_token).await;
        }
        match outcome {
            Exchange::Tokens(tokens) => {
                let now = self.inner.clock.now();
                let generation = self
                    .inner
                    .store
                    .tokens_save_refresh(account, &self.inner.owner, &tokens, now)
                    .await?;
                tracing::info!(generation, expires_at = %tokens.access_expires_at, "access token refreshed");
                Ok(AccessToken {
                    value: tokens.access_token,
                    generation,
                    expires_at: tokens.access_expires_at,
                })
            }
            Exchange::InvalidGrant(detail) => {
                let reason = if ambiguous_retries > 0 {
                    format!("a refresh reply was lost and the rotated token was refused: {detail}")
                } else {
                    format!("refresh token refused: {detail}")
                };
                self.lose(account, &reason).await
            }
            Exchange::InvalidClient(detail) => {
                self.release_lease(account).await;
                Err(AuthError::InvalidClient { detail })
            }
            Exchange::Refused(detail) => {
                self.release_lease(account).await;
                Err(AuthError::Refused { detail })
            }
            Exchange::Ambiguous(detail) | Exchange::Retry(detail) => {
                self.release_lease(account).await;
                Err(AuthError::Unavailable { detail })
            }
        }
    }

    /// Puts the account into `reauth_required`, tells subscribers, and returns the error.
    async fn lose<T>(&self, account: &str, reason: &str) -> Result<T, AuthError> {
        let now = self.inner.clock.now();
        self.inner
            .store
            .tokens_mark_reauth_required(account, reason, now)
            .await?;
        let slot = self.slot(account);
        *slot.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
        slot.lost.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(
            account,
            reason,
            "account needs to be authorised again; its work waits"
        );
        let _ = self.inner.events.send(AuthEvent::ReauthRequired {
            account: account.to_owned(),
            reason: reason.to_owned(),
        });
        Err(AuthError::ReauthRequired {
            account: account.to_owned(),
            reason: reason.to_owned(),
        })
    }

    /// Stores a new grant for `account` (after login, device flow or import) and tells
    /// subscribers the account is usable again.
    pub async fn store_grant(&self, account: &str, tokens: NewTokens) -> Result<i64, AuthError> {
        let now = self.inner.clock.now();
        let generation = self
            .inner
            .store
            .tokens_save_grant(account, &self.inner.endpoint.config.client_id, &tokens, now)
            .await?;
        let slot = self.slot(account);
        self.cache(
            &slot,
            AccessToken {
                value: tokens.access_token,
                generation,
                expires_at: tokens.access_expires_at,
            },
        );
        slot.lost.store(false, std::sync::atomic::Ordering::Relaxed);
        let _ = self.inner.events.send(AuthEvent::Authorised {
            account: account.to_owned(),
        });
        Ok(generation)
    }

    /// Exchanges a refresh token obtained elsewhere (`auth import`) for a fresh grant and
    /// stores it. The given token is spent: the rotated one is stored before anything else.
    pub async fn import_refresh_token(
        &self,
        account: &str,
        refresh_token: SecretString,
    ) -> Result<i64, AuthError> {
        let mut outcome = self.inner.endpoint.exchange_refresh(&refresh_token).await;
        // Refused before acting (`slow_down`: one token request a second per client, shared
        // with a running daemon's refreshes): the token is unspent, so wait and ask again.
        for _ in 0..5 {
            let Exchange::Retry(detail) = &outcome else {
                break;
            };
            tracing::warn!(
                detail,
                "token endpoint refused the import for now; retrying"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
            outcome = self.inner.endpoint.exchange_refresh(&refresh_token).await;
        }
        match outcome {
            Exchange::Tokens(mut tokens) => {
                if tokens.refresh_token.is_none() {
                    tokens.refresh_token = Some(refresh_token);
                }
                self.store_grant(account, tokens).await
            }
            Exchange::InvalidGrant(detail) => Err(AuthError::Refused {
                detail: format!("the refresh token was refused: {detail}"),
            }),
            Exchange::InvalidClient(detail) => Err(AuthError::InvalidClient { detail }),
            Exchange::Refused(detail) => Err(AuthError::Refused { detail }),
            Exchange::Ambiguous(detail) | Exchange::Retry(detail) => {
                Err(AuthError::Unavailable { detail })
            }
        }
    }
}

fn usable_stored_token(
    row: &StoredAccount,
    rejected_generation: Option<i64>,
) -> Option<AccessToken> {
    if rejected_generation.is_some_and(|g| row.generation <= g) {
        return None;
    }
    Some(AccessToken {
        value: row.access_token.clone()?,
        generation: row.generation,
        expires_at: row.access_expires_at?,
    })
}
