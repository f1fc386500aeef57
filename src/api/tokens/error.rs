//! Why no access token can be had.

use std::sync::Arc;

use crate::store::StoreError;

/// Why no access token can be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error(
        "no OAuth2 application is configured: set oauth.client_id and oauth.client_secret \
         (e.g. CTCT_SYNC__OAUTH__CLIENT_ID and CTCT_SYNC__OAUTH__CLIENT_SECRET)"
    )]
    NotConfigured,
    #[error(
        "account `{account}` is not authorised; run `ctct-sync auth login --account {account}`"
    )]
    NotAuthorised { account: String },
    #[error(
        "account `{account}` needs to be authorised again ({reason}); run `ctct-sync auth login --account {account}`"
    )]
    ReauthRequired { account: String, reason: String },
    #[error("the token endpoint refused the application's client id or secret ({detail})")]
    InvalidClient { detail: String },
    #[error("the token endpoint could not be reached or answered badly: {detail}")]
    Unavailable { detail: String },
    #[error("the token endpoint refused the request: {detail}")]
    Refused { detail: String },
    /// The state store failed while the tokens were read or saved: not the API's doing, so
    /// the pipeline hands the command back instead of spending an attempt.
    #[error("token store: {0}")]
    Store(Arc<StoreError>),
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        AuthError::Store(Arc::new(error))
    }
}
