//! The admin HTTP API under `/__sandbox/` (the crate's README.md lists every route with examples).
//! Only loopback peers are served, and only requests that carry the per-run admin token
//! (`Authorization: Bearer …`, 401 without it), name a loopback `Host` (DNS rebinding) and
//! come from no foreign `Origin` (a web page's cross-origin POST): everything else gets a 403.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::SandboxAdmin;
use crate::clock::parse_instant;
use crate::errors::SandboxError;
use crate::faults::FaultSpec;
use crate::gate::ConnCtx;
use crate::http::QueryMap;
use crate::limits::LimitsMode;
use crate::state::Shared;

type AdminResult = Result<Response, AdminError>;

/// The largest single clock move accepted over HTTP.
const MAX_ADVANCE: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Admin failures: `{"error": "..."}` with 400 (bad request) or 404 (unknown account).
pub(crate) struct AdminError(StatusCode, String);

impl From<SandboxError> for AdminError {
    fn from(error: SandboxError) -> Self {
        let status = match error {
            SandboxError::UnknownAccount(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        };
        AdminError(status, error.to_string())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({"error": self.1}))).into_response()
    }
}

fn bad(message: impl Into<String>) -> AdminError {
    AdminError(StatusCode::BAD_REQUEST, message.into())
}

fn body<T: for<'de> Deserialize<'de> + Default>(bytes: &Bytes) -> Result<T, AdminError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid JSON body: {e}")))
}

fn admin(shared: &Arc<Shared>) -> SandboxAdmin {
    SandboxAdmin {
        shared: shared.clone(),
    }
}

fn ok(value: serde_json::Value) -> AdminResult {
    Ok(Json(value).into_response())
}

async fn guard(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let forbidden = |why: &str| AdminError(StatusCode::FORBIDDEN, why.into()).into_response();
    let loopback = req
        .extensions()
        .get::<ConnCtx>()
        .is_some_and(|c| c.peer.ip().is_loopback());
    if !loopback {
        return forbidden("the sandbox admin API only answers loopback clients");
    }
    let headers = req.headers();
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok());
    if !host.is_some_and(is_loopback_host) {
        return forbidden(
            "the sandbox admin API only answers requests whose Host is a loopback address",
        );
    }
    if let Some(origin) = headers.get(axum::http::header::ORIGIN)
        && origin.as_bytes() != s.origin.as_bytes()
    {
        return forbidden("the sandbox admin API refuses cross-origin requests");
    }
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim);
    if !presented.is_some_and(|token| same_secret(token, &s.admin_token)) {
        let mut response = AdminError(
            StatusCode::UNAUTHORIZED,
            "the sandbox admin API needs `Authorization: Bearer <admin_token>` (admin_token is in the sandbox's credentials line)".into(),
        )
        .into_response();
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            axum::http::HeaderValue::from_static("Bearer realm=\"ctct-sandbox-admin\""),
        );
        return response;
    }
    next.run(req).await
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Compares without stopping at the first difference.
fn same_secret(presented: &str, expected: &str) -> bool {
    presented.len() == expected.len()
        && presented
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn post_fault(State(s): State<Arc<Shared>>, bytes: Bytes) -> AdminResult {
    let spec: FaultSpec =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("invalid fault: {e}")))?;
    let id = admin(&s).inject_fault(spec)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))).into_response())
}

async fn get_faults(State(s): State<Arc<Shared>>) -> AdminResult {
    ok(json!({"faults": admin(&s).faults()}))
}

