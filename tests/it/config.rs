//! Configuration layering: defaults → file → environment, unknown keys and bad values
//! refused with the key named, secrets redacted everywhere they could leak.

use std::collections::HashMap;
use std::path::Path;

use ctct_sync::config::{LogFormat, Settings};

use crate::support;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn defaults_load_with_the_documented_values() {
    let settings = Settings::load(None, HashMap::new()).expect("defaults are valid");
    assert_eq!(settings.amqp.commands_queue, "ctct.commands");
    assert_eq!(settings.amqp.results_exchange, "ctct.results");
    assert_eq!(settings.amqp.dead_letter_queue, "ctct.commands.dead");
    assert_eq!(
        settings.amqp.url.expose(),
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    );
    assert_eq!(settings.api.base_url, "https://api.cc.email/v3");
    let state = settings.state_store().expect("the default state store");
    assert_eq!(state.sqlite_path(), Some(Path::new("data/ctct-sync.db")));
    let mirror = settings.mirror_store().expect("the default mirror store");
    assert_eq!(
        mirror.sqlite_path(),
        Some(Path::new("data/ctct-mirror.db")),
        "beside the state's file"
    );
    assert_eq!(settings.store.schema, "ctct_state");
    assert_eq!(settings.mirror.schema, "ctct_mirror");
    assert_eq!(settings.store.ledger_retention_days, 30);
    assert_eq!(settings.limits.per_second, 4);
    assert_eq!(settings.limits.per_day, 10_000);
    assert_eq!(settings.mirror.schedule, "0 0 2 * * *");
    assert_eq!(settings.mirror.reports.days, 30);
    assert!((settings.mirror.reports.share - 0.2).abs() < 1e-9);
    assert_eq!(settings.log.format, LogFormat::Text);
    assert!(!settings.oauth.is_configured());
    // The ops listener (metrics, health) answers only this host unless told otherwise.
    assert!(settings.ops.listen.ip().is_loopback());
    assert_eq!(settings.ops.listen.port(), 9464);
}

#[test]
fn a_file_layers_over_the_defaults_and_keeps_keys_it_does_not_set() {
    let dir = support::temp_dir();
    let file = dir.path().join("local.toml");
    std::fs::write(
        &file,
        "[limits]\nper_day = 5000\n\n[log]\nformat = \"json\"\n",
    )
    .unwrap();
    let settings = Settings::load(Some(&file), HashMap::new()).expect("file layer is valid");
    assert_eq!(settings.limits.per_day, 5000);
    assert_eq!(
        settings.limits.per_second, 4,
        "keys not in the file keep their default"
    );
    assert_eq!(settings.log.format, LogFormat::Json);
}

#[test]
fn the_environment_overrides_both_the_defaults_and_the_file() {
    let dir = support::temp_dir();
    let file = dir.path().join("local.toml");
    std::fs::write(&file, "[limits]\nper_day = 5000\nper_second = 2\n").unwrap();
    let settings = Settings::load(
        Some(&file),
        env(&[
            ("CTCT_SYNC__LIMITS__PER_DAY", "1234"),
            ("CTCT_SYNC__AMQP__COMMANDS_QUEUE", "team.commands"),
            ("CTCT_SYNC__STORE__PATH", "/var/lib/ctct-sync/db.sqlite"),
            ("UNRELATED_VARIABLE", "ignored"),
        ]),
    )
    .expect("env layer is valid");
    assert_eq!(settings.limits.per_day, 1234, "env beats file");
    assert_eq!(settings.limits.per_second, 2, "file beats default");
    assert_eq!(settings.amqp.commands_queue, "team.commands");
    assert_eq!(
        settings.state_store().unwrap().sqlite_path(),
        Some(Path::new("/var/lib/ctct-sync/db.sqlite")),
        "store.path still names the state's file"
    );
    assert_eq!(
        settings.mirror_store().unwrap().sqlite_path(),
        Some(Path::new("/var/lib/ctct-sync/ctct-mirror.db"))
    );
}

