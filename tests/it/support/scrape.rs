//! Reading a `/metrics` scrape (the Prometheus text format) and the metric names a PromQL
//! expression selects, for the tests of the series and of the files under deploy/ that
//! query them.

use std::collections::BTreeSet;

/// The value of one sample, written exactly as the scrape writes it: `name` or
/// `name{label="value",…}` with the labels in the daemon's order.
pub fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Every name a PromQL selector can match in the scrape: the samples' names, and the names
/// the `# TYPE` lines declare even without samples (a counter family with no label set
/// yet; a histogram's `_bucket`, `_sum` and `_count`).
pub fn exposed_names(body: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in body.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let mut parts = declared.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            if kind == "histogram" {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            } else {
                names.insert(name.to_owned());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// Words of PromQL that are not metrics: keywords, and the aggregation operators (which
/// may stand before `by`/`without` rather than their parenthesis).
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression selects. Label matchers (`{…}`), ranges and
/// subqueries (`[…]`), strings, numbers and durations, function and aggregation names (a
/// word before `(`), keywords and the label lists of `by`, `without`, `on`, `ignoring`,
/// `group_left` and `group_right` are not names. Grafana's `label_values(metric, label)`
/// gives its metric only.
pub fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // The previous word, when it was a keyword opening a label list or label_values.
    let mut pending_list: Option<String> = None;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    if chars[i] == '\\' && c != '`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if chars[i] == '"' {
                        i += 1;
                        while i < chars.len() && chars[i] != '"' {
                            if chars[i] == '\\' {
                                i += 1;
                            }
                            i += 1;
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' => {
                match pending_list.take().as_deref() {
                    // A list of label names: skip to its close.
                    Some(keyword) if LABEL_LISTS.contains(&keyword) => {
                        while i < chars.len() && chars[i] != ')' {
                            i += 1;
                        }
                        i += 1;
                    }
                    // label_values(metric, label): the metric, then skip the label.
                    Some("label_values") => {
                        let close = chars[i..]
                            .iter()
                            .position(|&c| c == ')')
                            .map_or(chars.len(), |p| i + p);
                        let inner: String = chars[i + 1..close].iter().collect();
                        let metric = inner.split(',').next().unwrap_or("");
                        if inner.contains(',') {
                            names.extend(promql_metric_names(metric));
                        }
                        i = close + 1;
                    }
                    _ => i += 1,
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                // A number (1e3, 0x1f, 26.5) or a duration (5m, 1h30m): one token.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            '$' => {
                // A Grafana variable ($__rate_interval, ${account}) outside a matcher.
                i += 1;
                if i < chars.len() && chars[i] == '{' {
                    while i < chars.len() && chars[i] != '}' {
                        i += 1;
                    }
                    i += 1;
                } else {
                    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let called = next < chars.len() && chars[next] == '(';
                let lower = word.to_ascii_lowercase();
                if LABEL_LISTS.contains(&lower.as_str()) || lower == "label_values" {
                    pending_list = Some(lower);
                } else if called || KEYWORDS.contains(&lower.as_str()) {
                    pending_list = None;
                } else {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn promql_names_leave_out_functions_labels_strings_and_durations() {
    let names = |e: &str| promql_metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le, type) (rate(ctct_command_duration_seconds_bucket{type=~"contact.*"}[$__rate_interval])))"#
        ),
        ["ctct_command_duration_seconds_bucket"]
    );
    assert_eq!(
        names(
            "time() - max without (instance) (ctct_mirror_last_success_timestamp_seconds{mode=\"full\"}) > 26 * 3600"
        ),
        ["ctct_mirror_last_success_timestamp_seconds"]
    );
    assert_eq!(
        names(
            "process_open_fds / on (instance) group_left() process_max_fds and ignoring(kind) ctct_up offset 5m > bool 1e3"
        ),
        ["ctct_up", "process_max_fds", "process_open_fds"]
    );
    assert_eq!(
        names("label_values(ctct_token_expires_in_seconds, account)"),
        ["ctct_token_expires_in_seconds"]
    );
    assert_eq!(
        names("sum by (type) (increase(ctct_commands_total[1h:5m])) / count without (x) (ctct_up)"),
        ["ctct_commands_total", "ctct_up"]
    );
    assert_eq!(
        names("sum(increase(ctct_commands_total[1h:5m]))"),
        ["ctct_commands_total"]
    );
}

#[test]
fn exposed_names_count_declared_families_and_histogram_series() {
    let body = "# HELP a_total A.\n# TYPE a_total counter\n\
                # TYPE h_seconds histogram\nh_seconds_bucket{le=\"+Inf\"} 1\n\
                g{x=\"y z\"} 2\n";
    let names: Vec<_> = exposed_names(body).into_iter().collect();
    assert_eq!(
        names,
        [
            "a_total",
            "g",
            "h_seconds_bucket",
            "h_seconds_count",
            "h_seconds_sum"
        ]
    );
    assert_eq!(value(body, "g{x=\"y z\"}"), Some(2.0));
    assert_eq!(value(body, "g"), None);
}
