//! `ctct-sync completions <shell>` and `ctct-sync man` as processes: generated from the
//! binary's own command line, with no configuration, broker or store.

use std::collections::BTreeSet;

use clap::CommandFactory as _;
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
            "wrote {} manual pages into {}\n",
            expected.len(),
            pages.display()
        )
    );
    let login = std::fs::read_to_string(pages.join("ctct-sync-auth-login.1")).unwrap();
    assert!(login.contains(".TH ctct-sync-auth-login 1"), "{login}");
}
