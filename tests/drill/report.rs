//! After the drill: the figures (RELIABILITY.md §10.7) and the contract's checks — one
//! final result per command, nothing lost, no effect twice, the state the plan implies,
//! dead letters exactly for the bad inputs, no secret in any log.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ctct_sync::command::outcome::Outcome;

use crate::daemons::audit;
use crate::model::{self, ContactView};
use crate::plan::Action;
use crate::run::Drill;

/// Effects that must happen at most once per command.
const ONCE: [&str; 8] = [
    "contact.created",
    "custom_field.created",
    "list.created",
    "campaign.created",
    "schedule.created",
    "import.created",
    "test_send",
    "account_email.created",
];

pub struct Report {
    pub rows: Vec<(&'static str, String)>,
    /// Broken promises; the drill fails when there is any.
    pub failures: Vec<String>,
}

impl Report {
    pub fn table(&self) -> String {
        let mut out = String::from("| Figure | Value |\n|---|---|\n");
        for (figure, value) in &self.rows {
            out.push_str(&format!("| {figure} | {value} |\n"));
        }
        out
    }
}

fn check(failures: &mut Vec<String>, what: &str, problems: &[String]) {
    if !problems.is_empty() {
        let shown: Vec<&String> = problems.iter().take(12).collect();
        failures.push(format!("{what} ({}): {shown:#?}", problems.len()));
    }
}

pub async fn report(drill: &mut Drill, took: Duration) -> Report {
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let plan = &drill.plan;
    let sent: Vec<usize> = (0..plan.steps.len()).filter(|i| drill.sent[*i]).collect();
    let bad_sent = sent
        .iter()
        .filter(|i| plan.steps[**i].action.is_bad())
        .count();
    rows.push((
        "commands sent",
        format!(
            "{} ({} valid, {bad_sent} bad inputs; seed {})",
            sent.len(),
            sent.len() - bad_sent,
            drill.options.seed
        ),
    ));
    check(
        &mut failures,
        "commands not sent (a step they needed failed)",
        &drill
            .skipped
            .iter()
            .map(|(i, why)| format!("{}: {why}", plan.steps[*i].id))
            .collect::<Vec<_>>(),
    );

    // One final result per command; replays counted apart.
    let mut per_id: HashMap<&str, Vec<&ctct_sync::command::outcome::CommandResult>> =
        HashMap::new();
    for result in &drill.link.received {
        if drill.index_of.contains_key(&result.command_id) {
            per_id.entry(&result.command_id).or_default().push(result);
        }
    }
    let mut duplicates = Vec::new();
    let mut inconsistent = Vec::new();
    let mut replays = 0;
    let mut only_replays = 0;
    for (id, results) in &per_id {
        let fresh = results.iter().filter(|r| !r.replayed).count();
        replays += results.len() - fresh;
        // The first publish can die with the broker (unconfirmed, so the command is not
        // acked); the redelivery then brings the stored result, marked replayed.
        only_replays += usize::from(fresh == 0);
        if fresh > 1 {
            duplicates.push(format!("{id}: {fresh} results not marked replayed"));
        }
        if results
            .iter()
            .any(|r| r.outcome != results[0].outcome || r.data != results[0].data)
        {
            inconsistent.push(format!("{id}: copies differ"));
        }
    }
    let lost: Vec<String> = sent
        .iter()
        .map(|i| &plan.steps[*i].id)
        .filter(|id| !per_id.contains_key(id.as_str()))
        .cloned()
        .collect();
    rows.push((
        "final results received",
        format!(
            "{} (at most one not marked replayed per command, copies identical: {})",
            per_id.len(),
            yes(duplicates.is_empty() && inconsistent.is_empty())
        ),
    ));
    rows.push((
        "copies marked `replayed: true`",
        format!(
            "{replays} ({} of them the only copy: the first publish was lost with the broker or a killed daemon, \
             unconfirmed, so the command came back; \
             {} redeliveries to the drill's own results queue ignored)",
            only_replays, drill.link.own_redeliveries
        ),
    ));
    rows.push(("commands lost", lost.len().to_string()));
    check(&mut failures, "commands lost", &lost);
    check(
        &mut failures,
        "commands with more than one result not marked replayed",
        &duplicates,
    );
    check(&mut failures, "results whose copies differ", &inconsistent);

    let mut unexpected = Vec::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for index in &sent {
        let step = &plan.steps[*index];
        let Some(result) = drill.results.get(index) else {
            continue;
        };
        *outcomes
            .entry(result.outcome.as_str().to_owned())
            .or_default() += 1;
        let wanted = if step.action.is_bad() {
            Outcome::Rejected
        } else {
            Outcome::Succeeded
        };
        if result.outcome != wanted {
            unexpected.push(format!(
                "{} {}: {:?} {:?}",
                step.id,
                step.action.command_type(),
                result.outcome,
                result.error.as_ref().map(|e| (&e.code, &e.message))
            ));
        }
    }
    rows.push((
        "outcomes",
        format!(
            "{} (valid → succeeded, bad → rejected: {})",
            outcomes
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", "),
            yes(unexpected.is_empty())
        ),
    ));
    check(&mut failures, "unexpected outcomes", &unexpected);

