//! What cordon prints about itself, for packaging and for operators: shell
//! completions and man pages, both generated from the one clap definition in
//! `main.rs`, and the embedded default policy.

use std::io::Write as _;
use std::path::Path;

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::{Cli, CmdResult, Failure};

/// The shells `cordon completions` knows, as named on its command line.
pub const SHELLS: &str = "bash, zsh, fish, elvish or powershell";

/// `cordon completions SHELL`: the completion script for SHELL on stdout.
pub fn completions(shell: &str) -> CmdResult {
    let shell: Shell = shell.parse().map_err(|_| {
        Failure::env(format!(
            "cordon completions: unknown shell {shell:?} (one of {SHELLS})"
        ))
    })?;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "cordon", &mut script);
    stdout(&script)
}

/// What `cordon.1` says beyond the options and commands, in roff.
const MAIN_PAGE_EXTRA: &str = r#".SH "EXIT STATUS"
.TP
0
Success.
.TP
1
A validation error in a policy file, or a finding of \fBcordon verify\fR or \fBcordon audit\fR.
.TP
2
Misuse or an environment problem (not root, no nftables, Docker unreachable), with a one\-line reason.
.SH FILES
.TP
/etc/cordon/cordon.yaml
The policy file read without \fB\-c\fR when no policy is in force yet; without it, cordon runs on its embedded default, which \fBcordon default\fR prints.
.TP
/run/cordon/cordon.sock
The daemon's admin socket (root only), used by \fBcordon status\fR, \fBlogs\fR, \fBset\fR and \fBreload\fR.
.TP
/var/lib/cordon/
The daemon's state: the fail\-closed ruleset \fBcordon boot\fR installs, and policy.json, the policy in force, which commands without \fB\-c\fR act on.
.TP
cordon\-boot.service, cordon.service, cordon\-authz.service
The systemd units: \fBcordon boot\fR before Docker starts, \fBcordon daemon\fR after it, and the authorization plugin \fBcordon authz\fR.
.SH "SEE ALSO"
\fBcordon\-daemon\fR(1), \fBcordon\-check\fR(1), \fBnft\fR(8), \fBdockerd\fR(8)
"#;

/// What every other page ends with, in roff.
const SUB_PAGE_EXTRA: &str = ".SH \"SEE ALSO\"\n\\fBcordon\\fR(1)\n";

/// `cordon man DIR`: one man page per command into DIR, created if missing:
/// `cordon.1`, `cordon-apply.1`, `cordon-set-add.1`, ... (hidden commands
/// get none).
pub fn man(dir: &Path) -> CmdResult {
    let failed = |e: std::io::Error| {
        Failure::env(format!(
            "cordon man: cannot write the pages into {}: {e}",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    pages(&cmd, dir, MAIN_PAGE_EXTRA).map_err(failed)
}

/// Writes the page of `cmd` (with `extra` before its VERSION section) and
/// those of its visible subcommands, recursively.
fn pages(cmd: &clap::Command, dir: &Path, extra: &str) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages(sub, dir, SUB_PAGE_EXTRA)?;
    }
    let man =
        clap_mangen::Man::new(cmd.clone()).source(concat!("cordon ", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render(&mut page)?;
    let page = String::from_utf8_lossy(&page);
    let at = page.find("\n.SH VERSION").map_or(page.len(), |i| i + 1);
    let text = format!("{}{extra}{}", &page[..at], &page[at..]);
    std::fs::write(dir.join(man.get_filename()), text)
}

/// `cordon default`: the embedded default policy, byte for byte (what the
/// Debian package installs as /etc/cordon/cordon.yaml).
pub fn default() -> CmdResult {
    stdout(cordon_policy::EMBEDDED_DEFAULT.as_bytes())
}

/// Writes all of `bytes` to stdout; a closed pipe is an error, not a panic.
fn stdout(bytes: &[u8]) -> CmdResult {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::env(format!("cordon: cannot write to stdout: {e}")))
}
