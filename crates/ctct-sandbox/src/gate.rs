//! The request pipeline in front of every API and OAuth handler: request log, fault
//! injection (before or after the effect), bearer-token check (401), per-client limits (429),
//! per-endpoint scopes (403, reference §1.5) and the JSON content-type rule (415). Handlers
//! receive the authenticated `Caller` as a request extension.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Frame;
use tokio::sync::Notify;

use super::errors::ApiError;
use super::faults::FaultKind;
use super::http::is_json_content_type;
use super::limits::Verdict;
use super::logs::{LoggedRequest, redact_path};
use super::oauth::token::RevokeNow;
use super::oauth::{Resolved, scope};
use super::state::{Caller, Shared, lock};

/// Per-connection context inserted by the server: the peer and a switch that closes the
/// TCP connection without an answer.
#[derive(Debug, Clone)]
pub(crate) struct ConnCtx {
    pub(crate) peer: SocketAddr,
    pub(crate) kill: Arc<Notify>,
}

/// Headers whose value identifies the client's command (first one present wins).
const COMMAND_HEADERS: [&str; 3] = ["x-ctct-command-id", "idempotency-key", "x-request-id"];

fn command_id(headers: &HeaderMap) -> Option<String> {
    COMMAND_HEADERS.iter().find_map(|name| {
        headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(200).collect())
    })
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (kind, token) = value.split_once(' ')?;
    kind.eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// The scope an API path needs (`None`: only a valid token), reference §1.5.
pub(crate) fn required_scope(method: &Method, path: &str) -> Option<u8> {
    let rest = path.strip_prefix("/v3").unwrap_or(path);
    if rest.starts_with("/account/user/privileges") {
        None
    } else if rest.starts_with("/account") {
        Some(if method == Method::GET {
            scope::ACCOUNT_READ
        } else {
            scope::ACCOUNT_UPDATE
        })
    } else if rest.starts_with("/emails") || rest.starts_with("/reports") {
        Some(scope::CAMPAIGN_DATA)
    } else {
        Some(scope::CONTACT_DATA)
    }
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// A body that fails at once: the fallback way to break a response when the connection
/// cannot be closed directly.
struct BrokenBody;

impl hyper::body::Body for BrokenBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::other(
            "connection dropped by fault",
        ))))
    }
}

struct Pending {
    shared: Arc<Shared>,
    entry: LoggedRequest,
    started: Instant,
    conn: Option<ConnCtx>,
}

impl Pending {
    fn finish(mut self, response: Response) -> Response {
        self.entry.status = response.status().as_u16();
        self.entry.duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!(
            method = %self.entry.method,
            path = %self.entry.path,
            status = self.entry.status,
            fault = self.entry.fault.as_deref().unwrap_or(""),
            "sandbox_request"
        );
        lock(&self.shared.requests).push(self.entry);
        response
    }

    async fn drop_connection(mut self) -> Response {
        self.entry.status = 0;
        self.entry.duration_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        lock(&self.shared.requests).push(self.entry);
        match self.conn {
            Some(conn) => {
                conn.kill.notify_one();
                // The connection task drops this future together with the socket.
                std::future::pending::<Infallible>().await;
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            None => (StatusCode::OK, Body::new(BrokenBody)).into_response(),
        }
    }
}

/// The client id of an OAuth request: the user part of HTTP Basic, else `client_id` in the
/// query (form bodies are not read here).
fn oauth_client_id(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    use base64::Engine as _;
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|pair| pair.split_once(':').map(|(id, _)| id.to_owned()));
    basic.or_else(|| {
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
    })
}

fn resolve(shared: &Shared, headers: &HeaderMap) -> Option<(Resolved, String)> {
    let token = bearer(headers)?;
    let world = shared.world();
    let resolved = world.auth.resolve(&token, shared.now_ms())?;
    let account_id = world.accounts.get(resolved.account)?.id.clone();
    Some((resolved, account_id))
}

fn revoke(shared: &Shared, family: usize) {
    let now = shared.now_ms();
    let mut world = shared.world();
    if world.auth.revoke_family(family) {
        let account = world.auth.families[family].account;
        if let Some(id) = world.accounts.get(account).map(|a| a.id.clone()) {
            world.effects.push(
                now,
                &id,
                "token.family_revoked",
                Some(format!("family-{family}")),
                None,
            );
        }
    }
}