    // Effects at most once per command.
    let admin = drill.d.api.sandbox.admin();
    let effects = admin.effects();
    let mut once: HashMap<(&str, &str), usize> = HashMap::new();
    let mut by_import: HashMap<&str, usize> = HashMap::new();
    let mut of_bad = Vec::new();
    for effect in &effects {
        match (&effect.command_id, &effect.resource_id) {
            (Some(id), _) if ONCE.contains(&effect.kind.as_str()) => {
                *once.entry((id, &effect.kind)).or_default() += 1;
            }
            (None, Some(resource)) if effect.kind.starts_with("contact.") => {
                *by_import.entry(resource).or_default() += 1;
            }
            _ => {}
        }
        if let Some(index) = effect
            .command_id
            .as_ref()
            .and_then(|id| drill.index_of.get(id))
            && plan.steps[*index].action.is_bad()
        {
            of_bad.push(format!("{}: {}", plan.steps[*index].id, effect.kind));
        }
    }
    let twice: Vec<String> = once
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|((id, kind), n)| format!("{id}: {kind} × {n}"))
        .collect();
    let reimported = by_import.values().filter(|n| **n > 1).count();
    rows.push((
        "duplicate effects (effects log, per command id)",
        format!(
            "{} (of {} effects; {} contacts written again by a repeated bulk import, idempotent)",
            twice.len(),
            effects.len(),
            reimported
        ),
    ));
    check(&mut failures, "duplicate effects", &twice);
    check(&mut failures, "effects of bad inputs", &of_bad);

    // The state the plan implies.
    let expected = model::expected(plan, &drill.cx, &drill.results);
    let snapshot = admin
        .snapshot(&admin.primary_account())
        .expect("the account's snapshot");
    let actual = model::actual(&snapshot);
    let mut differences = model::differences(&expected, &actual);
    for (index, want) in &expected.reads {
        if let Some(result) = drill.results.get(index)
            && result.outcome == Outcome::Succeeded
        {
            let got = ContactView::of(&result.data.as_ref().expect("data")["contact"]);
            if &got != want {
                differences.push(format!(
                    "{} read {got:?}, expected {want:?}",
                    plan.steps[*index].id
                ));
            }
        }
    }
    let api = drill.d.api.api();
    let mut scheduled = 0;
    for campaign in &plan.campaigns {
        if campaign.scheduled_by.is_none() {
            continue;
        }
        scheduled += 1;
        let activity = actual
            .primary_activities
            .get(&campaign.name)
            .cloned()
            .unwrap_or_default();
        let at = drill.cx.scheduled_at(campaign.minute);
        match api.get_campaign_schedules(&activity).await {
            Ok(schedules) if schedules.len() == 1 && schedules[0].scheduled_date == Some(at) => {}
            other => differences.push(format!(
                "campaign {}: schedules {other:?}, expected one at {at}",
                campaign.name
            )),
        }
    }
    rows.push((
        "sandbox state equal to the expected state",
        format!(
            "{} ({} contacts, {} custom fields, {} campaigns of which {scheduled} scheduled, {} reads)",
            yes(differences.is_empty()),
            expected.contacts.len(),
            expected.fields.len(),
            expected.campaigns.len(),
            expected.reads.len()
        ),
    ));
    check(&mut failures, "state differences", &differences);

    // Dead letters: exactly the bad inputs (a copy more when the daemon died between
    // dead-lettering and acking: at least once, like results).
    let dead = drill.link.dead_letter_ids().await;
    let distinct: std::collections::BTreeSet<String> = dead.iter().cloned().collect();
    let bad: std::collections::BTreeSet<String> = sent
        .iter()
        .filter(|i| plan.steps[**i].action.is_bad())
        .map(|i| plan.steps[*i].id.clone())
        .collect();
    rows.push((
        "dead letters",
        format!(
            "{} (bad inputs sent: {}; the same ids: {}; second copies: {})",
            dead.len(),
            bad.len(),
            yes(distinct == bad),
            dead.len() - distinct.len()
        ),
    ));
    if distinct != bad {
        failures.push(format!(
            "dead letters are not the bad inputs: missing {:?}, unexpected {:?}",
            bad.difference(&distinct).collect::<Vec<_>>(),
            distinct.difference(&bad).collect::<Vec<_>>()
        ));
    }

    let f = &drill.figures;
    rows.push((
        "daemon restarts survived",
        format!(
            "{} ({} scheduled SIGKILLs + {} of every daemon for the simulated quota reset); unexpected exits: {}",
            f.kills + f.quota_restarts,
            f.kills,
            f.quota_restarts,
            drill.daemons.unexpected_exits.len()
        ),
    ));
    check(
        &mut failures,
        "daemons that exited by themselves",
        &drill.daemons.unexpected_exits,
    );
    rows.push((
        "broker restarts survived",
        format!(
            "{} (`rabbitmqctl stop_app`, 2 s down, `start_app`)",
            f.broker_restarts
        ),
    ));

    // Faults that struck, from the sandbox's request log.
    let requests = admin.request_log();
    if let Some(dir) = &drill.options.log_dir {
        let lines = |items: Vec<String>| items.join("\n");
        let _ = std::fs::write(
            dir.join("requests.jsonl"),
            lines(
                requests
                    .iter()
                    .map(|r| serde_json::to_string(r).unwrap_or_default())
                    .collect(),
            ),
        );
        let _ = std::fs::write(
            dir.join("effects.jsonl"),
            lines(
                effects
                    .iter()
                    .map(|e| serde_json::to_string(e).unwrap_or_default())
                    .collect(),
            ),
        );
    }
    let mut struck: BTreeMap<String, usize> = BTreeMap::new();
    // 429s no fault asked for: the API's own rate limit (`/v3/`), or the token endpoint's
    // one request a second per client, which the drill provokes on purpose before each
    // `auth import` (its own slot-taking requests and the import's `slow_down` answers).
    let (mut unprompted_api_429, mut token_endpoint_429) = (0, 0);
    for r in &requests {
        let kind = match r.fault.as_deref() {
            None => {
                if r.status == 429 {
                    if r.path.starts_with("/oauth2/") {
                        token_endpoint_429 += 1;
                    } else {
                        unprompted_api_429 += 1;
                    }
                }
                continue;
            }
            Some("status") => format!("5xx ({})", r.status),
            Some(other) => other.to_owned(),
        };
        *struck.entry(kind).or_default() += 1;
    }
    // A request the client gave up on is dropped by the sandbox before it logs it.
    if f.timeouts > 0 {
        struck.insert(
            "timeout (answer after the client's 30 s)".into(),
            f.timeouts as usize,
        );
    }
    let group = |prefix: &str| -> usize {
        struck
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, n)| n)
            .sum()
    };
    rows.push((
        "faults injected (struck), by kind",
        format!(
            "{}; token revocations re-authorised with `auth import`: {} (slow_down answers it rode out: {}); parked for quota and moved back at the reset: {}",
            struck
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            f.reauthorisations,
            f.import_slow_downs,
            f.parked_for_quota
        ),
    ));
    let kinds = [
        "5xx",
        "latency",
        "timeout",
        "drop_connection",
        "throttled",
        "quota_exceeded",
        "revoke_tokens",
    ];
    let missing: Vec<String> = kinds
        .iter()
        .filter(|k| group(k) == 0)
        .map(|k| k.to_string())
        .collect();
    check(&mut failures, "fault kinds that never struck", &missing);
    rows.push((
        "API requests",
        format!(
            "{} ({} limits; 429s not injected: {unprompted_api_429} from the API, {token_endpoint_429} from the token endpoint around re-authorisations)",
            requests.len(),
            match drill.options.per_second {
                0 => "no".to_owned(),
                n => format!("real, {n}/s"),
            }
        ),
    ));

    let logs = audit(&drill.daemons.logs, &drill.secrets);
    rows.push((
        "secrets in the daemons' logs",
        format!(
            "{} ({} secrets looked for in {} files, {} lines, {} at debug/trace)",
            logs.hits.len(),
            drill.secrets.len(),
            logs.files,
            logs.lines,
            logs.debug_lines
        ),
    ));
    check(&mut failures, "secrets in logs", &logs.hits);
    if logs.debug_lines == 0 {
        failures.push("the log capture holds no debug lines".into());
    }
    rows.extend(crate::ha::rows(drill));
    rows.push(("run time", format!("{:.0} s", took.as_secs_f64())));
    rows.push(("events, in order", drill.figures.events.join("; ")));
    Report { rows, failures }
}

fn yes(ok: bool) -> &'static str {
    if ok { "yes" } else { "NO" }
}

/// Every step kind the plan used, counted (for the documentation).
pub fn mix(drill: &Drill) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for step in &drill.plan.steps {
        let name = match &step.action {
            Action::Upsert { bulk: true, .. } => "upsert (bulk path)",
            Action::Upsert { .. } => "upsert",
            Action::FollowUp { .. } => "follow-up upsert",
            Action::Update { by_id: true, .. } => "update by id",
            Action::Update { .. } => "update by e-mail",
            Action::GetContact { .. } => "contact.get",
            Action::FieldCreate { .. } => "custom_field.create",
            Action::FieldRename { .. } => "custom_field.update",
            Action::CampaignCreate { .. } => "campaign.create",
            Action::CampaignSchedule { .. } => "campaign.schedule",
            Action::CampaignGet { .. } => "campaign.get",
            Action::Bad(_) => "bad input",
        };
        *counts.entry(name).or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}
