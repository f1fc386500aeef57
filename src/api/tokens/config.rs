//! The OAuth2 application ctct-sync acts as.

use std::time::Duration;

use secrecy::SecretString;

/// The OAuth2 application ctct-sync acts as.
#[derive(Clone)]
pub struct OAuthConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    pub token_url: String,
    pub authorize_url: String,
    /// The revocation endpoint (RFC 7009) of `auth logout`; `None`: logging out can only
    /// forget the tokens locally.
    pub revoke_url: Option<String>,
    /// Refresh when less than this is left of the access token's life.
    pub refresh_ahead: Duration,
    /// How long an access token held in memory is used before the stored account is read
    /// again: an account logged out (or authorised anew) by another process is noticed
    /// within this, even when no API call is refused.
    pub recheck_stored: Duration,
    /// How long a process may hold the refresh lease before others take over.
    pub lease: Duration,
    /// Timeout of one token request.
    pub request_timeout: Duration,
}

impl std::fmt::Debug for OAuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("token_url", &self.token_url)
            .field("revoke_url", &self.revoke_url)
            .finish_non_exhaustive()
    }
}

impl OAuthConfig {
    pub fn new(
        client_id: &str,
        client_secret: SecretString,
        token_url: &str,
        authorize_url: &str,
    ) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret,
            token_url: token_url.to_owned(),
            authorize_url: authorize_url.to_owned(),
            revoke_url: None,
            refresh_ahead: Duration::from_secs(300),
            recheck_stored: Duration::from_secs(60),
            lease: Duration::from_secs(90),
            request_timeout: Duration::from_secs(30),
        }
    }

    /// The same application with its revocation endpoint.
    pub fn with_revoke_url(mut self, revoke_url: &str) -> Self {
        self.revoke_url = Some(revoke_url.to_owned());
        self
    }
}
