//! SQL for connected accounts and their OAuth2 tokens (`accounts`).
//!
//! Token values are secrets: they are read into `SecretString`s and never formatted.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use secrecy::{ExposeSecret, SecretString};

use super::Store;
use super::error::StoreError;

/// Whether an account can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    Active,
    /// The refresh token was refused (`invalid_grant`): a person must authorise again.
    ReauthRequired,
}

/// One account's stored row.
#[derive(Debug, Clone)]
pub struct StoredAccount {
    pub account: String,
    pub client_id: String,
    pub state: AccountState,
    pub state_reason: Option<String>,
    pub refresh_token: Option<SecretString>,
    pub access_token: Option<SecretString>,
    pub access_expires_at: Option<DateTime<Utc>>,
    pub scopes: String,
    pub generation: i64,
    pub last_refresh_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Tokens just received from the token endpoint.
#[derive(Debug, Clone)]
pub struct NewTokens {
    pub access_token: SecretString,
    /// `None` when the server did not send one: the stored refresh token is kept.
    pub refresh_token: Option<SecretString>,
    pub access_expires_at: DateTime<Utc>,
    pub scopes: String,
}

const COLUMNS: &str = "account, client_id, state, state_reason, refresh_token, access_token, \
     access_expires_at, scopes, generation, last_refresh_at, created_at";

fn time(value: Option<String>) -> Option<DateTime<Utc>> {
    value.and_then(|v| {
        DateTime::parse_from_rfc3339(&v)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<StoredAccount> {
    let state: String = row.get(2)?;
    Ok(StoredAccount {
        account: row.get(0)?,
        client_id: row.get(1)?,
        state: if state == "reauth_required" {
            AccountState::ReauthRequired
        } else {
            AccountState::Active
        },
        state_reason: row.get(3)?,
        refresh_token: row.get::<_, Option<String>>(4)?.map(SecretString::from),
        access_token: row.get::<_, Option<String>>(5)?.map(SecretString::from),
        access_expires_at: time(row.get(6)?),
        scopes: row.get(7)?,
        generation: row.get(8)?,
        last_refresh_at: time(row.get(9)?),
        created_at: time(row.get(10)?).unwrap_or_default(),
    })
}

pub fn load(conn: &Connection, account: &str) -> Result<Option<StoredAccount>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM accounts WHERE account = ?1"),
            [account],
            from_row,
        )
        .optional()?)
}

pub fn list(conn: &Connection) -> Result<Vec<StoredAccount>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM accounts ORDER BY account"))?;
    let rows = stmt
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Stores a fresh grant (login, device flow, import): the account becomes active with a new
/// generation. Durable when this returns (the connection runs with synchronous=FULL).
pub fn save_grant(
    conn: &Connection,
    account: &str,
    client_id: &str,
    tokens: &NewTokens,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let refresh = tokens
        .refresh_token
        .as_ref()
        .map(|t| t.expose_secret().to_owned());
    Ok(conn.query_row(
        "INSERT INTO accounts (account, client_id, state, state_reason, refresh_token, access_token,
                               access_expires_at, scopes, generation, last_refresh_at,
                               refresh_lease_owner, refresh_lease_until, created_at, updated_at)
         VALUES (?1, ?2, 'active', NULL, ?3, ?4, ?5, ?6, 1, ?7, NULL, NULL, ?7, ?7)
         ON CONFLICT (account) DO UPDATE SET
             client_id = excluded.client_id, state = 'active', state_reason = NULL,
             refresh_token = coalesce(excluded.refresh_token, refresh_token),
             access_token = excluded.access_token, access_expires_at = excluded.access_expires_at,
             scopes = excluded.scopes, generation = generation + 1,
             last_refresh_at = excluded.last_refresh_at,
             refresh_lease_owner = NULL, refresh_lease_until = NULL, updated_at = excluded.updated_at
         RETURNING generation",
        params![
            account,
            client_id,
            refresh,
            tokens.access_token.expose_secret(),
            tokens.access_expires_at.to_rfc3339(),
            tokens.scopes,
            now.to_rfc3339(),
        ],
        |r| r.get(0),
    )?)
}

/// Stores the result of a refresh made under the lease held by `owner`, and releases the
/// lease. Returns the new generation.
pub fn save_refresh(
    conn: &Connection,
    account: &str,
    owner: &str,
    tokens: &NewTokens,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let refresh = tokens
        .refresh_token
        .as_ref()
        .map(|t| t.expose_secret().to_owned());
    Ok(conn.query_row(
        "UPDATE accounts SET
             refresh_token = coalesce(?3, refresh_token), access_token = ?4,
             access_expires_at = ?5, scopes = ?6, generation = generation + 1,
             last_refresh_at = ?7, updated_at = ?7,
             refresh_lease_owner = NULL, refresh_lease_until = NULL
         WHERE account = ?1 AND (refresh_lease_owner = ?2 OR refresh_lease_owner IS NULL)
         RETURNING generation",
        params![
            account,
            owner,
            refresh,
            tokens.access_token.expose_secret(),
            tokens.access_expires_at.to_rfc3339(),
            tokens.scopes,
            now.to_rfc3339(),
        ],
        |r| r.get(0),
    )?)
}

