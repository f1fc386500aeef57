//! The deployment files kept honest: deploy/compose.yaml and deploy/k8s/*.yaml against the
//! daemon they run.
//!
//! * every ctct-sync container's settings load as the daemon loads them: its environment
//!   (compose's `${VAR:-default}` interpolated, for a real account and for the sandbox demo;
//!   Kubernetes' ConfigMap through `envFrom`), an unknown `CTCT_SYNC__…` key refused as at
//!   start, each `*_FILE` setting naming a secret the container really mounts;
//! * every ctct-sync command line (compose `command`, Kubernetes `args`, and the `docker
//!   compose run|exec` lines of the comments and docs/scaling.md) parses as a real subcommand;
//! * every port and probe matches the ops listener the settings give: its port, and paths the
//!   listener serves (liveness `/healthz`, readiness `/readyz`);
//! * the sandbox demo's application is the one `ctct-sync sandbox --seed 1` issues, and the
//!   RabbitMQ nodes' peer list names the compose services.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use clap::Parser as _;
use ctct_sync::cli::health::HealthArgs;
use ctct_sync::cli::{Cli, Command};
use ctct_sync::config::{ENV_PREFIX, SECRET_FILES, Settings};
use ctct_sync::ops::{HEALTHZ_PATH, METRICS_PATH, READYZ_PATH};
use serde_json::Value;

use crate::support;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The YAML documents of `path` as JSON, merge keys (`<<: *anchor`) applied the way compose
/// and kubectl apply them, nested ones included.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    let mut out = Vec::new();
    for document in serde_norway::Deserializer::from_str(&text) {
        let mut value: serde_norway::Value = serde::Deserialize::deserialize(document)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // A merged mapping may bring a merge key of its own (an anchor built on another).
        while has_merge_key(&value) {
            value
                .apply_merge()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        if !value.is_null() {
            out.push(serde_json::to_value(value).expect("YAML converts to JSON"));
        }
    }
    out
}

fn has_merge_key(value: &serde_norway::Value) -> bool {
    match value {
        serde_norway::Value::Mapping(map) => {
            map.contains_key("<<") || map.values().any(has_merge_key)
        }
        serde_norway::Value::Sequence(items) => items.iter().any(has_merge_key),
        serde_norway::Value::Tagged(tagged) => has_merge_key(&tagged.value),
        _ => false,
    }
}

