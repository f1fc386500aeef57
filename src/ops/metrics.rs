//! `/metrics`: the Prometheus text format, rendered at scrape time from the counters the
//! daemon keeps anyway (pipeline stats, API counters) and from the store (quota, tokens,
//! mirror runs). Labels only carry bounded values: command types, outcomes, route templates,
//! HTTP statuses, account names, mirror resources.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::process::{self, ProcessFigures};
use super::state::OpsState;
use crate::histogram::{BUCKETS, Buckets};
use crate::mirror::{LastSuccess, Mode, Resource, RunOutcome};
use crate::store::replicas::ReplicaRole;
use crate::store::tokens::AccountState;

struct Out(String);

impl Out {
    fn help(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.0, "{name}");
        if !labels.is_empty() {
            let rendered: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", rendered.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.help(name, kind, help);
        self.sample(name, &[], value);
    }

    fn histograms(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        family: BTreeMap<String, Buckets>,
    ) {
        self.help(name, "histogram", help);
        for (value, buckets) in family {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(buckets.counts.iter()) {
                cumulative += count;
                let le = bound.to_string();
                self.sample(
                    &format!("{name}_bucket"),
                    &[(label, &value), ("le", &le)],
                    cumulative as f64,
                );
            }
            self.sample(
                &format!("{name}_bucket"),
                &[(label, &value), ("le", "+Inf")],
                buckets.count as f64,
            );
            self.sample(
                &format!("{name}_sum"),
                &[(label, &value)],
                buckets.sum_seconds,
            );
            self.sample(
                &format!("{name}_count"),
                &[(label, &value)],
                buckets.count as f64,
            );
        }
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What a daemon that is still starting (waiting for its database) exposes: that it runs,
/// and its version.
pub fn render_starting() -> String {
    let mut out = Out(String::with_capacity(256));
    out.single("ctct_up", "gauge", "1 while the daemon runs.", 1.0);
    out.help("ctct_build_info", "gauge", "The running version.");
    out.sample(
        "ctct_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    process(&mut out, &process::read());
    out.0
}

/// Renders every series.
pub async fn render(state: &OpsState) -> String {
    let mut out = Out(String::with_capacity(8 * 1024));
    out.single("ctct_up", "gauge", "1 while the daemon runs.", 1.0);
    out.help("ctct_build_info", "gauge", "The running version.");
    out.sample(
        "ctct_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );

    if let Some(pipeline) = &state.pipeline {
        let stats = &pipeline.processor.stats;
        out.help(
            "ctct_commands_total",
            "counter",
            "Final results by command type and outcome.",
        );
        for (labels, count) in stats.by_outcome.snapshot() {
            if let [command_type, outcome] = labels.as_slice() {
                out.sample(
                    "ctct_commands_total",
                    &[("type", command_type), ("outcome", outcome)],
                    count as f64,
                );
            }
        }
        out.histograms(
            "ctct_command_duration_seconds",
            "Time from taking a command to its final result.",
            "type",
            stats.duration.snapshot(),
        );
        for (name, help, value) in [
            (
                "ctct_commands_replayed_total",
                "Stored results sent again for redelivered or re-sent commands.",
                &stats.replayed,
            ),
            (
                "ctct_commands_retried_total",
                "Commands sent to a retry queue after a transient failure.",
                &stats.retried,
            ),
            (
                "ctct_commands_parked_total",
                "Commands parked for the daily quota or a re-authorisation.",
                &stats.parked,
            ),
            (
                "ctct_commands_waited_behind_total",
                "Commands that waited behind an earlier one about the same contact.",
                &stats.waited_behind,
            ),
            (
                "ctct_dead_lettered_total",
                "Dead letters: commands ctct-sync dead-lettered (rejected, out of retries) and ones RabbitMQ dead-lettered, once the daemon has answered them.",
                &stats.dead_lettered,
            ),
            (
                "ctct_acks_lost_total",
                "Acks that could not be delivered (the command comes back and is replayed).",
                &stats.ack_lost,
            ),
            (
                "ctct_commands_waited_claimed_total",
                "Deliveries sent to wait because another replica held the command's claim.",
                &stats.waited_claimed,
            ),
            (
                "ctct_commands_yielded_total",
                "Commands given up half-way, before an API write, because another replica had taken their claim over.",
                &stats.yielded,
            ),
        ] {
            out.single(name, "counter", help, value.load(Ordering::Relaxed) as f64);
        }
        out.help(
            "ctct_broker_dead_letters_total",
            "counter",
            "Commands RabbitMQ dead-lettered before ctct-sync gave a verdict, by reason (delivery_limit, expired, rejected, maxlen, other).",
        );
        for (labels, count) in stats.broker_dead_letters.snapshot() {
            if let [reason] = labels.as_slice() {
                out.sample(
                    "ctct_broker_dead_letters_total",
                    &[("reason", reason)],
                    count as f64,
                );
            }
        }
        out.help(
            "ctct_results_unrouted_total",
            "counter",
            "Results the broker returned as unroutable, kept in amqp.unrouted_queue (kind: results exchange or reply_to).",
        );
        for (kind, value) in [
            ("results", &stats.unrouted_results),
            ("reply", &stats.unrouted_replies),
        ] {
            out.sample(
                "ctct_results_unrouted_total",
                &[("kind", kind)],
                value.load(Ordering::Relaxed) as f64,
            );
        }
        out.single(
            "ctct_commands_waiting",
            "gauge",
            "Commands out waiting (retry or parking) that later ones about the same contact wait behind.",
            pipeline.processor.held.waiting() as f64,
        );
        out.single(
            "ctct_amqp_connected",
            "gauge",
            "1 while the broker session is up.",
            if pipeline.status.connected.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            },
        );
        let role = pipeline.processor.replica.role();
        out.help(
            "ctct_replica_role",
            "gauge",
            "1 for this replica's role: active (it consumes the command queue) or standby (docs/scaling.md).",
        );
        for candidate in [ReplicaRole::Active, ReplicaRole::Standby] {
            out.sample(
                "ctct_replica_role",
                &[("role", candidate.as_str())],
                if candidate == role { 1.0 } else { 0.0 },
            );
        }
        let health = &pipeline.processor.store_health;
        out.single(
            "ctct_store_healthy",
            "gauge",
            "1 while the store takes work; 0 while it fails and commands wait in the queue.",
            if health.is_failing() { 0.0 } else { 1.0 },
        );
        out.single(
            "ctct_store_failures_total",
            "counter",
            "Store outages: times a store failure stopped the pipeline taking commands.",
            health.failures() as f64,
        );
        out.single(
            "ctct_amqp_reconnects_total",
            "counter",
            "Broker sessions lost and rebuilt.",
            pipeline.status.reconnects.load(Ordering::Relaxed) as f64,
        );
    }

    let counters = state.client.counters();
    out.help(
        "ctct_api_requests_total",
        "counter",
        "API answers by route template and HTTP status (0: no answer).",
    );
    for (labels, count) in counters.by_route.snapshot() {
        if let [route, status] = labels.as_slice() {
            out.sample(
                "ctct_api_requests_total",
                &[("route", route), ("status", status)],
                count as f64,
            );
        }
    }
    out.histograms(
        "ctct_api_request_duration_seconds",
        "API request latency by route template.",
        "route",
        counters.latency.snapshot(),
    );
    out.single(
        "ctct_api_retries_total",
        "counter",
        "API requests sent again by the retry policy.",
        counters.retries.load(Ordering::Relaxed) as f64,
    );
    out.single(
        "ctct_api_throttled_total",
        "counter",
        "429 throttled answers.",
        counters.throttled.load(Ordering::Relaxed) as f64,
    );
    out.single(
        "ctct_token_requests_total",
        "counter",
        "Requests to the token endpoint (refreshes, code and device exchanges).",
        state.client.tokens().token_requests() as f64,
    );

    if let Ok(budget) = state.client.budget().snapshot().await {
        out.single(
            "ctct_quota_limit",
            "gauge",
            "Requests allowed today for the API key.",
            f64::from(budget.per_day),
        );
        out.single(
            "ctct_quota_used",
            "gauge",
            "Requests counted today: spent, plus held by running processes (an upper bound of those sent).",
            f64::from(budget.used),
        );
        out.single(
            "ctct_quota_remaining",
            "gauge",
            "Requests left in today's budget.",
            f64::from(budget.remaining),
        );
        out.single(
            "ctct_quota_exhausted",
            "gauge",
            "1 when today's quota is spent.",
            if budget.exhausted { 1.0 } else { 0.0 },
        );
        out.single(
            "ctct_quota_resets_at_timestamp_seconds",
            "gauge",
            "When the quota resets (00:00 UTC).",
            budget.resets_at.timestamp() as f64,
        );
    }

    let now = Utc::now();
    if let Ok(accounts) = state.client.tokens().accounts().await {
        out.help(
            "ctct_token_expires_in_seconds",
            "gauge",
            "Seconds until the account's access token expires (refreshed ahead).",
        );
        for row in &accounts {
            let left = row
                .access_expires_at
                .map(|t| (t - now).num_seconds())
                .unwrap_or(0);
            out.sample(
                "ctct_token_expires_in_seconds",
                &[("account", &row.account)],
                left as f64,
            );
        }
        out.help(
            "ctct_account_reauth_required",
            "gauge",
            "1 when the account needs a person to authorise it again.",
        );
        for row in &accounts {
            let lost = row.state == AccountState::ReauthRequired;
            out.sample(
                "ctct_account_reauth_required",
                &[("account", &row.account)],
                if lost { 1.0 } else { 0.0 },
            );
        }
        let lost = accounts
            .iter()
            .filter(|r| r.state == AccountState::ReauthRequired)
            .count();
        out.single(
            "ctct_accounts_reauth_required",
            "gauge",
            "Accounts needing re-authorisation.",
            lost as f64,
        );
    }

    mirror(&mut out, state, now).await;
    process(&mut out, &process::read());
    out.0
}

/// The mirror's series: runs this process made by outcome, and the last successful run of
/// each resource and mode from the mirror store (when it answers).
async fn mirror(out: &mut Out, state: &OpsState, now: DateTime<Utc>) {
    out.help(
        "ctct_mirror_runs_total",
        "counter",
        "Mirror runs this process made (schedule, mirror.run), by resource and outcome.",
    );
    let counted = state.mirror.run_outcomes();
    for resource in Resource::ALL {
        for outcome in RunOutcome::ALL {
            let key = vec![resource.as_str().to_owned(), outcome.as_str().to_owned()];
            out.sample(
                "ctct_mirror_runs_total",
                &[
                    ("resource", resource.as_str()),
                    ("outcome", outcome.as_str()),
                ],
                counted.get(&key).copied().unwrap_or(0) as f64,
            );
        }
    }

    let Ok(runs) = state.mirror.db().last_successes().await else {
        return;
    };
    // Every resource in every mode it runs in, from the start: 0 until its first success,
    // so that an alert on the time since the last success fires for a mirror that never
    // finished a run.
    let mut last: BTreeMap<(String, String), Option<&LastSuccess>> = BTreeMap::new();
    for resource in Resource::ALL {
        last.insert((resource.as_str().into(), Mode::Full.as_str().into()), None);
        if resource.scheduled_hourly() {
            last.insert(
                (resource.as_str().into(), Mode::Incremental.as_str().into()),
                None,
            );
        }
    }
    for run in &runs {
        last.insert((run.resource.clone(), run.mode.clone()), Some(run));
    }
    out.help(
        "ctct_mirror_last_success_timestamp_seconds",
        "gauge",
        "When the last successful mirror run of a resource finished (0: none yet).",
    );
    for ((resource, mode), run) in &last {
        out.sample(
            "ctct_mirror_last_success_timestamp_seconds",
            &[("resource", resource), ("mode", mode)],
            run.map_or(0.0, |r| r.finished_at.timestamp() as f64),
        );
    }
    out.help(
        "ctct_mirror_lag_seconds",
        "gauge",
        "Seconds since the last successful mirror run of a resource (absent until its first).",
    );
    for run in &runs {
        out.sample(
            "ctct_mirror_lag_seconds",
            &[("resource", &run.resource), ("mode", &run.mode)],
            (now - run.finished_at).num_seconds() as f64,
        );
    }
    out.help(
        "ctct_mirror_last_run_pages",
        "gauge",
        "Pages (or export batches) the last successful mirror run of a resource wrote.",
    );
    for run in &runs {
        out.sample(
            "ctct_mirror_last_run_pages",
            &[("resource", &run.resource), ("mode", &run.mode)],
            run.pages as f64,
        );
    }
    out.help(
        "ctct_mirror_last_run_rows",
        "gauge",
        "Rows the last successful mirror run of a resource upserted or deleted (kind).",
    );
    for run in &runs {
        for (kind, rows) in [
            ("upserted", run.rows_upserted),
            ("deleted", run.rows_deleted),
        ] {
            out.sample(
                "ctct_mirror_last_run_rows",
                &[
                    ("resource", &run.resource),
                    ("mode", &run.mode),
                    ("kind", kind),
                ],
                rows as f64,
            );
        }
    }
    out.help(
        "ctct_mirror_last_run_api_requests",
        "gauge",
        "API requests the last successful mirror run of a resource made.",
    );
    for run in &runs {
        out.sample(
            "ctct_mirror_last_run_api_requests",
            &[("resource", &run.resource), ("mode", &run.mode)],
            run.api_requests as f64,
        );
    }
}

/// The process's own series, those `/proc/self` gave.
fn process(out: &mut Out, figures: &ProcessFigures) {
    for (name, kind, help, value) in [
        (
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            figures.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            figures.resident_memory_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            figures.virtual_memory_bytes,
        ),
        (
            "process_open_fds",
            "gauge",
            "Open file descriptors.",
            figures.open_fds,
        ),
        (
            "process_max_fds",
            "gauge",
            "The limit on open file descriptors.",
            figures.max_fds,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "When the process started, in seconds since the Unix epoch.",
            figures.start_time_seconds,
        ),
    ] {
        if let Some(value) = value {
            out.single(name, kind, help, value);
        }
    }
}