/// Takes the account's refresh lease for `owner` until `until`, unless another owner holds
/// an unexpired one. One `BEGIN IMMEDIATE` transaction, so two processes cannot both win.
pub fn take_lease(
    conn: &mut Connection,
    account: &str,
    owner: &str,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let taken = tx.execute(
        "UPDATE accounts SET refresh_lease_owner = ?2, refresh_lease_until = ?4
         WHERE account = ?1
           AND (refresh_lease_owner IS NULL OR refresh_lease_owner = ?2 OR refresh_lease_until < ?3)",
        params![account, owner, now.to_rfc3339(), until.to_rfc3339()],
    )? == 1;
    tx.commit()?;
    Ok(taken)
}

pub fn release_lease(conn: &Connection, account: &str, owner: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE accounts SET refresh_lease_owner = NULL, refresh_lease_until = NULL
         WHERE account = ?1 AND refresh_lease_owner = ?2",
        params![account, owner],
    )?;
    Ok(())
}

/// Puts the account into the re-authorisation-needed state and forgets its tokens' lease.
pub fn mark_reauth_required(
    conn: &Connection,
    account: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE accounts SET state = 'reauth_required', state_reason = ?2, updated_at = ?3,
                             refresh_lease_owner = NULL, refresh_lease_until = NULL
         WHERE account = ?1",
        params![account, reason, now.to_rfc3339()],
    )?;
    Ok(())
}

/// Forgets the account's tokens (`ctct-sync auth logout`): both tokens and the access token's
/// expiry are cleared, the account goes to `reauth_required` with `reason` (so its commands
/// wait for a new authorisation, as after a refused refresh), the generation moves on and the
/// refresh lease is dropped. Done only when no other owner holds an unexpired lease (a refresh
/// in flight would store its tokens back); false when one does or there is no such account.
pub fn forget(
    conn: &Connection,
    account: &str,
    owner: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE accounts SET state = 'reauth_required', state_reason = ?3,
                             refresh_token = NULL, access_token = NULL, access_expires_at = NULL,
                             generation = generation + 1, updated_at = ?4,
                             refresh_lease_owner = NULL, refresh_lease_until = NULL
         WHERE account = ?1
           AND (refresh_lease_owner IS NULL OR refresh_lease_owner = ?2 OR refresh_lease_until < ?4)",
        params![account, owner, reason, now.to_rfc3339()],
    )? == 1)
}