/// Compose's interpolation: `$$`, `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`,
/// `${NAME:?error}`, `${NAME?error}`. An unset required variable is an error, as in compose.
fn interpolate(text: &str, vars: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('{') {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text}"))?;
            let inner = &tail[..end];
            let name_end = inner
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(inner.len());
            let (name, op) = inner.split_at(name_end);
            let value = vars.get(name).filter(|v| !v.is_empty());
            let set = vars.get(name);
            let resolved = match op {
                "" => set.cloned().unwrap_or_default(),
                _ if op.starts_with(":-") => value.cloned().unwrap_or_else(|| op[2..].to_owned()),
                _ if op.starts_with('-') => set.cloned().unwrap_or_else(|| op[1..].to_owned()),
                _ if op.starts_with(":?") => value
                    .cloned()
                    .ok_or_else(|| format!("{name} is required: {}", &op[2..]))?,
                _ if op.starts_with('?') => set
                    .cloned()
                    .ok_or_else(|| format!("{name} is required: {}", &op[1..]))?,
                _ => return Err(format!("unknown interpolation ${{{inner}}}")),
            };
            out.push_str(&resolved);
            rest = &tail[end + 1..];
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            out.push_str(vars.get(&after[..end]).map_or("", String::as_str));
            rest = &after[end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Every string of `value` interpolated.
fn interpolate_all(value: &Value, vars: &HashMap<String, String>) -> Value {
    match value {
        Value::String(s) => Value::String(interpolate(s, vars).unwrap_or_else(|e| panic!("{e}"))),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| interpolate_all(v, vars)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), interpolate_all(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `KEY=VALUE` lines, comments and blank lines left out (a compose `.env` file).
fn env_file(path: &Path) -> HashMap<String, String> {
    read(path)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (k, v) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: not KEY=VALUE: {line}", path.display()));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The environment variable of a setting: `store.url_file` → `CTCT_SYNC__STORE__URL_FILE`.
fn env_var(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_uppercase())
}

/// A value of the right shape for a secret setting, standing in for the real secret.
fn stand_in_secret(key: &str) -> &'static str {
    match key {
        "oauth.client_secret" => "a-client-secret\n",
        "amqp.url" => "amqp://ctct:pw@rabbitmq-1:5672/%2f\n",
        "amqp.urls" => {
            "amqp://ctct:pw@rabbitmq-1:5672/%2f\namqp://ctct:pw@rabbitmq-2:5672/%2f\namqp://ctct:pw@rabbitmq-3:5672/%2f\n"
        }
        "store.url" | "mirror.url" => "postgres://ctct:pw@postgres:5432/ctct?sslmode=disable\n",
        other => panic!("no stand-in for {other}"),
    }
}

/// The environment the image gives every container: the `ENV` lines of the Dockerfile's
/// last stage.
fn image_env() -> BTreeMap<String, String> {
    let dockerfile = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"));
    let last_stage = dockerfile.rsplit("\nFROM ").next().unwrap_or_default();
    let joined = last_stage.replace("\\\n", " ");
    let mut env = BTreeMap::new();
    for line in joined.lines() {
        let Some(pairs) = line.trim().strip_prefix("ENV ") else {
            continue;
        };
        for pair in pairs.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("Dockerfile: ENV KEY=VALUE: {pair}"));
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    assert!(!env.is_empty(), "the Dockerfile sets an environment");
    env
}

/// Loads a container's settings from its environment, as the daemon does. Each `*_FILE`
/// variable must name a path `mounted` knows (the secret's files in the container); it is
/// pointed at a file in `dir` holding a stand-in of the secret.
fn load_settings(
    what: &str,
    env: &BTreeMap<String, String>,
    mounted: &BTreeSet<String>,
    dir: &Path,
) -> Settings {
    let mut given = HashMap::new();
    for (name, value) in env {
        if name.starts_with(ENV_PREFIX) {
            assert!(
                name.starts_with(&format!("{ENV_PREFIX}__")) || name == "CTCT_SYNC_CONFIG",
                "{what}: {name} is not a setting (settings are {ENV_PREFIX}__<SECTION>__<KEY>)"
            );
        }
        let secret = SECRET_FILES
            .iter()
            .find(|(_, file_key)| env_var(file_key) == *name);
        let value = match secret {
            Some((key, _)) => {
                assert!(
                    mounted.contains(value),
                    "{what}: {name}={value}, but the container mounts no such secret file (it mounts {mounted:?})"
                );
                let stand_in = dir.join(key);
                std::fs::write(&stand_in, stand_in_secret(key)).unwrap();
                stand_in.display().to_string()
            }
            None => value.clone(),
        };
        given.insert(name.clone(), value);
    }
    Settings::load(None, given).unwrap_or_else(|e| panic!("{what}: the settings do not load: {e}"))
}

/// Parses a ctct-sync command line (without the program's name) as the binary does.
fn parse_cli(what: &str, args: &[String]) -> Cli {
    Cli::try_parse_from(std::iter::once("ctct-sync".to_owned()).chain(args.iter().cloned()))
        .unwrap_or_else(|e| {
            panic!(
                "{what}: `ctct-sync {}` is not a command line of ctct-sync: {e}",
                args.join(" ")
            )
        })
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Null => Vec::new(),
        other => panic!("not a list of strings: {other}"),
    }
}

/// A compose duration (`30s`, `1m30s`) in milliseconds.
fn compose_duration_ms(text: &str) -> u64 {
    let mut total = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
        } else {
            let n: u64 = number
                .parse()
                .unwrap_or_else(|_| panic!("a duration: {text}"));
            number.clear();
            total += n * match c {
                's' => 1000,
                'm' => 60_000,
                'h' => 3_600_000,
                _ => panic!("a duration: {text}"),
            };
        }
    }
    assert!(number.is_empty(), "a duration with a unit: {text}");
    total
}

