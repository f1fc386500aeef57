//! Fault injection: what can go wrong (`FaultKind`), which requests it hits (`FaultSpec`:
//! the next N matching requests or a seeded share of them, optionally narrowed by method and
//! path prefix) and whether it strikes before the request takes effect or after
//! (`after_effect`: the write happened but the reply was lost or delayed).

use serde::{Deserialize, Serialize};

use super::rng::SplitMix64;

/// What happens to a matching request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this 5xx status (500, 502, 503 or 504) and a real-ish body.
    Status { status: u16 },
    /// Delay the answer by this many milliseconds.
    Latency { ms: u64 },
    /// Close the TCP connection without a complete answer (the client sees a transport error).
    DropConnection,
    /// 429 `throttled`.
    Throttled,
    /// 429 `quota_exceeded`.
    QuotaExceeded,
    /// Revoke the token family of the presented token: 401 now, `invalid_grant` on refresh.
    RevokeTokens,
}

impl FaultKind {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            FaultKind::Status { .. } => "status",
            FaultKind::Latency { .. } => "latency",
            FaultKind::DropConnection => "drop_connection",
            FaultKind::Throttled => "throttled",
            FaultKind::QuotaExceeded => "quota_exceeded",
            FaultKind::RevokeTokens => "revoke_tokens",
        }
    }
}

/// A fault plus its selector. JSON form (admin API):
/// `{"kind":"status","status":503,"count":2,"method":"POST","path_prefix":"/v3/contacts"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultSpec {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Strike the next `count` matching requests (default 1 when `ratio` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Strike this share (0–1) of matching requests, drawn from a seeded generator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// Seed of the ratio draws (default: the sandbox seed mixed with the fault id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Only requests with this method (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Only requests whose path starts with this (e.g. `/v3/contacts`, `/oauth2/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Apply the request's effect first, then fail, drop or delay the answer.
    #[serde(default)]
    pub after_effect: bool,
}

impl FaultSpec {
    /// A fault for the next matching request.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            count: None,
            ratio: None,
            seed: None,
            method: None,
            path_prefix: None,
            after_effect: false,
        }
    }

    pub fn status(status: u16) -> Self {
        Self::new(FaultKind::Status { status })
    }

    pub fn latency(ms: u64) -> Self {
        Self::new(FaultKind::Latency { ms })
    }

    pub fn drop_connection() -> Self {
        Self::new(FaultKind::DropConnection)
    }

    pub fn throttled() -> Self {
        Self::new(FaultKind::Throttled)
    }

    pub fn quota_exceeded() -> Self {
        Self::new(FaultKind::QuotaExceeded)
    }

    pub fn revoke_tokens() -> Self {
        Self::new(FaultKind::RevokeTokens)
    }

    /// Strike the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.count = Some(n);
        self
    }

    /// Strike a seeded share of matching requests until cleared (or `times` runs out).
    pub fn ratio(mut self, ratio: f64, seed: u64) -> Self {
        self.ratio = Some(ratio);
        self.seed = Some(seed);
        self
    }

    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_owned());
        self
    }

    pub fn path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_owned());
        self
    }

    pub fn after_effect(mut self) -> Self {
        self.after_effect = true;
        self
    }

    /// Checks the spec; the message names the problem.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if let FaultKind::Status { status } = self.kind
            && !matches!(status, 500 | 502 | 503 | 504)
        {
            return Err(format!("status must be 500, 502, 503 or 504, got {status}"));
        }
        if let FaultKind::Latency { ms } = self.kind
            && ms > 3_600_000
        {
            return Err(format!("latency must be at most 3,600,000 ms, got {ms}"));
        }
        if let Some(ratio) = self.ratio
            && !(0.0..=1.0).contains(&ratio)
        {
            return Err(format!("ratio must be between 0 and 1, got {ratio}"));
        }
        if self.count == Some(0) {
            return Err("count must be at least 1".into());
        }
        Ok(())
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
    }
}