/// The accounts' typed operations: the only way code outside the store reaches `accounts`
/// (tokens and the refresh lease).
impl Store {
    /// Every stored account ([`list`]).
    pub async fn tokens_accounts(&self) -> Result<Vec<StoredAccount>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.tokens_accounts().await;
        }
        self.call(|conn| list(conn)).await
    }

    /// One stored account, if it was ever authorised ([`load`]).
    pub async fn tokens_account(&self, account: &str) -> Result<Option<StoredAccount>, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.tokens_account(account).await;
        }
        let account = account.to_owned();
        self.call(move |conn| load(conn, &account)).await
    }

    /// Stores a fresh grant; returns its generation ([`save_grant`]).
    pub async fn tokens_save_grant(
        &self,
        account: &str,
        client_id: &str,
        tokens: &NewTokens,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.tokens_save_grant(account, client_id, tokens, now).await;
        }
        let (account, client_id, tokens) =
            (account.to_owned(), client_id.to_owned(), tokens.clone());
        self.call(move |conn| save_grant(conn, &account, &client_id, &tokens, now))
            .await
    }

    /// Stores a refresh made under `owner`'s lease and releases the lease; returns the new
    /// generation ([`save_refresh`]).
    pub async fn tokens_save_refresh(
        &self,
        account: &str,
        owner: &str,
        tokens: &NewTokens,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.tokens_save_refresh(account, owner, tokens, now).await;
        }
        let (account, owner, tokens) = (account.to_owned(), owner.to_owned(), tokens.clone());
        self.call(move |conn| save_refresh(conn, &account, &owner, &tokens, now))
            .await
    }

    /// Takes the account's refresh lease for `owner` until `until` ([`take_lease`]).
    pub async fn tokens_take_lease(
        &self,
        account: &str,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.tokens_take_lease(account, owner, now, until).await;
        }
        let (account, owner) = (account.to_owned(), owner.to_owned());
        self.call(move |conn| take_lease(conn, &account, &owner, now, until))
            .await
    }

    /// Releases `owner`'s refresh lease ([`release_lease`]).
    pub async fn tokens_release_lease(&self, account: &str, owner: &str) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.tokens_release_lease(account, owner).await;
        }
        let (account, owner) = (account.to_owned(), owner.to_owned());
        self.call(move |conn| release_lease(conn, &account, &owner))
            .await
    }

    /// Puts the account into the re-authorisation-needed state ([`mark_reauth_required`]).
    pub async fn tokens_mark_reauth_required(
        &self,
        account: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(pg) = self.pg() {
            return pg.tokens_mark_reauth_required(account, reason, now).await;
        }
        let (account, reason) = (account.to_owned(), reason.to_owned());
        self.call(move |conn| mark_reauth_required(conn, &account, &reason, now))
            .await
    }

    /// Forgets the account's tokens unless another owner holds its refresh lease; true when
    /// they were forgotten ([`forget`]).
    pub async fn tokens_forget(
        &self,
        account: &str,
        owner: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if let Some(pg) = self.pg() {
            return pg.tokens_forget(account, owner, reason, now).await;
        }
        let (account, owner, reason) = (account.to_owned(), owner.to_owned(), reason.to_owned());
        self.call(move |conn| forget(conn, &account, &owner, &reason, now))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate::migrate(&mut conn).unwrap();
        conn
    }

    fn now() -> DateTime<Utc> {
        "2026-11-23T12:00:00Z".parse().unwrap()
    }

    fn tokens(access: &str, refresh: &str) -> NewTokens {
        NewTokens {
            access_token: SecretString::from(access.to_owned()),
            refresh_token: Some(SecretString::from(refresh.to_owned())),
            access_expires_at: now() + chrono::Duration::hours(1),
            scopes: "contact_data offline_access".into(),
        }
    }

    #[test]
    fn forgetting_an_account_clears_its_tokens_and_leaves_it_needing_authorisation() {
        let mut conn = db();
        save_grant(&conn, "default", "key", &tokens("a1", "r1"), now()).unwrap();
        save_grant(&conn, "eu", "key", &tokens("a2", "r2"), now()).unwrap();
        let lease = now() + chrono::Duration::seconds(30);
        assert!(take_lease(&mut conn, "default", "me", now(), lease).unwrap());

        assert!(forget(&conn, "default", "me", "logged out", now()).unwrap());
        let row = load(&conn, "default")
            .unwrap()
            .expect("the account stays listed");
        assert_eq!(row.state, AccountState::ReauthRequired);
        assert_eq!(row.state_reason.as_deref(), Some("logged out"));
        assert!(row.refresh_token.is_none() && row.access_token.is_none());
        assert!(row.access_expires_at.is_none());
        assert_eq!(row.generation, 2, "a token cached elsewhere is older now");
        assert!(
            take_lease(&mut conn, "default", "other", now(), lease).unwrap(),
            "the lease was dropped"
        );
        let other = load(&conn, "eu").unwrap().unwrap();
        assert_eq!(
            other.state,
            AccountState::Active,
            "other accounts untouched"
        );
        assert_eq!(other.refresh_token.unwrap().expose_secret(), "r2");

        assert!(
            !forget(&conn, "nobody", "me", "logged out", now()).unwrap(),
            "no such account"
        );
        assert_eq!(
            save_grant(&conn, "default", "key", &tokens("a3", "r3"), now()).unwrap(),
            3,
            "a new grant makes it active again"
        );
        assert_eq!(
            load(&conn, "default").unwrap().unwrap().state,
            AccountState::Active
        );
    }

    #[test]
    fn tokens_are_not_forgotten_while_another_process_holds_the_refresh_lease() {
        let mut conn = db();
        save_grant(&conn, "default", "key", &tokens("a1", "r1"), now()).unwrap();
        let lease = now() + chrono::Duration::seconds(30);
        assert!(take_lease(&mut conn, "default", "daemon", now(), lease).unwrap());
        assert!(!forget(&conn, "default", "me", "logged out", now()).unwrap());
        let row = load(&conn, "default").unwrap().unwrap();
        assert_eq!(row.state, AccountState::Active);
        assert_eq!(row.refresh_token.unwrap().expose_secret(), "r1");
        // Once that lease has expired, the tokens can be forgotten.
        let later = lease + chrono::Duration::seconds(1);
        assert!(forget(&conn, "default", "me", "logged out", later).unwrap());
        assert!(
            load(&conn, "default")
                .unwrap()
                .unwrap()
                .refresh_token
                .is_none()
        );
    }
}