/// The port and path a compose healthcheck asks (`/dev/tcp/127.0.0.1/PORT`, `GET PATH`).
fn healthcheck_target(test: &[String]) -> (u16, Option<String>) {
    let script = test.join(" ");
    let port = script
        .split("/dev/tcp/")
        .nth(1)
        .and_then(|rest| rest.split('/').nth(1))
        .map(|p| {
            p.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("a healthcheck through /dev/tcp/HOST/PORT: {script}"));
    let path = script.split("GET ").nth(1).map(|rest| {
        rest.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    (port, path)
}

/// The arguments of a healthcheck that runs `ctct-sync health` (`CMD ctct-sync health …`),
/// parsed as the binary parses them; `None` for any other test.
fn health_command(what: &str, test: &[String]) -> Option<HealthArgs> {
    let (program, args) = match test {
        [cmd, program, args @ ..] if cmd == "CMD" => (program, args),
        _ => return None,
    };
    if program.rsplit('/').next() != Some("ctct-sync") {
        return None;
    }
    match parse_cli(what, args).command {
        Command::Health(args) => Some(args),
        other => panic!("{what}: the healthcheck runs `ctct-sync {other:?}`, not `health`"),
    }
}

/// The daemon's ops paths; a probe must ask one of them.
fn ops_paths() -> [&'static str; 3] {
    [METRICS_PATH, HEALTHZ_PATH, READYZ_PATH]
}

struct Compose {
    doc: Value,
}

impl Compose {
    fn load(vars: &HashMap<String, String>) -> Self {
        let docs = yaml_documents(&deploy().join("compose.yaml"));
        assert_eq!(docs.len(), 1, "compose.yaml is one document");
        Compose {
            doc: interpolate_all(&docs[0], vars),
        }
    }

    /// The services that run with `profiles` active.
    fn services(&self, profiles: &[&str]) -> BTreeMap<String, Value> {
        let services = self.doc["services"].as_object().expect("services");
        services
            .iter()
            .filter(|(_, s)| {
                let theirs = strings(&s["profiles"]);
                theirs.is_empty() || theirs.iter().any(|p| profiles.contains(&p.as_str()))
            })
            .map(|(name, s)| (name.clone(), s.clone()))
            .collect()
    }
}

fn is_ctct_sync_image(image: &str) -> bool {
    image.split(['/', ':']).any(|part| part == "ctct-sync")
}

/// One variant of the compose project: `vars` as the `.env` file would give them.
fn check_compose(variant: &str, vars: &HashMap<String, String>, profiles: &[&str]) {
    let compose = Compose::load(vars);
    let services = compose.services(profiles);
    let top_secrets = compose.doc["secrets"]
        .as_object()
        .expect("top-level secrets");
    let script = read(&deploy().join("make-secrets.sh"));
    let dir = support::temp_dir();
    let mut replicas = 0;
    let mut sandbox_listen = None;
    let mut base_urls = BTreeSet::new();
    for (name, service) in &services {
        let what = format!("compose.yaml ({variant}), service {name}");
        let image = service["image"].as_str().unwrap_or_default();
        // Every secret a service mounts is declared, from a file that exists or that
        // make-secrets.sh writes (or tells you to write).
        let mut mounted = BTreeSet::new();
        for secret in strings(&service["secrets"]) {
            let file = top_secrets
                .get(&secret)
                .and_then(|s| s["file"].as_str())
                .unwrap_or_else(|| panic!("{what}: secret {secret} is not declared with a file"));
            let relative = file.trim_start_matches("./");
            assert!(
                deploy().join(relative).is_file() || script.contains(relative),
                "{what}: secret {secret} comes from {file}, which neither exists nor is written by make-secrets.sh"
            );
            mounted.insert(format!("/run/secrets/{secret}"));
        }
        if !is_ctct_sync_image(image) {
            continue;
        }
        let command = strings(&service["command"]);
        let cli = parse_cli(&what, &command);
        if let Command::Sandbox(args) = &cli.command {
            sandbox_listen = Some((name.clone(), args.listen, args.seed));
            let (port, _) = healthcheck_target(&strings(&service["healthcheck"]["test"]));
            assert_eq!(
                port,
                args.listen.port(),
                "{what}: the healthcheck asks the sandbox's port"
            );
            continue;
        }
        let mut env = image_env();
        env.extend(
            service["environment"]
                .as_object()
                .unwrap_or_else(|| panic!("{what}: environment as a mapping"))
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                    )
                }),
        );
        let settings = load_settings(&what, &env, &mounted, dir.path());
        base_urls.insert(settings.api.base_url.clone());
        if !matches!(cli.command, Command::Run) {
            continue;
        }
        replicas += 1;
        let ops = settings.ops.listen;
        assert!(settings.ops.enabled, "{what}: the ops listener is on");
        assert!(
            !ops.ip().is_loopback(),
            "{what}: ops.listen {ops} answers only inside the container: neither the healthcheck's nor a published port's peer reaches it"
        );
        for port in strings(&service["ports"]) {
            let container = port.rsplit(':').next().unwrap_or_default();
            assert_eq!(
                container,
                ops.port().to_string(),
                "{what}: published port {port} is not the ops listener's"
            );
        }
        let test = strings(&service["healthcheck"]["test"]);
        let (port, path) = match health_command(&what, &test) {
            // `ctct-sync health`: its --url, or /healthz on ops.listen.
            Some(args) => match args.url {
                Some(url) => {
                    assert!(
                        url.host_str() == Some("127.0.0.1") || url.host_str() == Some("localhost"),
                        "{what}: the healthcheck asks {url}, not this container"
                    );
                    let port = url.port_or_known_default().expect("a port");
                    (port, Some(url.path().to_owned()))
                }
                None => (ops.port(), Some(HEALTHZ_PATH.to_owned())),
            },
            None => healthcheck_target(&test),
        };
        assert_eq!(
            port,
            ops.port(),
            "{what}: the healthcheck asks another port than ops.listen"
        );
        let path = path.unwrap_or_else(|| panic!("{what}: the healthcheck asks a path"));
        assert!(
            [HEALTHZ_PATH, READYZ_PATH].contains(&path.as_str()),
            "{what}: the healthcheck asks {path}, not one of {:?}",
            ops_paths()
        );
        let grace = compose_duration_ms(service["stop_grace_period"].as_str().unwrap_or("10s"));
        assert!(
            grace > settings.amqp.shutdown_grace_ms,
            "{what}: stop_grace_period {grace} ms must be above amqp.shutdown_grace_ms {}",
            settings.amqp.shutdown_grace_ms
        );
    }
    assert!(
        replicas >= 2,
        "compose.yaml ({variant}): at least two replicas run `ctct-sync run`"
    );
    if profiles.contains(&"sandbox") {
        let (name, listen, _) = sandbox_listen.expect("the sandbox profile has a sandbox service");
        assert_eq!(
            base_urls,
            BTreeSet::from([format!("http://{name}:{}/v3", listen.port())]),
            "compose.yaml ({variant}): every ctct-sync service talks to the sandbox service"
        );
    } else {
        assert_eq!(
            base_urls,
            BTreeSet::from(["https://api.cc.email/v3".to_owned()]),
            "compose.yaml ({variant}): every ctct-sync service talks to Constant Contact"
        );
    }
}

