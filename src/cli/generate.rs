//! `ocipatch completions SHELL` and `ocipatch man`: generated from the clap definitions, so
//! they never disagree with `--help`.

use clap::{Args, CommandFactory};

use super::{exit, Cli};

/// Arguments of `ocipatch completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write a completion script for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the completion script on stdout, e.g. `ocipatch completions bash >
/// /etc/bash_completion.d/ocipatch`.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<i32> {
    let mut cmd = Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "ocipatch", &mut std::io::stdout());
    Ok(exit::OK)
}

/// Writes the man page (roff) on stdout, e.g. `ocipatch man > ocipatch.1; man -l ocipatch.1`.
/// One page holds every subcommand, each with its own section of options.
pub fn man() -> anyhow::Result<i32> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    let page = clap_mangen::Man::new(cmd.clone());
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        let sub = sub.clone().bin_name(format!("ocipatch {name}"));
        let mut section = roff::Roff::new();
        section.control("SH", [format!("OCIPATCH {}", name.to_uppercase()).as_str()]);
        out.extend_from_slice(section.render().as_bytes());
        out.extend_from_slice(synopsis(&sub).as_bytes());
        let sub_page = clap_mangen::Man::new(sub);
        sub_page.render_description_section(&mut out)?;
        sub_page.render_options_section(&mut out)?;
    }
    out.extend_from_slice(exit_status().as_bytes());
    page.render_extra_section(&mut out)?;
    page.render_version_section(&mut out)?;
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(exit::OK)
}

/// A subcommand's SYNOPSIS with every flag's value name (`--onto NEW_BASE`, `-o DEST`), as
/// `--help` shows them: clap_mangen's own synopsis leaves the value names out.
fn synopsis(cmd: &clap::Command) -> String {
    let mut line = roff::Roff::new();
    let mut parts = vec![roff::bold(
        cmd.get_bin_name().unwrap_or(cmd.get_name()).to_string(),
    )];
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let values: Vec<String> = arg
            .get_value_names()
            .map(|v| v.iter().map(|n| n.to_string()).collect())
            .unwrap_or_else(|| vec![arg.get_id().to_string().to_uppercase()]);
        let takes_value = arg.get_action().takes_values();
        let flag = match (arg.get_short(), arg.get_long()) {
            (Some(s), Some(l)) => Some(format!("-{s}|--{l}")),
            (None, Some(l)) => Some(format!("--{l}")),
            (Some(s), None) => Some(format!("-{s}")),
            (None, None) => None,
        };
        let many = matches!(arg.get_action(), clap::ArgAction::Append)
            || arg.get_num_args().is_some_and(|n| n.max_values() > 1);
        let value = format!("{}{}", values.join(" "), if many { "..." } else { "" });
        let text = match flag {
            Some(f) if takes_value && arg.is_require_equals_set() => format!("{f}[={value}]"),
            Some(f) if takes_value => format!("{f} {value}"),
            Some(f) => f,
            None => value,
        };
        let text = if arg.is_required_set() {
            text
        } else {
            format!("[{text}]")
        };
        parts.push(roff::roman(format!(" {text}")));
    }
    line.control("SH", ["SYNOPSIS"]).text(parts);
    line.render()
}

/// EXIT STATUS: the codes scripts depend on ([`exit`]).
fn exit_status() -> String {
    let mut page = roff::Roff::new();
    page.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        (exit::OK, "Success; for check, the base is current; for verify, the image is intact."),
        (exit::ERROR, "Any failure: bad input, a corrupt blob (verify), an unreachable reference, a refused rebase, a fleet with a failed image."),
        (exit::USAGE, "The command line is wrong (an unknown flag, a reference that does not parse, an argument that cannot work as given)."),
        (exit::OUTDATED, "check: the image's base is outdated (for a fleet: some image's is)."),
        (130, "Interrupted by SIGINT (143: SIGTERM); what the run created and had not finished is removed."),
    ] {
        page.control("TP", [])
            .text([roff::bold(code.to_string())])
            .text([roff::roman(meaning)]);
    }
    page.render()
}
