//! The request log (what reached the sandbox and how it was answered) and the effects log
//! (every state change, tagged with the client's command id so reliability drills can count
//! duplicate effects per command). Both are bounded ring buffers; sequence numbers keep
//! growing so readers can page with `since`.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::clock::{Millis, to_datetime};

/// Oldest entries are dropped past these sizes.
pub(crate) const REQUEST_LOG_CAP: usize = 200_000;
pub(crate) const EFFECT_LOG_CAP: usize = 500_000;

/// One request as the sandbox saw it. Never holds a token, code or secret: query values of
/// OAuth endpoints and of secret-looking parameters are replaced by `***`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub seq: u64,
    /// Sandbox time when the request arrived.
    pub time: DateTime<Utc>,
    pub method: String,
    /// Path plus redacted query.
    pub path: String,
    /// 0 when the connection was dropped on purpose (fault `drop_connection`).
    pub status: u16,
    pub client_id: Option<String>,
    pub account_id: Option<String>,
    pub duration_ms: f64,
    /// The fault kind applied to this request, if any.
    pub fault: Option<String>,
    /// `X-Ctct-Command-Id` (or `Idempotency-Key`, `X-Request-Id`) sent by the client.
    pub command_id: Option<String>,
}

/// One state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effect {
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub account_id: String,
    /// e.g. `contact.created`, `contact.updated`, `contact.deleted`, `custom_field.created`,
    /// `list.created`, `campaign.created`, `campaign_activity.updated`, `schedule.created`,
    /// `schedule.deleted`, `test_send`, `import.created`, `export.created`,
    /// `account_email.created`, `token.refreshed`, `token.family_revoked` (the crate's README.md).
    pub kind: String,
    pub resource_id: Option<String>,
    pub command_id: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    entries: VecDeque<LoggedRequest>,
    next_seq: u64,
}

impl RequestLog {
    pub(crate) fn push(&mut self, mut entry: LoggedRequest) {
        self.next_seq += 1;
        entry.seq = self.next_seq;
        if self.entries.len() >= REQUEST_LOG_CAP {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }

    pub(crate) fn since(&self, since: u64, limit: usize) -> Vec<LoggedRequest> {
        // Sequence numbers only grow, so the first entry after `since` is found by bisection.
        let start = self.entries.partition_point(|e| e.seq <= since);
        self.entries.range(start..).take(limit).cloned().collect()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

#[derive(Debug, Default)]
pub(crate) struct EffectLog {
    entries: VecDeque<Effect>,
    next_seq: u64,
}

impl EffectLog {
    pub(crate) fn push(
        &mut self,
        now: Millis,
        account_id: &str,
        kind: &str,
        resource_id: Option<String>,
        command_id: Option<&str>,
    ) {
        self.next_seq += 1;
        if self.entries.len() >= EFFECT_LOG_CAP {
            self.entries.pop_front();
        }
        self.entries.push_back(Effect {
            seq: self.next_seq,
            time: to_datetime(now),
            account_id: account_id.to_owned(),
            kind: kind.to_owned(),
            resource_id,
            command_id: command_id.map(str::to_owned),
        });
    }

    pub(crate) fn since(&self, since: u64, limit: usize) -> Vec<Effect> {
        let start = self.entries.partition_point(|e| e.seq <= since);
        self.entries.range(start..).take(limit).cloned().collect()
    }

    /// The effects satisfying `keep`, cloning only those.
    pub(crate) fn matching(&self, keep: impl Fn(&Effect) -> bool) -> Vec<Effect> {
        self.entries.iter().filter(|e| keep(e)).cloned().collect()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// Query keys whose values never reach the request log.
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "client_secret",
    "code",
    "code_verifier",
    "device_code",
    "token",
    "password",
];

/// The path plus query as logged: on OAuth paths every value is hidden; elsewhere only the
/// values of secret-looking keys.
pub(crate) fn redact_path(path: &str, query: Option<&str>) -> String {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return path.to_owned();
    };
    let hide_all = path.starts_with("/oauth2/");
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if hide_all || SECRET_KEYS.contains(&k.as_ref()) {
            ser.append_pair(&k, "***");
        } else {
            ser.append_pair(&k, &v);
        }
    }
    format!("{path}?{}", ser.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_query_values_are_never_logged() {
        let logged = redact_path(
            "/oauth2/default/v1/token",
            Some("grant_type=refresh_token&refresh_token=abc"),
        );
        assert!(!logged.contains("abc"));
        assert!(!logged.contains("refresh_token=refresh"));
    }

    #[test]
    fn api_query_values_are_kept_except_secret_keys() {
        let logged = redact_path("/v3/contacts", Some("limit=5&access_token=xyz"));
        assert!(logged.contains("limit=5"));
        assert!(!logged.contains("xyz"));
    }

    #[test]
    fn the_request_log_drops_its_oldest_entries_past_the_cap() {
        let mut log = RequestLog::default();
        let entry = LoggedRequest {
            seq: 0,
            time: DateTime::<Utc>::UNIX_EPOCH,
            method: "GET".into(),
            path: "/".into(),
            status: 200,
            client_id: None,
            account_id: None,
            duration_ms: 0.0,
            fault: None,
            command_id: None,
        };
        for _ in 0..REQUEST_LOG_CAP + 3 {
            log.push(entry.clone());
        }
        let all = log.since(0, usize::MAX);
        assert_eq!(all.len(), REQUEST_LOG_CAP);
        assert_eq!(all[0].seq, 4);
    }
}
