//! Token revocation (RFC 7009) at the application's revocation endpoint, for
//! `ctct-sync auth logout`.
//!
//! Constant Contact's reference documents no revocation endpoint
//! (shared/reference/constant-contact-v3.md §1.1 lists authorize, token and device
//! authorize only). Its auth server is Okta's (§1.1), whose revocation endpoint is
//! `/oauth2/default/v1/revoke`: that is the default of `oauth.revoke_url`, UNCONFIRMED. The
//! request is what RFC 7009 §2.1 asks for — a form POST of `token` and `token_type_hint`,
//! the client authenticated with HTTP Basic as at the token endpoint (§1.2) — and only the
//! status and an OAuth error body's `error`/`error_description` are read from the answer. No
//! token or secret ever reaches an error message.

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use super::exchange::TokenEndpoint;

/// The kind of token presented (RFC 7009 `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Refresh,
    Access,
}

impl TokenKind {
    /// The `token_type_hint` value.
    fn hint(self) -> &'static str {
        match self {
            TokenKind::Refresh => "refresh_token",
            TokenKind::Access => "access_token",
        }
    }

    /// For messages: "refresh token", "access token".
    pub fn name(self) -> &'static str {
        match self {
            TokenKind::Refresh => "refresh token",
            TokenKind::Access => "access token",
        }
    }
}

/// Why the authorization server did not confirm a revocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevokeError {
    #[error("no revocation endpoint is configured (oauth.revoke_url)")]
    NotConfigured,
    #[error("the revocation endpoint refused the application's client id or secret ({detail})")]
    InvalidClient { detail: String },
    /// A 4xx other than 401: repeating the same request will not help.
    #[error("the revocation endpoint refused the request: {detail}")]
    Refused { detail: String },
    /// No answer, a timeout, 429 or 5xx: the same request may work later.
    #[error("the revocation endpoint could not be reached or answered badly: {detail}")]
    Unavailable { detail: String },
}

/// OAuth's error body (RFC 6749 §5.2), as far as it is shown.
#[derive(serde::Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl TokenEndpoint {
    /// Asks the revocation endpoint to revoke `token`. `Ok` when it answered 200: revoked
    /// now, or already invalid (RFC 7009 §2.2).
    pub(crate) async fn revoke(
        &self,
        token: &SecretString,
        kind: TokenKind,
    ) -> Result<(), RevokeError> {
        let Some(url) = self.config.revoke_url.as_deref() else {
            return Err(RevokeError::NotConfigured);
        };
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token.expose_secret())
            .append_pair("token_type_hint", kind.hint())
            .finish();
        let mut authorization = reqwest::header::HeaderValue::from_str(&format!(
            "Basic {}",
            basic_credentials(
                &self.config.client_id,
                self.config.client_secret.expose_secret()
            )
        ))
        .map_err(|_| RevokeError::Refused {
            detail: "the client id cannot be sent in an HTTP header".into(),
        })?;
        authorization.set_sensitive(true);
        // The auth server allows one token request a second (reference §1.4); revocations
        // go to the same server, so they keep the same pace.
        self.pace_token_request().await;
        let response = self
            .http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| RevokeError::Unavailable {
                detail: e.without_url().to_string(),
            })?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        // Read a little of the body, for an OAuth error; the rest is never shown.
        let bytes = response.bytes().await.unwrap_or_default();
        Err(classify(status, &bytes, token.expose_secret()))
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before they are joined.
fn basic_credentials(client_id: &str, secret: &str) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        encode(client_id),
        encode(secret)
    ))
}

/// Turns a non-200 answer into a [`RevokeError`]. Only an OAuth error body's `error` and
/// `error_description` are shown, with the presented token blotted out should the server
/// echo it.
fn classify(status: u16, body: &[u8], token: &str) -> RevokeError {
    let oauth = serde_json::from_slice::<ErrorBody>(body.get(..4096).unwrap_or(body))
        .ok()
        .map(|e| {
            let text = match e.error_description.filter(|d| !d.is_empty()) {
                Some(description) => format!("{}: {description}", e.error),
                None => e.error,
            };
            if token.is_empty() {
                text
            } else {
                text.replace(token, "[token]")
            }
        });
    let detail = match oauth {
        Some(text) => format!("HTTP {status}, {text}"),
        None => format!("HTTP {status}"),
    };
    match status {
        401 => RevokeError::InvalidClient { detail },
        404 | 405 => RevokeError::Refused {
            detail: format!(
                "{detail} — no revocation endpoint there; check oauth.revoke_url (Constant \
                 Contact's reference does not document one)"
            ),
        },
        429 | 500..=599 => RevokeError::Unavailable { detail },
        _ => RevokeError::Refused { detail },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "eyJraWQiOi.presented-token.value";

    #[test]
    fn answers_are_classified_by_status_and_show_only_the_oauth_error() {
        let body =
            br#"{"error":"invalid_client","error_description":"Client authentication failed"}"#;
        assert_eq!(
            classify(401, body, TOKEN),
            RevokeError::InvalidClient {
                detail: "HTTP 401, invalid_client: Client authentication failed".into()
            }
        );
        assert!(matches!(
            classify(503, b"<html>down</html>", TOKEN),
            RevokeError::Unavailable { detail } if detail == "HTTP 503"
        ));
        assert!(matches!(
            classify(429, b"", TOKEN),
            RevokeError::Unavailable { .. }
        ));
        let RevokeError::Refused { detail } = classify(404, b"not json", TOKEN) else {
            panic!("a 404 is a refusal");
        };
        assert!(detail.contains("oauth.revoke_url"), "{detail}");
        assert!(matches!(
            classify(400, br#"{"error":"unsupported_token_type"}"#, TOKEN),
            RevokeError::Refused { detail } if detail == "HTTP 400, unsupported_token_type"
        ));
    }

    #[test]
    fn a_token_echoed_in_an_error_body_never_reaches_the_message() {
        let body = br#"{"error":"invalid_request","error_description":"bad token s3cr3t-value"}"#;
        let message = classify(400, body, "s3cr3t-value").to_string();
        assert!(!message.contains("s3cr3t-value"), "{message}");
        assert!(message.contains("[token]"), "{message}");
        // A body that is not an OAuth error is never shown at all.
        let message = classify(500, b"echo s3cr3t-value", "s3cr3t-value").to_string();
        assert!(!message.contains("s3cr3t-value"), "{message}");
    }

    #[test]
    fn client_credentials_are_form_encoded_before_basic_encoding() {
        let encoded = basic_credentials("id with space", "p@ss:word");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "id+with+space:p%40ss%3Aword"
        );
    }
}
