//! The Constant Contact V3 API client.
//!
//! ```text
//! client      ApiClient / AccountApi: the one send path (budget → token → request → retry)
//! budget      the API key's shared budget: per-second pacer + persisted daily quota, priorities
//! tokens      OAuth2 tokens per account: single-flight, cross-process lease, rotation-safe
//! retry       the retry policy, a pure function with a table of tests
//! error       ApiError and the API's error bodies
//! model       typed request/response models (lenient decoding)
//! endpoints   one `impl AccountApi` block per family: contacts, lists, campaigns, …
//! ```

pub mod budget;
pub mod client;
mod endpoints;
pub mod error;
pub mod model;
pub mod retry;
pub mod tokens;

pub use budget::{BudgetSettings, Priority, RateBudget};
pub use client::{AccountApi, ApiClient, ClientSettings};
pub use error::ApiError;
pub use tokens::{AccessToken, AuthError, AuthEvent, OAuthConfig, TokenManager};

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Settings;
use crate::store::Store;

/// The token manager of the configured OAuth2 application.
pub fn token_manager(
    settings: &Settings,
    store: Store,
    clock: Arc<dyn Clock>,
) -> Result<TokenManager, AuthError> {
    if !settings.oauth.is_configured() {
        return Err(AuthError::NotConfigured);
    }
    let oauth = &settings.oauth;
    TokenManager::new(
        OAuthConfig::new(
            &oauth.client_id,
            oauth.client_secret.clone(),
            &oauth.token_url,
            &oauth.authorize_url,
        )
        .with_revoke_url(&oauth.revoke_url),
        store,
        clock,
    )
}

/// The API client of the configured application: one rate budget for its API key.
pub fn client_from_settings(
    settings: &Settings,
    store: Store,
    clock: Arc<dyn Clock>,
) -> Result<ApiClient, ApiError> {
    let tokens = token_manager(settings, store.clone(), clock.clone())?;
    let limits = &settings.limits;
    let budget = RateBudget::new(
        &settings.oauth.client_id,
        BudgetSettings::new(limits.per_second, limits.per_day, limits.mirror_share)
            .pausing_at_startup(),
        store,
        clock,
    );
    ApiClient::new(
        ClientSettings::new(&settings.api.base_url),
        Arc::new(budget),
        tokens,
    )
}

/// The streamed export file of [`AccountApi::download_export`].
pub use endpoints::ExportDownload;
