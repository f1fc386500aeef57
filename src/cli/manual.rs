//! `ctct-sync completions <shell>` and `ctct-sync man`: shell completions and manual pages,
//! generated from this binary's own command line (so they never describe another version).
//!
//! ```sh
//! ctct-sync completions bash > /etc/bash_completion.d/ctct-sync
//! ctct-sync completions zsh > "${fpath[1]}/_ctct-sync"
//! ctct-sync man --dir /usr/local/share/man/man1 && mandb -q   # then: man ctct-sync-auth
//! ```

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;

/// The program's name in completions and manual pages.
const NAME: &str = "ctct-sync";

/// Arguments of `ctct-sync completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `ctct-sync man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write one page per command into this directory (`ctct-sync.1`, `ctct-sync-run.1`,
    /// `ctct-sync-auth-login.1`, …) instead of printing `ctct-sync.1` on stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script of `cmd` (ctct-sync's command line) for `args.shell` on
/// stdout.
pub fn completions(args: &CompletionsArgs, mut cmd: clap::Command) -> ExitCode {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, NAME, &mut out);
    let _ = out.flush();
    ExitCode::SUCCESS
}

/// Prints the top-level manual page of `cmd` (ctct-sync's command line), or writes every
/// command's page into `args.dir`.
pub fn man(args: &ManArgs, cmd: clap::Command) -> anyhow::Result<ExitCode> {
    let cmd = cmd.name(NAME);
    match &args.dir {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .and_then(|()| out.flush())
                .context("printing the manual page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .and_then(|()| clap_mangen::generate_to(cmd, dir))
                .with_context(|| format!("writing the manual pages into {}", dir.display()))?;
            println!(
                "wrote the manual pages (ctct-sync.1 and one per command) into {}",
                dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