/// What make-secrets.sh writes into `.env`, as a person would have it for a real account.
fn real_account_vars() -> HashMap<String, String> {
    HashMap::from([
        ("RABBITMQ_PASSWORD".to_owned(), "mq-password".to_owned()),
        ("RABBITMQ_ERLANG_COOKIE".to_owned(), "COOKIE".to_owned()),
        ("CTCT_CLIENT_ID".to_owned(), "an-api-key".to_owned()),
    ])
}

#[test]
fn compose_runs_real_settings_commands_and_probes_against_a_real_account() {
    check_compose("real account", &real_account_vars(), &[]);
}

#[test]
fn compose_runs_real_settings_commands_and_probes_in_the_sandbox_demo() {
    let mut vars = real_account_vars();
    vars.remove("CTCT_CLIENT_ID");
    vars.extend(env_file(&deploy().join("sandbox.env")));
    let profiles = vars["COMPOSE_PROFILES"].clone();
    let profiles: Vec<&str> = profiles.split(',').collect();
    assert!(
        profiles.contains(&"sandbox"),
        "sandbox.env turns the sandbox profile on"
    );
    check_compose("sandbox demo", &vars, &profiles);
}

#[test]
fn compose_without_a_client_id_or_the_generated_passwords_stops_at_once() {
    // `${VAR:?…}`: compose refuses to start with the message instead of starting ctct-sync
    // with an empty API key or RabbitMQ without a password.
    let text = read(&deploy().join("compose.yaml"));
    for var in [
        "CTCT_CLIENT_ID",
        "RABBITMQ_PASSWORD",
        "RABBITMQ_ERLANG_COOKIE",
    ] {
        let mut vars = real_account_vars();
        vars.remove(var);
        let refused = text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
            .any(|line| interpolate(line, &vars).is_err_and(|e| e.starts_with(var)));
        assert!(refused, "compose.yaml requires {var}");
    }
}

#[tokio::test]
async fn the_sandbox_demo_s_application_is_the_one_the_sandbox_issues() {
    let vars = env_file(&deploy().join("sandbox.env"));
    let mut all = real_account_vars();
    all.extend(vars.clone());
    let compose = Compose::load(&all);
    let sandbox = &compose.services(&["sandbox"])["sandbox"];
    let Command::Sandbox(args) =
        parse_cli("the sandbox service", &strings(&sandbox["command"])).command
    else {
        panic!("the sandbox service runs `ctct-sync sandbox`");
    };
    let started = ctct_sandbox::start(ctct_sandbox::SandboxOptions {
        seed: args.seed,
        seed_contacts: 0,
        ..ctct_sandbox::SandboxOptions::for_tests()
    })
    .await
    .expect("the sandbox starts");
    let issued = started.credentials().clone();
    started.shutdown().await;
    assert_eq!(
        vars["CTCT_CLIENT_ID"], issued.client_id,
        "sandbox.env's CTCT_CLIENT_ID"
    );
    let secret_file = compose.doc["secrets"]["client_secret"]["file"]
        .as_str()
        .expect("the client_secret secret's file");
    let secret = read(&deploy().join(secret_file.trim_start_matches("./")));
    assert_eq!(secret.trim_end(), issued.client_secret, "{secret_file}");
}

#[test]
fn the_rabbitmq_nodes_list_each_other_by_their_compose_hostnames() {
    let compose = Compose::load(&real_account_vars());
    let mut hostnames = BTreeSet::new();
    for (name, service) in compose.services(&[]) {
        let image = service["image"].as_str().unwrap_or_default();
        if !image.starts_with("rabbitmq:") {
            continue;
        }
        let volumes = strings(&service["volumes"]);
        let conf = volumes
            .iter()
            .find(|v| v.contains(":/etc/rabbitmq/rabbitmq.conf"))
            .unwrap_or_else(|| panic!("{name} mounts rabbitmq.conf"));
        assert!(
            deploy()
                .join(conf.split(':').next().unwrap().trim_start_matches("./"))
                .is_file(),
            "{name}: {conf}"
        );
        hostnames.insert(
            service["hostname"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} has a fixed hostname (its node name)"))
                .to_owned(),
        );
    }
    assert_eq!(hostnames.len(), 3, "three RabbitMQ nodes: {hostnames:?}");
    let conf = read(&deploy().join("rabbitmq/rabbitmq.conf"));
    let peers: BTreeSet<String> = conf
        .lines()
        .filter(|l| l.starts_with("cluster_formation.classic_config.nodes."))
        .filter_map(|l| l.split_once('=').map(|(_, v)| v.trim()))
        .map(|node| {
            node.strip_prefix("rabbit@")
                .expect("rabbit@HOST")
                .to_owned()
        })
        .collect();
    assert_eq!(peers, hostnames);
    // make-secrets.sh gives ctct-sync every node.
    let script = read(&deploy().join("make-secrets.sh"));
    assert!(script.contains("for node in 1 2 3") && script.contains("@rabbitmq-%s:5672"));
}

