//! The files under deploy/ that query the daemon's series — the Grafana dashboard
//! (deploy/grafana/ctct-sync.json) and the alerting rules (deploy/prometheus/rules.yml) —
//! against a live daemon's `/metrics` after commands and mirror runs: every metric their
//! PromQL names is exposed. And `promtool check metrics` finds nothing to say about the
//! scrape (when promtool is installed; CI installs it).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::api::TestApi;
use crate::support::daemon::TestDaemon;
use crate::support::scrape::{exposed_names, promql_metric_names};

fn deploy_file(path: &str) -> String {
    let file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// Every PromQL expression of the dashboard, with where it is: the panels' targets (rows'
/// nested panels included) and the template variables' queries.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for panel in list.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("(untitled)");
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_else(|| {
                    panic!("panel {title:?}: a target without a PromQL expr: {target}")
                });
                out.push((format!("panel {title:?}"), expr.to_owned()));
            }
            panels(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        let name = variable["name"].as_str().unwrap_or_default();
        let query = match &variable["query"] {
            Value::String(q) => q.clone(),
            other => other["query"].as_str().unwrap_or_default().to_owned(),
        };
        out.push((format!("variable {name:?}"), query));
    }
    out
}

/// Every rule's expression in rules.yml.
fn rule_queries(rules: &str) -> Vec<(String, String)> {
    let doc: serde_norway::Value = serde_norway::from_str(rules).expect("rules.yml is YAML");
    let mut out = Vec::new();
    for group in doc["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .expect("a rule's name");
            let expr = rule["expr"].as_str().expect("a rule's expr");
            out.push((format!("rule {name}"), expr.to_owned()));
        }
    }
    out
}

/// The names each query selects that the scrape does not expose; every query must name
/// at least one metric.
fn unexposed(queries: &[(String, String)], exposed: &BTreeSet<String>) -> Vec<String> {
    let mut missing = Vec::new();
    for (place, expr) in queries {
        let names = promql_metric_names(expr);
        if names.is_empty() {
            missing.push(format!("{place}: names no metric: {expr}"));
        }
        for name in names.iter().filter(|n| !exposed.contains(*n)) {
            missing.push(format!("{place}: {name} (in {expr})"));
        }
    }
    missing
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_alerts_query_is_on_a_live_scrape_and_promtool_finds_it_clean()
 {
    let api = TestApi::start().await;
    crate::mirror::seed(&api, 30);
    let mut d = TestDaemon::start_with_mirror(api, &[]).await;
    // Commands (a success, a rejection that is dead-lettered) and one run of every resource,
    // so that the histograms and the last runs' series have samples.
    d.publish("o-ok", "list.list", json!({})).await;
    d.publish("o-bad", "contact.upsert", json!({"email": "nope"}))
        .await;
    d.publish("o-mirror", "mirror.run", json!({"full": true}))
        .await;
    let ids = ["o-ok".to_owned(), "o-bad".into(), "o-mirror".into()];
    d.results(&ids, Duration::from_secs(60)).await;
    let (status, scrape) = d.ops("/metrics").await;
    assert_eq!(status, 200);
    let exposed = exposed_names(&scrape);

    let dashboard: Value = serde_json::from_str(&deploy_file("grafana/ctct-sync.json"))
        .expect("the dashboard is JSON");
    let panels = dashboard_queries(&dashboard);
    assert!(panels.len() >= 20, "{panels:?}");
    let rows: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .filter_map(|p| p["title"].as_str())
        .collect();
    assert_eq!(
        rows,
        ["Commands and results", "API budget", "Mirror", "Process"]
    );
    let rules = rule_queries(&deploy_file("prometheus/rules.yml"));
    assert!(rules.len() >= 8, "{rules:?}");

    let missing = unexposed(&[panels, rules].concat(), &exposed);
    assert!(
        missing.is_empty(),
        "queried but not exposed:\n{}\n\nscrape:\n{scrape}",
        missing.join("\n")
    );
    // The check itself: a name the daemon does not expose is found.
    assert_eq!(
        unexposed(
            &[("probe".into(), "rate(ctct_mirror_last_run[5m])".into())],
            &exposed
        )
        .len(),
        1
    );

    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Err(error) => {
            println!("promtool check metrics skipped: promtool is not on PATH ({error})")
        }
        Ok(mut child) => {
            child
                .stdin
                .take()
                .expect("promtool's stdin")
                .write_all(scrape.as_bytes())
                .expect("the scrape goes to promtool");
            let out = child.wait_with_output().expect("promtool ends");
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && said.trim().is_empty(),
                "promtool check metrics: {}\n{said}",
                out.status
            );
        }
    }
    d.stop().await;
}
