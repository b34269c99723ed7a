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
        let sub_page = clap_mangen::Man::new(sub);
        sub_page.render_synopsis_section(&mut out)?;
        sub_page.render_description_section(&mut out)?;
        sub_page.render_options_section(&mut out)?;
    }
    page.render_extra_section(&mut out)?;
    page.render_version_section(&mut out)?;
    std::io::Write::write_all(&mut std::io::stdout(), &out)?;
    Ok(exit::OK)
}