/// Every `docker compose run|exec` line of the comments and of docs/scaling.md runs a real
/// ctct-sync command line.
#[test]
fn the_commands_the_comments_and_docs_give_are_real_ctct_sync_command_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("docs/scaling.md"), deploy().join("compose.yaml")];
    for entry in std::fs::read_dir(deploy().join("k8s")).unwrap() {
        files.push(entry.unwrap().path());
    }
    let mut seen = 0;
    for file in files {
        for line in read(&file).lines() {
            let line = line.trim_start_matches(['#', ' ']);
            let Some(rest) = line
                .split("docker compose run --rm ")
                .nth(1)
                .or_else(|| line.split("docker compose exec ").nth(1))
            else {
                continue;
            };
            // A command in a code span ends with it.
            let rest = rest.split('`').next().unwrap_or_default();
            let mut words = support::shell_words(rest).into_iter();
            let _service = words.next();
            let mut args: Vec<String> = words
                .take_while(|w| !w.starts_with('#') && w != "&&" && w != "|")
                .collect();
            if args.first().is_some_and(|a| a == "ctct-sync") {
                args.remove(0);
            }
            parse_cli(&format!("{}: {line}", file.display()), &args);
            seen += 1;
        }
    }
    assert!(
        seen >= 3,
        "the docs show how to authorise and send: {seen} command lines"
    );
}

/// The Kubernetes manifests, by kind and name.
fn k8s_objects() -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(deploy().join("k8s")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        for doc in yaml_documents(&path) {
            let kind = doc["kind"].as_str().expect("a kind").to_owned();
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            out.insert((kind, name), doc);
        }
    }
    out
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    let selector = selector.as_object().expect("matchLabels");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The instructions of the Dockerfile's last stage (from its `FROM`), continuation lines
/// joined and comments left out: (`KEYWORD`, the rest of the line).
fn image_instructions() -> Vec<(String, String)> {
    let dockerfile = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"));
    let last_stage = dockerfile.rsplit("\nFROM ").next().unwrap_or_default();
    let mut out = Vec::new();
    let mut current = String::new();
    for line in format!("FROM {last_stage}").lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                let (keyword, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((keyword.to_ascii_uppercase(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

/// The one `keyword` instruction of the last stage.
fn image_instruction(instructions: &[(String, String)], keyword: &str) -> String {
    let found: Vec<&String> = instructions
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, rest)| rest)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "Dockerfile: one {keyword} in the last stage"
    );
    found[0].clone()
}

/// The value given to `--flag` in `text` (`--gid 10001`).
fn flag_value<'a>(text: &'a str, flag: &str) -> Option<&'a str> {
    text.split(&format!("{flag} "))
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
}