/// The middleware itself.
pub(crate) async fn gate(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let is_api = path == "/v3" || path.starts_with("/v3/");
    let command = command_id(req.headers());
    let mut resolved = if is_api {
        resolve(&shared, req.headers())
    } else {
        None
    };
    let mut pending = Pending {
        entry: LoggedRequest {
            seq: 0,
            time: shared.clock.now(),
            method: method.as_str().to_owned(),
            path: redact_path(&path, req.uri().query()),
            status: 0,
            client_id: match &resolved {
                Some((r, _)) => Some(r.client_id.clone()),
                None if !is_api => oauth_client_id(req.headers(), req.uri().query()),
                None => None,
            },
            account_id: resolved.as_ref().map(|(_, a)| a.clone()),
            duration_ms: 0.0,
            fault: None,
            command_id: command.clone(),
        },
        shared: shared.clone(),
        started,
        conn: req.extensions().get::<ConnCtx>().cloned(),
    };

    let fault = lock(&shared.faults).take(method.as_str(), &path);
    let mut after = None;
    if let Some(spec) = fault {
        pending.entry.fault = Some(spec.kind.name().to_owned());
        if spec.after_effect {
            after = Some(spec.kind);
        } else {
            match spec.kind {
                FaultKind::Status { status } => {
                    let status =
                        StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
                    return pending.finish(ApiError::server_error(status).into_response());
                }
                FaultKind::Latency { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
                FaultKind::DropConnection => return pending.drop_connection().await,
                FaultKind::Throttled => {
                    return pending.finish(ApiError::throttled().into_response());
                }
                FaultKind::QuotaExceeded => {
                    return pending.finish(ApiError::quota_exceeded().into_response());
                }
                FaultKind::RevokeTokens => {
                    if let Some((r, _)) = resolved.take() {
                        revoke(&shared, r.family);
                    }
                    if !is_api {
                        req.extensions_mut().insert(RevokeNow);
                    }
                }
            }
        }
    }

    if is_api {
        let Some((who, _)) = resolved.clone() else {
            return pending.finish(ApiError::unauthorized().into_response());
        };
        let verdict = lock(&shared.limiter).check_api(&who.client_id, shared.now_ms());
        match verdict {
            Verdict::Allow => {}
            Verdict::Throttled => return pending.finish(ApiError::throttled().into_response()),
            Verdict::QuotaExceeded => {
                return pending.finish(ApiError::quota_exceeded().into_response());
            }
        }
        if let Some(needed) = required_scope(&method, &path)
            && who.scopes & needed == 0
        {
            return pending.finish(ApiError::forbidden(scope::name(needed)).into_response());
        }
        let headers = req.headers();
        let body_method = matches!(method, Method::POST | Method::PUT | Method::PATCH);
        if (has_body(headers) || (body_method && headers.contains_key(header::CONTENT_TYPE)))
            && !is_json_content_type(headers)
        {
            return pending.finish(ApiError::unsupported_media_type().into_response());
        }
        req.extensions_mut().insert(Caller {
            account: who.account,
            command_id: command,
        });
    }

    let response = next.run(req).await;
    match after {
        None => pending.finish(response),
        Some(FaultKind::Status { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            pending.finish(ApiError::server_error(status).into_response())
        }
        Some(FaultKind::Latency { ms }) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            pending.finish(response)
        }
        Some(FaultKind::DropConnection) => pending.drop_connection().await,
        Some(FaultKind::Throttled) => pending.finish(ApiError::throttled().into_response()),
        Some(FaultKind::QuotaExceeded) => {
            pending.finish(ApiError::quota_exceeded().into_response())
        }
        Some(FaultKind::RevokeTokens) => {
            if let Some((r, _)) = resolved {
                revoke(&shared, r.family);
                return pending.finish(ApiError::unauthorized().into_response());
            }
            // Token endpoint: the grant happened, then its new family is revoked.
            let bytes = to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap_or_default();
            let issued = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["access_token"].as_str().map(str::to_owned));
            if let Some(token) = issued {
                let family = shared
                    .world()
                    .auth
                    .access
                    .get(&super::oauth::jwt::token_hash(&token))
                    .map(|a| a.family);
                if let Some(family) = family {
                    revoke(&shared, family);
                }
            }
            pending.finish(ApiError::invalid_grant("The grant was revoked.").into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_follow_the_reference_table() {
        assert_eq!(
            required_scope(&Method::GET, "/v3/contacts"),
            Some(scope::CONTACT_DATA)
        );
        assert_eq!(
            required_scope(&Method::GET, "/v3/contact_exports/x"),
            Some(scope::CONTACT_DATA)
        );
        assert_eq!(
            required_scope(&Method::POST, "/v3/emails"),
            Some(scope::CAMPAIGN_DATA)
        );
        assert_eq!(
            required_scope(&Method::GET, "/v3/account/summary"),
            Some(scope::ACCOUNT_READ)
        );
        assert_eq!(
            required_scope(&Method::POST, "/v3/account/emails"),
            Some(scope::ACCOUNT_UPDATE)
        );
        assert_eq!(
            required_scope(&Method::GET, "/v3/account/user/privileges"),
            None
        );
    }

    #[test]
    fn the_command_id_header_is_preferred_over_generic_ones() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", "generic".parse().expect("valid"));
        headers.insert("x-ctct-command-id", "cmd-1".parse().expect("valid"));
        assert_eq!(command_id(&headers).as_deref(), Some("cmd-1"));
    }
}
