//! The OAuth2 side of the sandbox: registered clients, grant families with rotating refresh
//! tokens (reference §1.4: a presented, already-used refresh token revokes the whole family),
//! access tokens, authorization codes and device codes. HTTP endpoints: `authorize`, `token`
//! and `revoke` (RFC 7009).

pub(crate) mod authorize;
pub(crate) mod jwt;
pub(crate) mod revoke;
pub(crate) mod token;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::clock::{MS_PER_DAY, Millis};

/// Scope bits (reference §1.5).
pub(crate) mod scope {
    pub(crate) const ACCOUNT_READ: u8 = 1;
    pub(crate) const ACCOUNT_UPDATE: u8 = 2;
    pub(crate) const CONTACT_DATA: u8 = 4;
    pub(crate) const CAMPAIGN_DATA: u8 = 8;
    pub(crate) const OFFLINE_ACCESS: u8 = 16;
    pub(crate) const ALL: u8 = 31;

    pub(crate) const NAMES: [(&str, u8); 5] = [
        ("account_read", ACCOUNT_READ),
        ("account_update", ACCOUNT_UPDATE),
        ("contact_data", CONTACT_DATA),
        ("campaign_data", CAMPAIGN_DATA),
        ("offline_access", OFFLINE_ACCESS),
    ];

    /// Parses a space-separated scope string; `Err` names the first unknown scope.
    pub(crate) fn parse(text: &str) -> Result<u8, String> {
        let mut bits = 0;
        for word in text.split([' ', '+']).filter(|w| !w.is_empty()) {
            match NAMES.iter().find(|(name, _)| *name == word) {
                Some((_, bit)) => bits |= bit,
                None => return Err(word.to_owned()),
            }
        }
        Ok(bits)
    }

    pub(crate) fn names(bits: u8) -> Vec<&'static str> {
        NAMES
            .iter()
            .filter(|(_, bit)| bits & bit != 0)
            .map(|(name, _)| *name)
            .collect()
    }

    pub(crate) fn name(bit: u8) -> &'static str {
        NAMES
            .iter()
            .find(|(_, b)| *b == bit)
            .map_or("unknown", |(name, _)| name)
    }
}

/// Refresh tokens die when not used for this long (reference §1.4).
pub(crate) const REFRESH_IDLE_MS: Millis = 180 * MS_PER_DAY;
/// Authorization codes live this long and work once.
pub(crate) const CODE_TTL_MS: Millis = 5 * 60 * 1000;
/// Device codes live this long.
pub(crate) const DEVICE_TTL_MS: Millis = 10 * 60 * 1000;

/// A registered application (API key + secret). `Debug` redacts the secret.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Client {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .finish()
    }
}

/// Everything issued from one authorization (one consent): its refresh-token chain and the
/// access tokens minted along the way.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Family {
    pub(crate) account: usize,
    pub(crate) client_id: String,
    pub(crate) scopes: u8,
    /// Obtained without a client secret (PKCE or device flow): may refresh with client_id only.
    pub(crate) public_client: bool,
    pub(crate) revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AccessRec {
    pub(crate) family: usize,
    pub(crate) exp: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RefreshRec {
    pub(crate) family: usize,
    pub(crate) used: bool,
    pub(crate) issued_at: Millis,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: u8,
    pub(crate) account: usize,
    pub(crate) challenge: Option<String>,
    pub(crate) expires: Millis,
}

#[derive(Debug, Clone)]
pub(crate) struct DeviceGrant {
    pub(crate) client_id: String,
    pub(crate) scopes: u8,
    pub(crate) account: usize,
    pub(crate) user_code: String,
    pub(crate) approved: bool,
    pub(crate) polls: u32,
    pub(crate) expires: Millis,
}

/// Who an accepted access token speaks for.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) account: usize,
    pub(crate) client_id: String,
    pub(crate) scopes: u8,
    pub(crate) family: usize,
}

/// Tokens are kept by SHA-256 (hex), never in clear, here and in the state file. `Debug`
/// shows counts only (codes and the signing key are secrets).
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct AuthStore {
    pub(crate) clients: Vec<Client>,
    pub(crate) families: Vec<Family>,
    pub(crate) access: HashMap<String, AccessRec>,
    pub(crate) refresh: HashMap<String, RefreshRec>,
    /// Key of the HMAC signature of access tokens (hex).
    pub(crate) signing_key: String,
    #[serde(skip)]
    pub(crate) codes: HashMap<String, AuthCode>,
    #[serde(skip)]
    pub(crate) devices: HashMap<String, DeviceGrant>,
    #[serde(skip)]
    issued_since_prune: u32,
}

impl std::fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthStore")
            .field("clients", &self.clients)
            .field("families", &self.families.len())
            .field("access_tokens", &self.access.len())
            .field("refresh_tokens", &self.refresh.len())
            .finish_non_exhaustive()
    }
}