#[test]
fn the_image_runs_as_its_numeric_user_serves_the_ops_listener_and_checks_healthz() {
    let instructions = image_instructions();
    let run = image_instruction(&instructions, "RUN");
    let uid = image_uid();
    let gid: u64 = flag_value(&run, "groupadd --system --gid")
        .and_then(|g| g.parse().ok())
        .expect("the Dockerfile gives the group ctct a fixed gid");
    assert!(
        uid >= 10000,
        "the uid {uid} is above every system and host account"
    );
    // USER by number, so that Kubernetes' runAsNonRoot can check it (hadolint DL3066).
    assert_eq!(
        image_instruction(&instructions, "USER"),
        format!("{uid}:{gid}"),
        "USER is the user ctct and its group, by number"
    );
    assert!(
        run.contains("--no-log-init"),
        "useradd --no-log-init: a high uid otherwise makes large lastlog and faillog files"
    );
    // The settings the image gives: the ops listener on every address, on the EXPOSEd port.
    let env: HashMap<String, String> = image_env().into_iter().collect();
    let settings = Settings::load(None, env).expect("the image's settings load");
    let ops = settings.ops.listen;
    assert!(
        settings.ops.enabled && ops.ip().is_unspecified(),
        "ops.listen {ops}: reachable from outside the container"
    );
    assert_eq!(
        image_instruction(&instructions, "EXPOSE"),
        ops.port().to_string(),
        "EXPOSE is ops.listen's port"
    );
    // The store on the volume, which the user owns.
    let store = settings.store.path.clone();
    let volume = store.parent().expect("the store's directory");
    let volumes: Vec<String> =
        serde_json::from_str(&image_instruction(&instructions, "VOLUME")).expect("VOLUME [\"…\"]");
    assert_eq!(
        volumes,
        [volume.display().to_string()],
        "VOLUME is the store's directory ({})",
        store.display()
    );
    assert!(
        run.contains(&format!("chown {uid}:{gid} {}", volume.display())),
        "the volume's directory is made owned by the user: {run}"
    );
    assert_eq!(
        image_instruction(&instructions, "WORKDIR"),
        volume.display().to_string()
    );
    // HEALTHCHECK: `ctct-sync health`, the binary of the ENTRYPOINT, asking /healthz on
    // ops.listen within the check's own timeout.
    let healthcheck = image_instruction(&instructions, "HEALTHCHECK");
    let (options, exec) = healthcheck
        .split_once("CMD ")
        .expect("HEALTHCHECK [OPTIONS] CMD [\"…\"]");
    let exec: Vec<String> = serde_json::from_str(exec).expect("HEALTHCHECK CMD in exec form");
    let entrypoint: Vec<String> =
        serde_json::from_str(&image_instruction(&instructions, "ENTRYPOINT")).expect("ENTRYPOINT");
    assert_eq!(
        entrypoint.last(),
        exec.first(),
        "the health check runs the binary the ENTRYPOINT runs"
    );
    let args = health_command(
        "Dockerfile HEALTHCHECK",
        &[&["CMD".to_owned()], &exec[..]].concat(),
    )
    .expect("HEALTHCHECK runs `ctct-sync health`");
    let url = args
        .url
        .clone()
        .unwrap_or_else(|| ctct_sync::cli::health::healthz_url(ops));
    assert_eq!(url.path(), HEALTHZ_PATH, "the health check asks liveness");
    assert_eq!(url.port(), Some(ops.port()));
    assert!(
        url.host_str()
            .is_some_and(|h| h == "127.0.0.1" || h == "[::1]")
    );
    let timeout = options
        .split("--timeout=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("HEALTHCHECK --timeout=");
    let timeout_ms = compose_duration_ms(timeout);
    assert!(
        args.timeout_ms < timeout_ms,
        "ctct-sync health --timeout-ms {} answers before Docker's --timeout={timeout}",
        args.timeout_ms
    );
    // The OCI labels, the version being this ctct-sync's.
    let labels = image_instruction(&instructions, "LABEL");
    for key in ["title", "description", "source", "licenses", "version"] {
        assert!(
            labels.contains(&format!("org.opencontainers.image.{key}=")),
            "LABEL org.opencontainers.image.{key}: {labels}"
        );
    }
    assert!(
        labels.contains(&format!(
            "org.opencontainers.image.licenses=\"{}\"",
            env!("CARGO_PKG_LICENSE")
        )),
        "the license label is Cargo.toml's: {labels}"
    );
    assert!(
        instructions.iter().any(
            |(k, rest)| k == "ARG" && *rest == format!("VERSION={}", env!("CARGO_PKG_VERSION"))
        ),
        "ARG VERSION={} (Cargo.toml's version) labels the image",
        env!("CARGO_PKG_VERSION")
    );
}

/// Whether a `.dockerignore` pattern matches `path` (relative, `/`-separated): `*` within a
/// name, `**` across names, a trailing `/` for directories; a pattern that matches a parent
/// of `path` leaves `path` out too.
fn dockerignore_matches(pattern: &str, path: &str) -> bool {
    fn glob(pattern: &[&str], path: &[&str]) -> bool {
        match (pattern.first(), path.first()) {
            (None, _) => true, // matched a parent: everything under it is out
            (Some(&"**"), _) => {
                glob(&pattern[1..], path) || (!path.is_empty() && glob(pattern, &path[1..]))
            }
            (Some(_), None) => false,
            (Some(p), Some(name)) => name_matches(p, name) && glob(&pattern[1..], &path[1..]),
        }
    }
    fn name_matches(pattern: &str, name: &str) -> bool {
        match pattern.split_once('*') {
            None => pattern == name,
            Some((head, tail)) => {
                name.starts_with(head)
                    && (head.len()..=name.len())
                        .any(|i| name.is_char_boundary(i) && name_matches(tail, &name[i..]))
            }
        }
    }
    let pattern: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let path: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    glob(&pattern, &path)
}

#[test]
fn the_build_context_has_what_the_dockerfile_copies_and_no_store_or_secret() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let patterns: Vec<String> = read(&root.join(".dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert!(
        patterns.iter().all(|p| !p.starts_with('!')),
        "no exceptions: each line leaves something out"
    );
    let ignored = |path: &str| patterns.iter().any(|p| dockerignore_matches(p, path));
    // Every source of every COPY from the context (all stages) is sent.
    let dockerfile = read(&root.join("Dockerfile"));
    let mut copied = 0;
    for line in dockerfile.lines() {
        let Some(rest) = line.trim().strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from=") {
            continue;
        }
        let words: Vec<&str> = rest.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            let source = source.trim_start_matches("./");
            assert!(
                root.join(source).exists(),
                "Dockerfile copies {source}, which is missing"
            );
            assert!(
                !ignored(source),
                ".dockerignore leaves out {source}, which the Dockerfile copies"
            );
            // And every file inside a copied directory.
            let mut dirs = vec![source.to_owned()];
            while let Some(dir) = dirs.pop() {
                let Ok(entries) = std::fs::read_dir(root.join(&dir)) else {
                    continue;
                };
                for entry in entries {
                    let entry = entry.unwrap();
                    let inner = format!("{dir}/{}", entry.file_name().to_string_lossy());
                    assert!(!ignored(&inner), ".dockerignore leaves out {inner}");
                    if entry.file_type().unwrap().is_dir() {
                        dirs.push(inner);
                    }
                }
            }
            copied += 1;
        }
    }
    assert!(
        copied >= 8,
        "the Dockerfile's COPY lines were read ({copied})"
    );
    // Nothing local that holds tokens or passwords, and no build output.
    for path in [
        "target/release/ctct-sync",
        ".git/config",
        "data/ctct-sync.db",
        "data/ctct-sync.db-wal",
        "ctct-mirror.db",
        "deploy/secrets/postgres_url",
        "deploy/.env",
        ".env",
        "crates/ctct-sandbox/target/debug/ctct-sandbox",
    ] {
        assert!(ignored(path), ".dockerignore sends {path} to the builder");
    }
    assert!(!ignored("src/api/model/fixtures/write-contact.json"));
}