async fn delete_faults(State(s): State<Arc<Shared>>) -> AdminResult {
    admin(&s).clear_faults();
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn since_limit(raw: Option<&str>) -> Result<(QueryMap, u64, usize), AdminError> {
    let q = QueryMap::parse(raw);
    let since = q
        .get("since")
        .map(str::parse)
        .transpose()
        .map_err(|_| bad("since must be an integer"))?
        .unwrap_or(0);
    let limit = q
        .get("limit")
        .map(str::parse)
        .transpose()
        .map_err(|_| bad("limit must be an integer"))?
        .unwrap_or(10_000);
    Ok((q, since, limit))
}

async fn get_requests(State(s): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> AdminResult {
    let (_, since, limit) = since_limit(raw.as_deref())?;
    ok(json!({"requests": admin(&s).requests_since(since, limit)}))
}

async fn delete_requests(State(s): State<Arc<Shared>>) -> AdminResult {
    admin(&s).clear_request_log();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_effects(State(s): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> AdminResult {
    let (q, since, limit) = since_limit(raw.as_deref())?;
    let effects: Vec<_> = s
        .world()
        .effects
        .matching(|e| {
            e.seq > since
                && q.get("command_id")
                    .is_none_or(|c| e.command_id.as_deref() == Some(c))
                && q.get("kind").is_none_or(|k| e.kind == k)
                && q.get("account").is_none_or(|a| e.account_id == a)
        })
        .into_iter()
        .take(limit)
        .collect();
    ok(json!({"effects": effects}))
}

async fn get_state(State(s): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> AdminResult {
    let q = QueryMap::parse(raw.as_deref());
    let a = admin(&s);
    if q.get("full") == Some("true") || q.get("account").is_some() {
        let account = q
            .get("account")
            .map(str::to_owned)
            .unwrap_or_else(|| a.primary_account());
        return ok(serde_json::to_value(a.snapshot(&account)?).unwrap_or_default());
    }
    ok(serde_json::to_value(a.summary()).unwrap_or_default())
}

async fn delete_state(State(s): State<Arc<Shared>>) -> AdminResult {
    admin(&s).reset();
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn save_state(State(s): State<Arc<Shared>>) -> AdminResult {
    admin(&s).save_state()?;
    ok(json!({"saved": true}))
}

#[derive(Debug, Default, Deserialize)]
struct SeedIn {
    account: Option<String>,
    contacts: Option<usize>,
    seed: Option<u64>,
}

async fn post_seed(State(s): State<Arc<Shared>>, bytes: Bytes) -> AdminResult {
    let input: SeedIn = body(&bytes)?;
    let a = admin(&s);
    let account = input.account.unwrap_or_else(|| a.primary_account());
    a.seed(
        &account,
        input.contacts.unwrap_or(0),
        input.seed.unwrap_or(s.seed),
    )?;
    ok(json!({"account_id": account, "contacts": a.contact_count(&account, true)?}))
}

#[derive(Debug, Default, Deserialize)]
struct ClockIn {
    advance_secs: Option<f64>,
    set: Option<String>,
    new_day: Option<bool>,
    freeze: Option<bool>,
}

async fn get_clock(State(s): State<Arc<Shared>>) -> AdminResult {
    ok(json!({"now": admin(&s).now(), "frozen": s.clock.is_frozen()}))
}

async fn post_clock(State(s): State<Arc<Shared>>, bytes: Bytes) -> AdminResult {
    let input: ClockIn = body(&bytes)?;
    let a = admin(&s);
    match input.freeze {
        Some(true) => a.freeze_clock(),
        Some(false) => a.unfreeze_clock(),
        None => {}
    }
    if let Some(to) = input.set.as_deref() {
        let ms = parse_instant(to).ok_or_else(|| bad("set must be an RFC 3339 date-time"))?;
        a.set_clock(crate::clock::to_datetime(ms));
    }
    if let Some(secs) = input.advance_secs {
        let by = Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|d| *d <= MAX_ADVANCE)
            .ok_or_else(|| {
                bad("advance_secs must be a number of seconds between 0 and 10 years")
            })?;
        a.advance_clock(by);
    }
    if input.new_day == Some(true) {
        a.start_new_day();
    }
    get_clock(State(s)).await
}

async fn post_account(State(s): State<Arc<Shared>>) -> AdminResult {
    let (account_id, refresh_token) = admin(&s).add_account();
    Ok((
        StatusCode::CREATED,
        Json(json!({"account_id": account_id, "refresh_token": refresh_token})),
    )
        .into_response())
}

async fn post_refresh_token(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> AdminResult {
    ok(json!({"refresh_token": admin(&s).issue_refresh_token(&id)?}))
}

async fn post_revoke(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> AdminResult {
    ok(json!({"revoked_families": admin(&s).revoke_tokens(&id)?}))
}

#[derive(Debug, Default, Deserialize)]
struct TokensIn {
    scope: Option<String>,
}

async fn post_tokens(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> AdminResult {
    let input: TokensIn = body(&bytes)?;
    let scopes = input.scope.unwrap_or_else(|| {
        "account_read account_update contact_data campaign_data offline_access".into()
    });
    ok(serde_json::to_value(admin(&s).issue_tokens(&id, &scopes)?).unwrap_or_default())
}

async fn post_complete(State(s): State<Arc<Shared>>) -> AdminResult {
    admin(&s).complete_activities_now();
    ok(json!({"completed": true}))
}

#[derive(Debug, Default, Deserialize)]
struct RateIn {
    rows_per_sec: Option<u32>,
}

async fn post_rate(State(s): State<Arc<Shared>>, bytes: Bytes) -> AdminResult {
    let input: RateIn = body(&bytes)?;
    let rate = input
        .rows_per_sec
        .ok_or_else(|| bad("rows_per_sec is required"))?;
    admin(&s).set_activity_rate(rate);
    ok(json!({"rows_per_sec": rate.max(1)}))
}

#[derive(Debug, Default, Deserialize)]
struct ConfirmIn {
    account: Option<String>,
    email_address: Option<String>,
}

async fn post_confirm(State(s): State<Arc<Shared>>, bytes: Bytes) -> AdminResult {
    let input: ConfirmIn = body(&bytes)?;
    let a = admin(&s);
    let account = input.account.unwrap_or_else(|| a.primary_account());
    let email = input
        .email_address
        .ok_or_else(|| bad("email_address is required"))?;
    a.confirm_account_email(&account, &email)?;
    ok(json!({"account_id": account, "email_address": email, "confirm_status": "CONFIRMED"}))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentIn {
    account: Option<String>,
    name: Option<String>,
    segment_criteria: Option<String>,
}

async fn post_segment(State(s): State<Arc<Shared>>, bytes: Bytes) -> AdminResult {
    let input: SegmentIn = body(&bytes)?;
    let a = admin(&s);
    let account = input.account.unwrap_or_else(|| a.primary_account());
    let name = input.name.ok_or_else(|| bad("name is required"))?;
    let criteria = input
        .segment_criteria
        .ok_or_else(|| bad("segment_criteria is required"))?;
    let id = a.add_segment(&account, &name, &criteria)?;
    let body = json!({"account_id": account, "segment_id": id});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn delete_segment(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> AdminResult {
    let a = admin(&s);
    let q = QueryMap::parse(raw.as_deref());
    let account = q
        .get("account")
        .map_or_else(|| a.primary_account(), str::to_owned);
    let id = id
        .parse::<u32>()
        .map_err(|_| bad("segment_id must be a whole number"))?;
    a.delete_segment(&account, id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_reports(State(s): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> AdminResult {
    let q = QueryMap::parse(raw.as_deref());
    let a = admin(&s);
    let account = q
        .get("account")
        .map(str::to_owned)
        .unwrap_or_else(|| a.primary_account());
    ok(json!({"activities": a.campaign_reports(&account)?}))
}

#[derive(Debug, Default, Deserialize)]
struct EventsIn {
    account: Option<String>,
    events: Option<Vec<crate::reports::TrackingEvent>>,
}

async fn post_tracking_events(
    State(s): State<Arc<Shared>>,
    Path(activity): Path<String>,
    bytes: Bytes,
) -> AdminResult {
    let input: EventsIn = body(&bytes)?;
    let a = admin(&s);
    let account = input.account.unwrap_or_else(|| a.primary_account());
    let activity = uuid::Uuid::parse_str(activity.trim())
        .map_err(|_| bad(format!("{activity} is not a campaign activity id")))?;
    let events = input.events.unwrap_or_default();
    if events.is_empty() {
        return Err(bad("events must list at least one event"));
    }
    let added = a.add_tracking_events(&account, activity, &events)?;
    Ok((StatusCode::CREATED, Json(json!({"added": added}))).into_response())
}

#[derive(Debug, Default, Deserialize)]
struct LimitsIn {
    mode: Option<LimitsMode>,
    per_second: Option<u32>,
    per_day: Option<u32>,
}

async fn get_limits(State(s): State<Arc<Shared>>) -> AdminResult {
    let a = admin(&s);
    ok(json!({"limits": a.limits(), "requests_today": a.requests_today()}))
}

async fn post_limits(State(s): State<Arc<Shared>>, bytes: Bytes) -> AdminResult {
    let input: LimitsIn = body(&bytes)?;
    let a = admin(&s);
    let current = a.limits();
    a.set_limits(
        input.mode.unwrap_or(current.mode),
        input.per_second.unwrap_or(current.per_second),
        input.per_day.unwrap_or(current.per_day),
    );
    get_limits(State(s)).await
}

pub(crate) fn routes(shared: Arc<Shared>) -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/faults",
            post(post_fault).get(get_faults).delete(delete_faults),
        )
        .route("/requests", get(get_requests).delete(delete_requests))
        .route("/effects", get(get_effects))
        .route("/state", get(get_state).delete(delete_state))
        .route("/state/save", post(save_state))
        .route("/seed", post(post_seed))
        .route("/clock", get(get_clock).post(post_clock))
        .route("/accounts", post(post_account))
        .route("/accounts/{id}/refresh_token", post(post_refresh_token))
        .route("/accounts/{id}/revoke", post(post_revoke))
        .route("/accounts/{id}/tokens", post(post_tokens))
        .route("/activities/complete", post(post_complete))
        .route("/activities/rate", post(post_rate))
        .route("/account_emails/confirm", post(post_confirm))
        .route("/segments", post(post_segment))
        .route("/segments/{segment_id}", delete(delete_segment))
        .route("/limits", get(get_limits).post(post_limits))
        .route("/reports", get(get_reports))
        .route(
            "/reports/{campaign_activity_id}/events",
            post(post_tracking_events),
        )
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;

    use axum::body::Body;
    use hyper_util::service::TowerToHyperService;
    use tokio::sync::Notify;

    use crate::gate::ConnCtx;
    use crate::{SandboxOptions, router, start};

    async fn status_from(peer: &str) -> u16 {
        let sandbox = start(SandboxOptions::for_tests()).await.expect("starts");
        let service = TowerToHyperService::new(router::build(sandbox.shared.clone()));
        let mut request = axum::http::Request::get("/__sandbox/clock")
            .header("host", "127.0.0.1")
            .header(
                "authorization",
                format!("Bearer {}", sandbox.credentials().admin_token),
            )
            .body(Body::empty())
            .expect("a request");
        request.extensions_mut().insert(ConnCtx {
            peer: peer.parse::<SocketAddr>().expect("an address"),
            kill: Arc::new(Notify::new()),
        });
        let response = hyper::service::Service::call(&service, request)
            .await
            .expect("infallible");
        response.status().as_u16()
    }

    #[tokio::test]
    async fn the_admin_api_refuses_non_loopback_peers() {
        assert_eq!(status_from("10.1.2.3:5555").await, 403);
        assert_eq!(status_from("127.0.0.1:5555").await, 200);
        assert_eq!(status_from("[::1]:5555").await, 200);
    }
}
