//! Logging an account out (`ctct-sync auth logout`): its tokens revoked at the authorization
//! server, then forgotten in the store, all under the account's refresh lease so that no
//! process refreshes (spending or replacing the tokens) meanwhile.
//!
//! The account is left in `reauth_required` with the logout as its reason — the state a
//! refused refresh token leads to — so `auth status` shows it needing authorisation and a
//! daemon parks its commands until someone authorises it again. When revocation fails the
//! tokens stay stored and in use (nothing is half done), and the operator can try again or
//! choose [`LogoutMode::LocalOnly`].

use std::time::Duration;

use super::revoke::{RevokeError, TokenKind};
use super::{AuthError, AuthEvent, TokenManager};

/// How far `logout` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutMode {
    /// Revoke at the authorization server, then forget.
    Revoke,
    /// Forget in the store only: the tokens stay valid at the server.
    LocalOnly,
}

/// What `logout` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedOut {
    /// The tokens revoked at the authorization server, in order.
    pub revoked: Vec<TokenKind>,
    /// False when the account held no tokens (logged out already): nothing was changed.
    pub held_tokens: bool,
}

/// Why an account was not logged out. Its tokens are then still stored.
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("account `{account}` is not known to this store")]
    UnknownAccount { account: String },
    #[error(
        "another ctct-sync process is refreshing the tokens of account `{account}`; nothing was \
         changed, try again in a minute"
    )]
    Busy { account: String },
    #[error("the {} of account `{account}` was not revoked: {source}", kind.name())]
    Revocation {
        account: String,
        kind: TokenKind,
        /// The tokens revoked before this one failed.
        revoked: Vec<TokenKind>,
        #[source]
        source: RevokeError,
    },
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl TokenManager {
    /// Logs `account` out: revokes its stored tokens (access token first, then the refresh
    /// token, which ends the grant) unless `mode` is [`LogoutMode::LocalOnly`], then forgets
    /// them and leaves the account in `reauth_required`. The refresh lease is held
    /// throughout; on any failure it is released and nothing is forgotten.
    pub async fn logout(&self, account: &str, mode: LogoutMode) -> Result<LoggedOut, LogoutError> {
        let unknown = || LogoutError::UnknownAccount {
            account: account.to_owned(),
        };
        if self.account(account).await?.is_none() {
            return Err(unknown());
        }
        // A refresh holds the lease for at most `lease`: wait that long for it to finish.
        let deadline = tokio::time::Instant::now() + self.inner.endpoint.config.lease;
        while !self.take_lease(account).await? {
            if tokio::time::Instant::now() >= deadline {
                return Err(LogoutError::Busy {
                    account: account.to_owned(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let outcome = self.logout_under_lease(account, mode).await;
        if !matches!(
            outcome,
            Ok(LoggedOut {
                held_tokens: true,
                ..
            })
        ) {
            self.release_lease(account).await;
        }
        outcome
    }

    async fn logout_under_lease(
        &self,
        account: &str,
        mode: LogoutMode,
    ) -> Result<LoggedOut, LogoutError> {
        // Read again under the lease: a refresh may have rotated the tokens meanwhile.
        let row = self
            .account(account)
            .await?
            .ok_or_else(|| LogoutError::UnknownAccount {
                account: account.to_owned(),
            })?;
        if row.refresh_token.is_none() && row.access_token.is_none() {
            return Ok(LoggedOut {
                revoked: Vec::new(),
                held_tokens: false,
            });
        }
        let mut revoked = Vec::new();
        if mode == LogoutMode::Revoke {
            let now = self.inner.clock.now();
            // An expired access token needs no revoking.
            let access = row
                .access_token
                .as_ref()
                .filter(|_| row.access_expires_at.is_some_and(|at| at > now));
            for (kind, token) in [
                (TokenKind::Access, access),
                (TokenKind::Refresh, row.refresh_token.as_ref()),
            ] {
                let Some(token) = token else { continue };
                if let Err(source) = self.inner.endpoint.revoke(token, kind).await {
                    return Err(LogoutError::Revocation {
                        account: account.to_owned(),
                        kind,
                        revoked,
                        source,
                    });
                }
                revoked.push(kind);
            }
        }
        let reason = match mode {
            LogoutMode::Revoke => "logged out with `ctct-sync auth logout` (tokens revoked)",
            LogoutMode::LocalOnly => {
                "logged out with `ctct-sync auth logout --local-only` (tokens forgotten here, \
                 not revoked)"
            }
        };
        let now = self.inner.clock.now();
        if !self
            .inner
            .store
            .tokens_forget(account, &self.inner.owner, reason, now)
            .await
            .map_err(AuthError::from)?
        {
            // Our lease ran out and another process took it: its refresh may store tokens.
            return Err(LogoutError::Busy {
                account: account.to_owned(),
            });
        }
        let slot = self.slot(account);
        *slot.cached.lock().unwrap_or_else(|e| e.into_inner()) = None;
        slot.lost.store(true, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(
            account,
            revoked = revoked.len(),
            local_only = mode == LogoutMode::LocalOnly,
            "account logged out; its tokens are forgotten"
        );
        let _ = self.inner.events.send(AuthEvent::ReauthRequired {
            account: account.to_owned(),
            reason: reason.to_owned(),
        });
        Ok(LoggedOut {
            revoked,
            held_tokens: true,
        })
    }
}