/// The uid the image runs as (Dockerfile: `useradd … --uid N`).
fn image_uid() -> u64 {
    let dockerfile = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"));
    dockerfile
        .split("--uid ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|uid| uid.parse().ok())
        .expect("the Dockerfile gives the user ctct a fixed uid")
}

#[test]
fn kubernetes_runs_real_settings_commands_and_probes() {
    let objects = k8s_objects();
    let of_kind = |kind: &str| -> Vec<(&String, &Value)> {
        objects
            .iter()
            .filter(|((k, _), _)| k == kind)
            .map(|((_, name), v)| (name, v))
            .collect()
    };
    let dir = support::temp_dir();
    let mut ran = 0;
    let mut deployments = Vec::new();
    for kind in ["Deployment", "Job"] {
        for (name, object) in of_kind(kind) {
            let pod = &object["spec"]["template"]["spec"];
            let pod_labels = &object["spec"]["template"]["metadata"]["labels"];
            let security = &pod["securityContext"];
            assert_eq!(
                security["runAsNonRoot"], true,
                "{kind} {name}: runAsNonRoot"
            );
            assert_eq!(
                security["runAsUser"].as_u64(),
                Some(image_uid()),
                "{kind} {name}: runAsUser is the image's user ctct, by number"
            );
            let volumes: BTreeMap<&str, &Value> = pod["volumes"]
                .as_array()
                .map(|v| v.iter().map(|v| (v["name"].as_str().unwrap(), v)).collect())
                .unwrap_or_default();
            for container in pod["containers"].as_array().expect("containers") {
                let what = format!("{kind} {name}, container {}", container["name"]);
                if !is_ctct_sync_image(container["image"].as_str().unwrap_or_default()) {
                    continue;
                }
                assert!(
                    container["command"].is_null(),
                    "{what}: `args`, not `command`: the image's entrypoint (tini, ctct-sync) stays"
                );
                let cli = parse_cli(&what, &strings(&container["args"]));
                // The environment: ConfigMaps through envFrom, then env (which wins).
                let mut env = image_env();
                for from in container["envFrom"].as_array().into_iter().flatten() {
                    let map = from["configMapRef"]["name"].as_str().expect("a ConfigMap");
                    let data = &objects
                        .get(&("ConfigMap".to_owned(), map.to_owned()))
                        .unwrap_or_else(|| panic!("{what}: ConfigMap {map} is in deploy/k8s"))["data"];
                    for (k, v) in data.as_object().expect("data") {
                        env.insert(k.clone(), v.as_str().expect("string values").to_owned());
                    }
                }
                for var in container["env"].as_array().into_iter().flatten() {
                    if let Some(value) = var["value"].as_str() {
                        env.insert(var["name"].as_str().unwrap().to_owned(), value.to_owned());
                    }
                }
                // The files of the Secrets it mounts.
                let mut mounted = BTreeSet::new();
                for mount in container["volumeMounts"].as_array().into_iter().flatten() {
                    let volume = volumes[mount["name"].as_str().unwrap()];
                    let Some(secret) = volume["secret"]["secretName"].as_str() else {
                        continue;
                    };
                    let manifest = objects
                        .get(&("Secret".to_owned(), secret.to_owned()))
                        .unwrap_or_else(|| {
                            panic!("{what}: the shape of Secret {secret} is in deploy/k8s")
                        });
                    let at = mount["mountPath"].as_str().unwrap();
                    for key in manifest["stringData"]
                        .as_object()
                        .expect("stringData")
                        .keys()
                    {
                        mounted.insert(format!("{at}/{key}"));
                    }
                }
                let settings = load_settings(&what, &env, &mounted, dir.path());
                ran += 1;
                if !matches!(cli.command, Command::Run) {
                    continue;
                }
                deployments.push((name.clone(), object.clone(), pod_labels.clone()));
                let ops = settings.ops.listen;
                assert!(
                    settings.ops.enabled && !ops.ip().is_loopback(),
                    "{what}: ops.listen {ops} reachable by the kubelet"
                );
                let ports = container["ports"].as_array().expect("ports");
                let ops_port = ports
                    .iter()
                    .find(|p| p["containerPort"].as_u64() == Some(u64::from(ops.port())))
                    .unwrap_or_else(|| panic!("{what}: a containerPort {}", ops.port()));
                let port_name = ops_port["name"].as_str().expect("the ops port has a name");
                for (probe, path) in [
                    ("readinessProbe", READYZ_PATH),
                    ("livenessProbe", HEALTHZ_PATH),
                ] {
                    let get = &container[probe]["httpGet"];
                    assert_eq!(get["path"].as_str(), Some(path), "{what}: {probe}");
                    assert!(
                        get["port"].as_str() == Some(port_name)
                            || get["port"].as_u64() == Some(u64::from(ops.port())),
                        "{what}: {probe} asks port {}, not ops.listen's",
                        get["port"]
                    );
                }
                let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
                assert!(
                    grace * 1000 > settings.amqp.shutdown_grace_ms,
                    "{what}: terminationGracePeriodSeconds {grace} must be above amqp.shutdown_grace_ms"
                );
                let requests = &container["resources"]["requests"];
                assert!(
                    requests["cpu"].is_string() && requests["memory"].is_string(),
                    "{what}: resource requests"
                );
                // The Services in front of it name its ops port.
                for (service, manifest) in of_kind("Service") {
                    if !labels_match(&manifest["spec"]["selector"], pod_labels) {
                        continue;
                    }
                    for port in manifest["spec"]["ports"].as_array().unwrap() {
                        let target = &port["targetPort"];
                        assert!(
                            target.as_str() == Some(port_name)
                                || target.as_u64() == Some(u64::from(ops.port())),
                            "Service {service}: targetPort {target} is not the ops listener"
                        );
                    }
                }
            }
        }
    }
    assert!(ran >= 2, "a Deployment and the auth Job run ctct-sync");
    let [(name, deployment, labels)] = &deployments[..] else {
        panic!("one Deployment runs `ctct-sync run`: {}", deployments.len());
    };
    let replicas = deployment["spec"]["replicas"].as_u64().unwrap_or(1);
    assert!(
        replicas >= 2,
        "Deployment {name}: {replicas} replicas (one active, one standby)"
    );
    let budgets = of_kind("PodDisruptionBudget");
    assert!(
        budgets.iter().any(|(_, pdb)| labels_match(
            &pdb["spec"]["selector"]["matchLabels"],
            labels
        ) && pdb["spec"]["minAvailable"]
            .as_u64()
            .is_some_and(|n| (1..replicas).contains(&n))),
        "a PodDisruptionBudget keeps at least one of the {replicas} replicas of {name}, and lets one go"
    );
    assert!(
        of_kind("Service")
            .iter()
            .any(|(_, s)| labels_match(&s["spec"]["selector"], labels)),
        "a Service selects {name}'s pods"
    );
}

/// The `[Service]` section of deploy/systemd/ctct-sync.service: every `Key=value` line in
/// order (a key may come more than once).
fn systemd_service_lines() -> Vec<(String, String)> {
    let unit = read(&deploy().join("systemd/ctct-sync.service"));
    let mut section = String::new();
    let mut lines = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_owned();
            continue;
        }
        if section == "[Service]" {
            let (key, value) = line.split_once('=').expect("Key=value");
            lines.push((key.to_owned(), value.to_owned()));
        }
    }
    lines
}

