//! `ctct-sync completions <shell>` and `ctct-sync man` as processes: generated from the
//! binary's own command line, with no configuration, broker or store.

use std::collections::BTreeSet;

use clap::{CommandFactory as _, Parser as _};
use ctct_sync::cli::Cli;

use crate::support;

fn run(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = support::ctct_sync_command(dir)
        // A configuration that would not load must not matter.
        .env("CTCT_SYNC__NO_SUCH__SETTING", "x")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every visible subcommand of the command line, as `(parent path, name)`.
fn subcommands() -> Vec<(String, String)> {
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            if sub.get_name() == "help" {
                continue;
            }
            out.push((path.to_owned(), sub.get_name().to_owned()));
            walk(sub, &format!("{path}-{}", sub.get_name()), out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), "ctct-sync", &mut out);
    out
}

#[test]
fn completions_name_every_subcommand_for_each_shell() {
    let dir = support::temp_dir();
    let names: BTreeSet<String> = subcommands().into_iter().map(|(_, n)| n).collect();
    assert!(names.contains("login") && names.contains("replay") && names.contains("man"));
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, stdout, stderr) = run(dir.path(), &["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        assert_eq!(stderr, "", "{shell}");
        for name in &names {
            assert!(
                stdout.contains(name.as_str()),
                "{shell} completions complete `{name}`"
            );
        }
    }
    // bash: a function registered with `complete` for the program's name.
    let (_, bash, _) = run(dir.path(), &["completions", "bash"]);
    assert!(bash.starts_with("_ctct__sync() {"), "{bash}");
    assert!(bash.contains("complete -F _ctct__sync -o nosort -o bashdefault -o default ctct-sync"));
    let (code, _, stderr) = run(dir.path(), &["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid value 'tcsh'"), "{stderr}");
}

#[test]
fn man_prints_the_top_page_and_writes_one_page_per_command() {
    let dir = support::temp_dir();
    let (code, stdout, stderr) = run(dir.path(), &["man"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(".TH ctct-sync 1"), "{stdout}");
    for (parent, name) in subcommands().iter().filter(|(p, _)| p == "ctct-sync") {
        assert!(stdout.contains(name.as_str()), "{parent} lists {name}");
    }

    let pages = dir.path().join("man1");
    let (code, stdout, stderr) = run(dir.path(), &["man", "--dir", pages.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let written: BTreeSet<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut expected: BTreeSet<String> = subcommands()
        .into_iter()
        .map(|(parent, name)| format!("{parent}-{name}.1"))
        .collect();
    expected.insert("ctct-sync.1".to_owned());
    assert_eq!(written, expected);
    assert_eq!(
        stdout,
        format!(
            "wrote the manual pages (ctct-sync.1 and one per command) into {}\n",
            pages.display()
        )
    );
    let login = std::fs::read_to_string(pages.join("ctct-sync-auth-login.1")).unwrap();
    assert!(login.contains(".TH ctct-sync-auth-login 1"), "{login}");
}

/// The common subcommands' `--help` ends with examples, and each example is a command line
/// ctct-sync accepts (up to a pipe, `&&` or a redirection), for that subcommand; a `--data`
/// given is JSON.
#[test]
fn the_examples_in_help_are_command_lines_ctct_sync_accepts() {
    let mut cli = Cli::command();
    cli.build();
    let mut seen = 0;
    for name in [
        "run",
        "config",
        "doctor",
        "send",
        "dlq",
        "mirror",
        "auth",
        "store",
        "completions",
        "man",
    ] {
        let help = cli
            .find_subcommand_mut(name)
            .unwrap_or_else(|| panic!("a subcommand {name}"))
            .render_long_help()
            .to_string();
        let examples: Vec<&str> = help
            .split("Examples:\n")
            .nth(1)
            .unwrap_or_else(|| panic!("`ctct-sync {name} --help` has examples:\n{help}"))
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .collect();
        assert!(!examples.is_empty(), "{name}");
        for example in examples {
            let words: Vec<String> = support::shell_words(example)
                .into_iter()
                .take_while(|w| !matches!(w.as_str(), "|" | "&&" | "<" | ">"))
                .collect();
            assert_eq!(words[0], "ctct-sync", "{example}");
            let parsed = Cli::try_parse_from(&words)
                .unwrap_or_else(|e| panic!("`{example}` is not a ctct-sync command line: {e}"));
            let debug = format!("{:?}", parsed.command);
            assert!(
                debug.to_lowercase().starts_with(name),
                "`{example}` runs `{name}`: {debug}"
            );
            if let Some(at) = words.iter().position(|w| w == "--data") {
                serde_json::from_str::<serde_json::Value>(&words[at + 1])
                    .unwrap_or_else(|e| panic!("`{example}`: --data is not JSON: {e}"));
            }
            seen += 1;
        }
    }
    assert!(seen >= 20, "{seen} examples");
}
