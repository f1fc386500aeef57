//! Accounts and their OAuth2 tokens on PostgreSQL: the same operations as
//! [`crate::store::tokens`]. The refresh lease is decided by the database's clock: a lease
//! lasts `until - now` (the caller's instants give only its length) from the database's
//! `now()`, and is taken over only when it is past by that clock, so processes on hosts whose
//! clocks disagree still refresh one at a time.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::PgStore;
use crate::store::error::StoreError;
use crate::store::tokens::{AccountState, NewTokens, StoredAccount};

const COLUMNS: &str = "account, client_id, state, state_reason, refresh_token, access_token, \
     access_expires_at, scopes, generation, last_refresh_at, created_at";

fn from_row(row: &tokio_postgres::Row) -> StoredAccount {
    let state: String = row.get(2);
    StoredAccount {
        account: row.get(0),
        client_id: row.get(1),
        state: if state == "reauth_required" {
            AccountState::ReauthRequired
        } else {
            AccountState::Active
        },
        state_reason: row.get(3),
        refresh_token: row.get::<_, Option<String>>(4).map(SecretString::from),
        access_token: row.get::<_, Option<String>>(5).map(SecretString::from),
        access_expires_at: row.get(6),
        scopes: row.get(7),
        generation: row.get(8),
        last_refresh_at: row.get(9),
        created_at: row.get(10),
    }
}

impl PgStore {
    /// Every stored account, by name.
    pub async fn tokens_accounts(&self) -> Result<Vec<StoredAccount>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query(
                &format!("SELECT {COLUMNS} FROM accounts ORDER BY account"),
                &[],
            )
            .await
            .map_err(|e| self.error(e))?
            .iter()
            .map(from_row)
            .collect())
    }

    /// One stored account, if it was ever authorised.
    pub async fn tokens_account(&self, account: &str) -> Result<Option<StoredAccount>, StoreError> {
        let client = self.client().await?;
        Ok(client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM accounts WHERE account = $1"),
                &[&account],
            )
            .await
            .map_err(|e| self.error(e))?
            .as_ref()
            .map(from_row))
    }

    /// Stores a fresh grant: the account becomes active with a new generation (returned);
    /// any refresh lease is dropped.
    pub async fn tokens_save_grant(
        &self,
        account: &str,
        client_id: &str,
        tokens: &NewTokens,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let refresh = tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned());
        let client = self.client().await?;
        Ok(client
            .query_one(
                "INSERT INTO accounts (account, client_id, state, state_reason, refresh_token, access_token,
                                       access_expires_at, scopes, generation, last_refresh_at,
                                       refresh_lease_owner, refresh_lease_until, created_at, updated_at)
                 VALUES ($1, $2, 'active', NULL, $3, $4, $5, $6, 1, $7, NULL, NULL, $7, $7)
                 ON CONFLICT (account) DO UPDATE SET
                     client_id = excluded.client_id, state = 'active', state_reason = NULL,
                     refresh_token = coalesce(excluded.refresh_token, accounts.refresh_token),
                     access_token = excluded.access_token,
                     access_expires_at = excluded.access_expires_at,
                     scopes = excluded.scopes, generation = accounts.generation + 1,
                     last_refresh_at = excluded.last_refresh_at,
                     refresh_lease_owner = NULL, refresh_lease_until = NULL,
                     updated_at = excluded.updated_at
                 RETURNING generation",
                &[
                    &account,
                    &client_id,
                    &refresh,
                    &tokens.access_token.expose_secret(),
                    &tokens.access_expires_at,
                    &tokens.scopes,
                    &now,
                ],
            )
            .await
            .map_err(|e| self.error(e))?
            .get(0))
    }

    /// Stores a refresh made under `owner`'s lease (or with no lease held) and releases the
    /// lease; returns the new generation. Fails when another owner holds the lease.
    pub async fn tokens_save_refresh(
        &self,
        account: &str,
        owner: &str,
        tokens: &NewTokens,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let refresh = tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned());
        let client = self.client().await?;
        Ok(client
            .query_one(
                "UPDATE accounts SET
                     refresh_token = coalesce($3, refresh_token), access_token = $4,
                     access_expires_at = $5, scopes = $6, generation = generation + 1,
                     last_refresh_at = $7, updated_at = $7,
                     refresh_lease_owner = NULL, refresh_lease_until = NULL
                 WHERE account = $1 AND (refresh_lease_owner = $2 OR refresh_lease_owner IS NULL)
                 RETURNING generation",
                &[
                    &account,
                    &owner,
                    &refresh,
                    &tokens.access_token.expose_secret(),
                    &tokens.access_expires_at,
                    &tokens.scopes,
                    &now,
                ],
            )
            .await
            .map_err(|e| self.error(e))?
            .get(0))
    }

    /// Takes the account's refresh lease for `owner` for `until - now`, by the database's
    /// clock, unless another owner holds one that has not expired by that clock. One
    /// conditional update: of two processes asking at once, exactly one wins.
    pub async fn tokens_take_lease(
        &self,
        account: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let lasts = (until - now).num_milliseconds() as f64 / 1000.0;
        let client = self.client().await?;
        let taken = client
            .execute(
                "UPDATE accounts SET refresh_lease_owner = $2,
                                     refresh_lease_until = now() + make_interval(secs => $3)
                 WHERE account = $1
                   AND (refresh_lease_owner IS NULL OR refresh_lease_owner = $2
                        OR refresh_lease_until < now())",
                &[&account, &owner, &lasts],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(taken == 1)
    }

    /// Releases `owner`'s refresh lease (nothing when another owner holds it).
    pub async fn tokens_release_lease(&self, account: &str, owner: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE accounts SET refresh_lease_owner = NULL, refresh_lease_until = NULL
                 WHERE account = $1 AND refresh_lease_owner = $2",
                &[&account, &owner],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Puts the account into the re-authorisation-needed state and forgets its lease.
    pub async fn tokens_mark_reauth_required(
        &self,
        account: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE accounts SET state = 'reauth_required', state_reason = $2, updated_at = $3,
                                     refresh_lease_owner = NULL, refresh_lease_until = NULL
                 WHERE account = $1",
                &[&account, &reason, &now],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Forgets the account's tokens and puts it into the re-authorisation-needed state with
    /// `reason`, bumping the generation and dropping the lease — unless another owner holds a
    /// lease that has not expired by the database's clock. True when forgotten.
    pub async fn tokens_forget(
        &self,
        account: &str,
        owner: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let forgotten = client
            .execute(
                "UPDATE accounts SET state = 'reauth_required', state_reason = $3,
                                     refresh_token = NULL, access_token = NULL,
                                     access_expires_at = NULL, generation = generation + 1,
                                     updated_at = $4,
                                     refresh_lease_owner = NULL, refresh_lease_until = NULL
                 WHERE account = $1
                   AND (refresh_lease_owner IS NULL OR refresh_lease_owner = $2
                        OR refresh_lease_until < now())",
                &[&account, &owner, &reason, &now],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(forgotten == 1)
    }
}