/// A fresh unguessable token string (base64url of 32 random bytes).
pub(crate) fn random_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl AuthStore {
    pub(crate) fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// Looks up an access token; `None` when unknown, expired or revoked.
    pub(crate) fn resolve(&self, token: &str, now: Millis) -> Option<Resolved> {
        let rec = self.access.get(&jwt::token_hash(token))?;
        let family = self.families.get(rec.family)?;
        if family.revoked || rec.exp <= now {
            return None;
        }
        Some(Resolved {
            account: family.account,
            client_id: family.client_id.clone(),
            scopes: family.scopes,
            family: rec.family,
        })
    }

    /// The family a refresh token belongs to, if known.
    pub(crate) fn refresh_family(&self, refresh_token: &str) -> Option<usize> {
        self.refresh
            .get(&jwt::token_hash(refresh_token))
            .map(|r| r.family)
    }

    pub(crate) fn new_family(
        &mut self,
        account: usize,
        client_id: &str,
        scopes: u8,
        public_client: bool,
    ) -> usize {
        self.families.push(Family {
            account,
            client_id: client_id.to_owned(),
            scopes,
            public_client,
            revoked: false,
        });
        self.families.len() - 1
    }

    /// Mints a new refresh token for `family` (when it has offline_access).
    pub(crate) fn mint_refresh(&mut self, family: usize, now: Millis) -> Option<String> {
        let scopes = self.families.get(family)?.scopes;
        if scopes & scope::OFFLINE_ACCESS == 0 {
            return None;
        }
        let token = random_token();
        self.refresh.insert(
            jwt::token_hash(&token),
            RefreshRec {
                family,
                used: false,
                issued_at: now,
            },
        );
        Some(token)
    }

    /// Records a minted access token.
    pub(crate) fn remember_access(&mut self, token: &str, family: usize, exp: Millis, now: Millis) {
        self.access
            .insert(jwt::token_hash(token), AccessRec { family, exp });
        self.issued_since_prune += 1;
        if self.issued_since_prune >= 1024 {
            self.issued_since_prune = 0;
            self.access.retain(|_, rec| rec.exp > now);
        }
    }

    pub(crate) fn revoke_family(&mut self, family: usize) -> bool {
        match self.families.get_mut(family) {
            Some(f) if !f.revoked => {
                f.revoked = true;
                true
            }
            _ => false,
        }
    }

    /// Revokes every family of `account`; returns the families revoked.
    pub(crate) fn revoke_account(&mut self, account: usize) -> Vec<usize> {
        let mut revoked = Vec::new();
        for (index, family) in self.families.iter_mut().enumerate() {
            if family.account == account && !family.revoked {
                family.revoked = true;
                revoked.push(index);
            }
        }
        revoked
    }

    /// Drops authorization and device codes past their lifetime.
    pub(crate) fn prune_codes(&mut self, now: Millis) {
        self.codes.retain(|_, c| c.expires > now);
        self.devices.retain(|_, d| d.expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_client_secret() {
        let mut store = AuthStore::default();
        store.clients.push(Client {
            client_id: "id".into(),
            client_secret: "s3cr3t".into(),
        });
        store.signing_key = "k3y".into();
        let text = format!("{store:?}");
        assert!(text.contains("id") && !text.contains("s3cr3t") && !text.contains("k3y"));
    }

    #[test]
    fn scopes_parse_from_space_or_plus_separated_text() {
        let bits = scope::parse("contact_data+offline_access account_read").expect("known");
        assert_eq!(
            bits,
            scope::CONTACT_DATA | scope::OFFLINE_ACCESS | scope::ACCOUNT_READ
        );
        assert_eq!(scope::parse("contact_data bogus"), Err("bogus".into()));
        assert_eq!(
            scope::names(bits),
            vec!["account_read", "contact_data", "offline_access"]
        );
    }

    #[test]
    fn a_refresh_token_is_minted_only_with_offline_access() {
        let mut store = AuthStore::default();
        let without = store.new_family(0, "c", scope::CONTACT_DATA, false);
        let with = store.new_family(0, "c", scope::ALL, false);
        assert!(store.mint_refresh(without, 0).is_none());
        assert!(store.mint_refresh(with, 0).is_some());
    }

    #[test]
    fn a_revoked_family_stops_its_access_tokens() {
        let mut store = AuthStore::default();
        let family = store.new_family(0, "c", scope::ALL, false);
        store.remember_access("tok", family, 10_000, 0);
        assert!(store.resolve("tok", 5_000).is_some());
        assert!(store.resolve("tok", 10_000).is_none(), "expired at exp");
        store.revoke_family(family);
        assert!(store.resolve("tok", 5_000).is_none());
    }
}