#[derive(Debug)]
struct ActiveFault {
    id: u64,
    spec: FaultSpec,
    remaining: Option<u32>,
    rng: SplitMix64,
}

/// The installed faults, consulted in installation order; at most one strikes per request.
#[derive(Debug, Default)]
pub(crate) struct FaultTable {
    next_id: u64,
    active: Vec<ActiveFault>,
}

impl FaultTable {
    pub(crate) fn install(&mut self, spec: FaultSpec, sandbox_seed: u64) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        let seed = spec
            .seed
            .unwrap_or(sandbox_seed ^ id.wrapping_mul(0x9E37_79B9));
        let remaining = match (spec.count, spec.ratio) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) => Some(1),
        };
        self.active.push(ActiveFault {
            id,
            spec,
            remaining,
            rng: SplitMix64::new(seed),
        });
        id
    }

    /// The fault striking this request, if any (consumes one use of it).
    pub(crate) fn take(&mut self, method: &str, path: &str) -> Option<FaultSpec> {
        let mut hit = None;
        for (index, fault) in self.active.iter_mut().enumerate() {
            if !fault.spec.matches(method, path) {
                continue;
            }
            if let Some(ratio) = fault.spec.ratio
                && !fault.rng.chance(ratio)
            {
                continue;
            }
            hit = Some(index);
            break;
        }
        let index = hit?;
        let fault = &mut self.active[index];
        let spec = fault.spec.clone();
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining -= 1;
            if *remaining == 0 {
                self.active.remove(index);
            }
        }
        Some(spec)
    }

    pub(crate) fn list(&self) -> Vec<(u64, FaultSpec, Option<u32>)> {
        self.active
            .iter()
            .map(|f| (f.id, f.spec.clone(), f.remaining))
            .collect()
    }

    pub(crate) fn clear(&mut self) {
        self.active.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_fault_strikes_exactly_n_matching_requests() {
        let mut table = FaultTable::default();
        table.install(FaultSpec::status(503).times(2).method("post"), 1);
        assert!(table.take("GET", "/v3/contacts").is_none());
        assert!(table.take("POST", "/v3/contacts").is_some());
        assert!(table.take("POST", "/v3/contacts").is_some());
        assert!(table.take("POST", "/v3/contacts").is_none());
    }

    #[test]
    fn a_ratio_fault_is_reproducible_for_a_seed() {
        let draw = || {
            let mut table = FaultTable::default();
            table.install(FaultSpec::throttled().ratio(0.3, 42), 1);
            (0..200)
                .map(|_| table.take("GET", "/v3/x").is_some())
                .collect::<Vec<_>>()
        };
        let first = draw();
        assert_eq!(first, draw());
        let hits = first.iter().filter(|h| **h).count();
        assert!((30..=90).contains(&hits), "hits {hits}");
    }

    #[test]
    fn the_path_prefix_narrows_a_fault() {
        let mut table = FaultTable::default();
        table.install(FaultSpec::drop_connection().path_prefix("/v3/emails"), 1);
        assert!(table.take("GET", "/v3/contacts").is_none());
        assert!(table.take("GET", "/v3/emails/x").is_some());
    }

    #[test]
    fn faults_serialise_flat_with_a_kind_tag() {
        let spec = FaultSpec::status(502).times(3).after_effect();
        let json = serde_json::to_value(&spec).expect("serialises");
        assert_eq!(json["kind"], "status");
        assert_eq!(json["status"], 502);
        let back: FaultSpec = serde_json::from_value(json).expect("parses");
        assert_eq!(back, spec);
        let parsed: FaultSpec =
            serde_json::from_str(r#"{"kind":"latency","ms":250}"#).expect("parses");
        assert_eq!(parsed.kind, FaultKind::Latency { ms: 250 });
        assert!(FaultSpec::status(404).validate().is_err());
        assert!(FaultSpec::latency(u64::MAX).validate().is_err());
    }
}