/// The systemd unit runs real ctct-sync command lines with settings the daemon loads, waits
/// for the readiness the daemon sends (Type=notify, tested in tests/it/service_manager.rs),
/// keeps the store in the directory systemd creates for it, and gives a stop the time the
/// daemon's drain needs.
#[test]
fn the_systemd_unit_runs_real_command_lines_with_real_settings() {
    let lines = systemd_service_lines();
    let one = |key: &str| -> String {
        let values: Vec<&String> = lines
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        assert_eq!(values.len(), 1, "{key}= once in the unit: {values:?}");
        values[0].clone()
    };
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("NotifyAccess"), "main");
    let watchdog: u64 = one("WatchdogSec").parse().expect("WatchdogSec in seconds");
    assert!(watchdog >= 10, "a watchdog that tolerates a busy host");

    let mut env = BTreeMap::new();
    for (_, value) in lines.iter().filter(|(k, _)| k == "Environment") {
        let (name, value) = value.split_once('=').expect("Environment=NAME=value");
        env.insert(name.to_owned(), value.to_owned());
    }
    let dir = support::temp_dir();
    let settings = load_settings("the systemd unit", &env, &BTreeSet::new(), dir.path());
    let state_dir = format!("/var/lib/{}", one("StateDirectory"));
    let store = settings.state_store().unwrap();
    let store_path = store.sqlite_path().expect("a SQLite store by default");
    assert!(
        store_path.starts_with(&state_dir),
        "the store {} is in the state directory {state_dir} (the only writable path)",
        store_path.display()
    );
    assert_eq!(one("WorkingDirectory"), state_dir);
    let stop: u64 = one("TimeoutStopSec")
        .parse()
        .expect("TimeoutStopSec in seconds");
    assert!(
        stop * 1000 > settings.amqp.shutdown_grace_ms,
        "TimeoutStopSec {stop} s leaves the drain (amqp.shutdown_grace_ms {}) its time",
        settings.amqp.shutdown_grace_ms
    );

    let mut commands = Vec::new();
    for key in ["ExecStartPre", "ExecStart"] {
        let words = support::shell_words(&one(key));
        assert_eq!(
            words[0], "/usr/local/bin/ctct-sync",
            "{key} runs the installed binary"
        );
        let cli = parse_cli(&format!("the systemd unit's {key}"), &words[1..]);
        commands.push(cli.command);
    }
    assert!(matches!(commands[0], Command::Migrate));
    assert!(matches!(commands[1], Command::Run));
}
