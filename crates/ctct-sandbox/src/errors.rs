//! Errors: `SandboxError` for starting/stopping/admin calls, and `ApiError`, the HTTP error
//! responses in the real API's body shapes (reference §3.1): arrays of
//! `{error_key, error_message}` for ordinary errors, single objects for 401 and 429, OAuth's
//! `{error, error_description}` on the token endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Why the sandbox could not start, save, or perform an admin operation.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("refusing to listen on non-loopback address {0} without --public")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read state file {path}")]
    StateRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state file {path} is not valid sandbox state")]
    StateParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write state file {path}")]
    StateWrite {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no state file was configured")]
    NoStateFile,
    #[error("unknown sandbox account {0}")]
    UnknownAccount(String),
    #[error("invalid admin request: {0}")]
    InvalidAdminRequest(String),
}

/// Which service family an error comes from; picks the `error_key` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    /// Contacts, lists, custom fields and bulk activities (`contacts.api.*`, observed).
    Contacts,
    /// Email campaigns (`campaign.api.*`, assumed).
    Campaigns,
    /// Account endpoints (`account.api.*`, assumed).
    Account,
}

impl Area {
    fn prefix(self) -> &'static str {
        match self {
            Area::Contacts => "contacts.api",
            Area::Campaigns => "campaign.api",
            Area::Account => "account.api",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
struct KeyMessage {
    error_key: String,
    error_message: String,
}

#[derive(Debug, Clone, Serialize)]
struct OAuthBody {
    error: String,
    error_description: String,
}

#[derive(Debug, Clone)]
enum Body {
    List(KeyMessage),
    Single(KeyMessage),
    OAuth(OAuthBody),
    Gateway(String),
}

/// An HTTP error answer of the emulated API.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    body: Body,
}

impl ApiError {
    fn list(status: StatusCode, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Body::List(KeyMessage {
                error_key: key.into(),
                error_message: message.into(),
            }),
        }
    }

    fn single(status: StatusCode, key: &str, message: &str) -> Self {
        Self {
            status,
            body: Body::Single(KeyMessage {
                error_key: key.to_owned(),
                error_message: message.to_owned(),
            }),
        }
    }

    /// A reporting error: one `StatsError` object (`reportingsvc.*` keys), not an array.
    pub(crate) fn stats(
        status: StatusCode,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            body: Body::Single(KeyMessage {
                error_key: key.into(),
                error_message: message.into(),
            }),
        }
    }

    pub(crate) fn validation(area: Area, message: impl Into<String>) -> Self {
        Self::list(
            StatusCode::BAD_REQUEST,
            format!("{}.validation.error", area.prefix()),
            message,
        )
    }

    pub(crate) fn not_found(area: Area, message: impl Into<String>) -> Self {
        Self::list(
            StatusCode::NOT_FOUND,
            format!("{}.not_found", area.prefix()),
            message,
        )
    }

    pub(crate) fn conflict(area: Area, message: impl Into<String>) -> Self {
        Self::list(
            StatusCode::CONFLICT,
            format!("{}.conflict", area.prefix()),
            message,
        )
    }

    pub(crate) fn unknown_path() -> Self {
        Self::list(StatusCode::NOT_FOUND, "not_found", "Resource not found")
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::list(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Method not supported on this resource",
        )
    }

    pub(crate) fn unauthorized() -> Self {
        Self::single(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
    }

    pub(crate) fn forbidden(scope: &str) -> Self {
        Self::list(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("Forbidden: the access token was not granted the {scope} scope"),
        )
    }

    pub(crate) fn unsupported_media_type() -> Self {
        Self::list(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Content-Type must be application/json",
        )
    }

    pub(crate) fn throttled() -> Self {
        Self::single(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "Too Many Requests",
        )
    }

    pub(crate) fn quota_exceeded() -> Self {
        Self::single(
            StatusCode::TOO_MANY_REQUESTS,
            "quota_exceeded",
            "Limit Exceeded",
        )
    }

    pub(crate) fn queue_full() -> Self {
        Self::single(
            StatusCode::TOO_MANY_REQUESTS,
            "queued_activities_limit_exceeded",
            "You exceeded 1,000 queued activities for this user account.",
        )
    }

    /// A 5xx "real-ish" body: 500 in the API's array shape, 502/503/504 as the AWS gateway
    /// in front of the API answers (`{"message": ...}`).
    pub(crate) fn server_error(status: StatusCode) -> Self {
        match status.as_u16() {
            500 => Self::list(
                status,
                "server_error",
                "An unexpected error occurred; please retry later",
            ),
            502 => Self {
                status,
                body: Body::Gateway("Internal server error".into()),
            },
            504 => Self {
                status,
                body: Body::Gateway("Endpoint request timed out".into()),
            },
            _ => Self {
                status,
                body: Body::Gateway("Service Unavailable".into()),
            },
        }
    }

    pub(crate) fn oauth(status: StatusCode, error: &str, description: impl Into<String>) -> Self {
        Self {
            status,
            body: Body::OAuth(OAuthBody {
                error: error.to_owned(),
                error_description: description.into(),
            }),
        }
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::oauth(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub(crate) fn invalid_request(description: impl Into<String>) -> Self {
        Self::oauth(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// The `error_key` (or OAuth `error`) of this answer, for logs and tests.
    pub(crate) fn key(&self) -> &str {
        match &self.body {
            Body::List(km) | Body::Single(km) => &km.error_key,
            Body::OAuth(o) => &o.error,
            Body::Gateway(_) => "gateway",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let bytes = match &self.body {
            Body::List(km) => serde_json::to_vec(&[km]),
            Body::Single(km) => serde_json::to_vec(km),
            Body::OAuth(o) => serde_json::to_vec(o),
            Body::Gateway(message) => {
                serde_json::to_vec(&serde_json::json!({ "message": message }))
            }
        }
        .unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        match (&self.body, self.status) {
            (_, StatusCode::UNAUTHORIZED) if matches!(self.body, Body::Single(_)) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=api.cc.email"),
                );
                headers.insert(
                    "x-amzn-ErrorType",
                    HeaderValue::from_static("UnauthorizedException"),
                );
            }
            (Body::OAuth(_), StatusCode::UNAUTHORIZED) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"sandbox\""),
                );
            }
            (Body::Gateway(_), _) => {
                headers.insert(
                    "x-amzn-ErrorType",
                    HeaderValue::from_static("InternalServerErrorException"),
                );
            }
            _ => {}
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