#[test]
fn an_unknown_key_in_a_file_is_refused_with_its_name() {
    let dir = support::temp_dir();
    let file = dir.path().join("local.toml");
    std::fs::write(&file, "[limits]\nper_secnd = 3\n").unwrap();
    let error = Settings::load(Some(&file), HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(error.contains("per_secnd"), "{error}");
    assert!(error.contains("limits"), "{error}");
    assert!(
        error.contains("per_second"),
        "names what was expected: {error}"
    );
}

#[test]
fn an_unknown_section_in_the_environment_is_refused_with_its_name() {
    let error = Settings::load(None, env(&[("CTCT_SYNC__LIMITZ__PER_DAY", "5")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("limitz"), "{error}");
}

#[test]
fn a_value_of_the_wrong_type_is_refused_naming_key_value_and_expectation() {
    let error = Settings::load(None, env(&[("CTCT_SYNC__LIMITS__PER_DAY", "lots")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("limits.per_day"), "{error}");
    assert!(error.contains("lots"), "{error}");
    assert!(error.contains("integer"), "{error}");
}

#[test]
fn out_of_range_and_malformed_values_are_refused_naming_key_value_and_expectation() {
    let cases = [
        (
            "CTCT_SYNC__LIMITS__PER_SECOND",
            "0",
            "limits.per_second",
            "1 to 100000",
        ),
        (
            "CTCT_SYNC__LIMITS__MIRROR_SHARE",
            "1.5",
            "limits.mirror_share",
            "0.0 to 1.0",
        ),
        (
            "CTCT_SYNC__LIMITS__PER_DAY",
            "0",
            "limits.per_day",
            "above 0",
        ),
        (
            "CTCT_SYNC__MIRROR__REPORTS__DAYS",
            "400",
            "mirror.reports.days",
            "0 for the aggregate statistics only",
        ),
        (
            "CTCT_SYNC__MIRROR__REPORTS__SHARE",
            "1.2",
            "mirror.reports.share",
            "within limits.mirror_share",
        ),
        (
            "CTCT_SYNC__STORE__LEDGER_RETENTION_DAYS",
            "5000",
            "store.ledger_retention_days",
            "0 to keep every finished command",
        ),
        (
            "CTCT_SYNC__API__BASE_URL",
            "api.cc.email/v3",
            "api.base_url",
            "http(s) URL",
        ),
        (
            "CTCT_SYNC__OAUTH__TOKEN_URL",
            "ftp://x/token",
            "oauth.token_url",
            "http(s) URL",
        ),
        (
            "CTCT_SYNC__MIRROR__SCHEDULE",
            "0 2 * * *",
            "mirror.schedule",
            "6-field cron",
        ),
        (
            "CTCT_SYNC__AMQP__COMMANDS_QUEUE",
            "amq.mine",
            "amqp.commands_queue",
            "amq.",
        ),
        ("CTCT_SYNC__LOG__FORMAT", "yaml", "log.format", "text"),
        (
            "CTCT_SYNC__AMQP__URL",
            "http://guest:hunter2@x",
            "amqp.url",
            "AMQP URI",
        ),
    ];
    for (var, value, key, expected) in cases {
        let error = Settings::load(None, env(&[(var, value)]))
            .expect_err(&format!("{var}={value} must be refused"))
            .to_string();
        assert!(error.contains(key), "{var}={value}: {error}");
        assert!(error.contains(expected), "{var}={value}: {error}");
        if key != "amqp.url" && key != "log.format" {
            assert!(error.contains(value), "{var}={value}: {error}");
        }
        assert!(!error.contains("hunter2"), "a secret leaked: {error}");
    }
}

#[test]
fn client_id_without_client_secret_is_refused() {
    let error = Settings::load(None, env(&[("CTCT_SYNC__OAUTH__CLIENT_ID", "abc")]))
        .unwrap_err()
        .to_string();
    assert!(error.contains("oauth.client_secret"), "{error}");
}

#[test]
fn secrets_never_show_in_debug_or_in_the_printed_configuration() {
    let settings = Settings::load(
        None,
        env(&[
            ("CTCT_SYNC__OAUTH__CLIENT_ID", "my-api-key"),
            ("CTCT_SYNC__OAUTH__CLIENT_SECRET", "very-secret-value"),
            (
                "CTCT_SYNC__AMQP__URL",
                "amqp://svc:broker-password@mq:5672/%2f",
            ),
        ]),
    )
    .expect("valid");
    assert!(settings.oauth.is_configured());
    let debug = format!("{settings:?}");
    let printed = settings.to_redacted_toml();
    for text in [&debug, &printed] {
        assert!(!text.contains("very-secret-value"), "{text}");
        assert!(!text.contains("broker-password"), "{text}");
        assert!(
            text.contains("my-api-key"),
            "non-secret values stay visible: {text}"
        );
    }
    assert!(
        printed.contains("client_secret = \"[redacted]\""),
        "{printed}"
    );
    assert!(printed.contains("amqp://svc:***@mq:5672/%2f"), "{printed}");
    // The printed form is itself a valid configuration file (secrets left to the environment).
    let reparsed: toml::Value = toml::from_str(&printed).expect("printed config is TOML");
    assert!(reparsed.get("limits").is_some());
}

#[test]
fn the_config_subcommand_prints_layered_settings_with_secrets_redacted() {
    let dir = support::temp_dir();
    std::fs::write(dir.path().join("site.toml"), "[limits]\nper_day = 777\n").unwrap();
    let output = support::ctct_sync_command(dir.path())
        .args(["--config", "site.toml", "config"])
        .env("CTCT_SYNC__OAUTH__CLIENT_ID", "id-1")
        .env("CTCT_SYNC__OAUTH__CLIENT_SECRET", "s3cr3t-xyz")
        .output()
        .expect("binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("per_day = 777"), "{stdout}");
    assert!(
        stdout.contains("client_secret = \"[redacted]\""),
        "{stdout}"
    );
    assert!(!stdout.contains("s3cr3t-xyz") && !stderr.contains("s3cr3t-xyz"));
}

#[test]
fn the_config_subcommand_fails_clearly_on_a_bad_value() {
    let dir = support::temp_dir();
    let output = support::ctct_sync_command(dir.path())
        .arg("config")
        .env("CTCT_SYNC__LIMITS__PER_SECOND", "fast")
        .output()
        .expect("binary runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("limits.per_second") && stderr.contains("fast"),
        "{stderr}"
    );
}

#[test]
fn the_readme_s_cargo_run_starts_ctct_sync_in_a_workspace_of_three_packages() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains("cargo run --release -- run --sandbox"));
    assert!(readme.contains("cargo test --workspace --locked"));
    for binary in [
        "crates/ctct-sandbox/src/main.rs",
        "crates/ctct-bench/src/main.rs",
    ] {
        assert!(
            root.join(binary).exists(),
            "{binary}: another binary of the workspace"
        );
    }
    assert!(
        manifest
            .lines()
            .any(|line| line.replace(' ', "") == "default-members=[\".\"]"),
        "without default-members, `cargo run` at the top cannot choose between ctct-sync, ctct-sandbox and ctct-bench"
    );
}

#[test]
fn reply_to_prefixes_default_to_the_safe_set_and_a_given_list_replaces_it() {
    let defaults = Settings::load(None, HashMap::new()).unwrap();
    assert_eq!(
        defaults.amqp.reply_to_prefixes,
        ["amq.gen-", "amq.rabbitmq.reply-to.", "ctct.reply."]
    );
    assert_eq!(defaults.amqp.unrouted_queue, "ctct.results.unrouted");
    let dir = support::temp_dir();
    for (toml, expected) in [
        ("[\"app.replies.\"]", vec!["app.replies."]),
        ("[\"*\"]", vec!["*"]),
        ("[]", vec![]),
    ] {
        let file = dir.path().join("replies.toml");
        std::fs::write(&file, format!("[amqp]\nreply_to_prefixes = {toml}\n")).unwrap();
        let settings = Settings::load(Some(&file), HashMap::new()).expect(toml);
        assert_eq!(settings.amqp.reply_to_prefixes, expected, "{toml}");
    }
    let from_env = Settings::load(
        None,
        env(&[(
            "CTCT_SYNC__AMQP__REPLY_TO_PREFIXES",
            "amq.gen-,app.replies.",
        )]),
    )
    .unwrap();
    assert_eq!(
        from_env.amqp.reply_to_prefixes,
        ["amq.gen-", "app.replies."]
    );
    let empty = Settings::load(
        None,
        env(&[("CTCT_SYNC__AMQP__REPLY_TO_PREFIXES", "amq.gen-,,x.")]),
    )
    .expect_err("an empty prefix is refused");
    assert!(
        empty.to_string().contains("amqp.reply_to_prefixes"),
        "{empty}"
    );
    let bad_name = Settings::load(
        None,
        env(&[("CTCT_SYNC__AMQP__UNROUTED_QUEUE", "amq.mine")]),
    )
    .expect_err("an amq. name is refused");
    assert!(
        bad_name.to_string().contains("amqp.unrouted_queue"),
        "{bad_name}"
    );
}

#[test]
fn a_syntax_error_on_a_secret_s_line_is_reported_by_position_without_the_secret() {
    let secret = "s3cr3t-Zq9x";
    let cases = [
        ("oauth", format!("client_secret = \"{secret}")),
        ("oauth", format!("client_secret = {secret}")),
        ("oauth", format!("client_secret \"{secret}\"")),
        ("oauth", format!("client_secret = \"{secret}\\q\"")),
        (
            "oauth",
            format!("client_secret = \"{secret}\" \"{secret}\""),
        ),
        ("amqp", format!("url = \"amqp://guest:{secret}@host/%2f")),
        ("amqp", format!("url = amqp://guest:{secret}@host/%2f")),
    ];
    let dir = support::temp_dir();
    let file = dir.path().join("local.toml");
    for (section, line) in cases {
        std::fs::write(
            &file,
            format!("[{section}]\nclient_id = \"abc\"\n{line}\n[limits]\nper_day = 5\n"),
        )
        .unwrap();
        let error = Settings::load(Some(&file), HashMap::new())
            .expect_err(&format!("`{line}` must be refused"))
            .to_string();
        assert!(!error.contains(secret), "the secret leaked: {error}");
        assert!(error.contains("local.toml"), "names the file: {error}");
        assert!(error.contains("line 3"), "names the line: {error}");
        assert!(error.contains("column "), "names the column: {error}");
        let output = support::ctct_sync_command(dir.path())
            .args(["--config", file.to_str().unwrap(), "config"])
            .output()
            .expect("binary runs");
        assert!(!output.status.success());
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!printed.contains(secret), "the secret leaked: {printed}");
        assert!(printed.contains("line 3"), "{printed}");
    }
}

#[test]
fn plain_http_to_another_machine_is_refused_naming_the_key_unless_allowed() {
    let keys = [
        ("CTCT_SYNC__API__BASE_URL", "api.base_url"),
        ("CTCT_SYNC__OAUTH__TOKEN_URL", "oauth.token_url"),
        ("CTCT_SYNC__OAUTH__AUTHORIZE_URL", "oauth.authorize_url"),
        (
            "CTCT_SYNC__OAUTH__DEVICE_AUTHORIZE_URL",
            "oauth.device_authorize_url",
        ),
        ("CTCT_SYNC__OAUTH__REVOKE_URL", "oauth.revoke_url"),
    ];
    for (var, key) in keys {
        for remote in ["http://sandbox.internal:8080/x", "http://10.0.0.7/x"] {
            let error = Settings::load(None, env(&[(var, remote)]))
                .expect_err(&format!("{var}={remote} must be refused"))
                .to_string();
            assert!(error.contains(key), "{var}: {error}");
            assert!(error.contains("https"), "{var}: {error}");
            assert!(error.contains("unencrypted"), "says why: {error}");
            assert!(
                error.contains("api.allow_insecure_http"),
                "says how to allow it: {error}"
            );
            let allowed = Settings::load(
                None,
                env(&[
                    (var, remote),
                    ("CTCT_SYNC__API__ALLOW_INSECURE_HTTP", "true"),
                ]),
            );
            assert!(allowed.is_ok(), "{var}={remote} allowed: {allowed:?}");
        }
        for local in [
            "http://127.0.0.1:8080/x",
            "http://127.3.2.1/x",
            "http://[::1]:8080/x",
            "http://localhost:8080/x",
            "https://sandbox.internal/x",
        ] {
            let loaded = Settings::load(None, env(&[(var, local)]));
            assert!(loaded.is_ok(), "{var}={local} is accepted: {loaded:?}");
        }
    }
    let settings = Settings::load(None, HashMap::new()).expect("defaults are valid");
    assert!(!settings.api.allow_insecure_http, "refused by default");
}

#[test]
fn amqp_urls_lists_the_broker_s_nodes_and_takes_precedence_over_amqp_url() {
    let defaults = Settings::load(None, HashMap::new()).unwrap();
    assert!(defaults.amqp.urls.is_empty(), "no cluster by default");
    let nodes: Vec<String> = defaults
        .amqp
        .nodes()
        .iter()
        .map(|u| u.expose().to_owned())
        .collect();
    assert_eq!(nodes, ["amqp://guest:guest@127.0.0.1:5672/%2f"]);
    assert_eq!(defaults.amqp.nodes_key(), "amqp.url");

    let from_env = Settings::load(
        None,
        env(&[(
            "CTCT_SYNC__AMQP__URLS",
            "amqp://svc:pw-1@mq-1:5672/%2f,amqp://svc:pw-2@mq-2:5672/%2f",
        )]),
    )
    .expect("a list of nodes is valid");
    let nodes: Vec<String> = from_env
        .amqp
        .nodes()
        .iter()
        .map(|u| u.expose().to_owned())
        .collect();
    assert_eq!(
        nodes,
        [
            "amqp://svc:pw-1@mq-1:5672/%2f",
            "amqp://svc:pw-2@mq-2:5672/%2f"
        ],
        "in order, amqp.url not among them"
    );
    assert_eq!(from_env.amqp.nodes_key(), "amqp.urls");

    let dir = support::temp_dir();
    let file = dir.path().join("cluster.toml");
    std::fs::write(
        &file,
        "[amqp]\nurl = \"amqp://x:y@single:5672/%2f\"\n\
         urls = [\"amqp://a:b@mq-1:5672/%2f\", \"amqp://a:b@mq-2:5672/%2f\", \"amqp://a:b@mq-3:5672/%2f\"]\n",
    )
    .unwrap();
    let from_file = Settings::load(Some(&file), HashMap::new()).expect("valid");
    assert_eq!(from_file.amqp.nodes().len(), 3);
    assert_eq!(
        from_file.amqp.nodes()[2].expose(),
        "amqp://a:b@mq-3:5672/%2f"
    );
    // One node in the environment is a list of one.
    let one = Settings::load(
        None,
        env(&[("CTCT_SYNC__AMQP__URLS", "amqp://a:b@mq-1:5672/%2f")]),
    )
    .unwrap();
    assert_eq!(one.amqp.nodes().len(), 1);
    assert_eq!(one.amqp.nodes_key(), "amqp.urls");
}

#[test]
fn a_bad_or_repeated_node_in_amqp_urls_is_refused_naming_the_key_without_its_password() {
    let cases = [
        (
            "amqp://svc:hunter2@mq-1:5672/%2f,http://svc:hunter2@mq-2/",
            "AMQP URIs",
        ),
        (
            "amqp://svc:hunter2@mq-1:5672/%2f,,amqp://svc:hunter2@mq-2:5672/%2f",
            "AMQP URIs",
        ),
        (
            "amqp://svc:hunter2@mq-1:5672/%2f,amqp://svc:hunter2@mq-1:5672/%2f",
            "each node once",
        ),
    ];
    for (value, expected) in cases {
        let error = Settings::load(None, env(&[("CTCT_SYNC__AMQP__URLS", value)]))
            .expect_err(&format!("{value} must be refused"))
            .to_string();
        assert!(error.contains("amqp.urls"), "{value}: {error}");
        assert!(error.contains(expected), "{value}: {error}");
        assert!(!error.contains("hunter2"), "a secret leaked: {error}");
    }
}

#[test]
fn the_passwords_of_amqp_urls_never_show_in_debug_or_in_the_printed_configuration() {
    let settings = Settings::load(
        None,
        env(&[(
            "CTCT_SYNC__AMQP__URLS",
            "amqp://svc:first-password@mq-1:5672/%2f,amqp://svc:second-password@mq-2:5672/%2f",
        )]),
    )
    .expect("valid");
    let debug = format!("{settings:?}");
    let printed = settings.to_redacted_toml();
    for text in [&debug, &printed] {
        assert!(!text.contains("first-password"), "{text}");
        assert!(!text.contains("second-password"), "{text}");
        assert!(text.contains("amqp://svc:***@mq-2:5672/%2f"), "{text}");
    }
    let reparsed: toml::Value = toml::from_str(&printed).expect("printed config is TOML");
    assert_eq!(
        reparsed["amqp"]["urls"].as_array().map(Vec::len),
        Some(2),
        "{printed}"
    );
}
