//! The command line: clap argument structs, one file per subcommand, output formatting and the
//! mapping of errors to exit codes. Everything else lives in the library.

pub mod append;
pub mod check;
pub mod inspect;
pub mod progress;
pub mod rebase;
pub mod registry;
pub mod verify;

use clap::{Parser, Subcommand};

/// Exit codes (a contract: scripts depend on them).
pub mod exit {
    /// Success (for `check`: the base is current).
    pub const OK: i32 = 0;
    /// Any failure: bad input, a corrupt blob, an unreachable reference, a refused rebase.
    pub const ERROR: i32 = 1;
    // 2: the command line itself was wrong (clap exits with it before we run).
    /// `check`: the image's base is outdated.
    pub const OUTDATED: i32 = 3;
}

#[derive(Parser, Debug)]
#[command(
    name = "ocipatch",
    version,
    about = "Daemonless OCI image patcher: rebase images onto a new base, verify and inspect them",
    after_help = "References use skopeo's syntax: oci:DIR[:TAG], oci-archive:FILE[:TAG], \
docker-archive:FILE[:NAME:TAG], docker://HOST/REPO[:TAG|@DIGEST]"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
pub enum Command {
    /// Move an image from its old base onto a new base by swapping layers
    Rebase(rebase::RebaseArgs),
    /// Add a reproducible layer (from a directory or tar, with optional deletions) on top
    Append(append::AppendArgs),
    /// Check every blob of an image: digests, sizes and diff IDs
    Verify(verify::VerifyArgs),
    /// Show an image's platforms, layers, history and base
    Inspect(inspect::InspectArgs),
    /// Tell whether an image's base is outdated (exit 0: current, 3: outdated, 1: error)
    Check(check::CheckArgs),
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let result = match cli.command {
        Command::Rebase(args) => rebase::run(args),
        Command::Append(args) => append::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Check(args) => check::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ocipatch: error: {e:#}");
            exit::ERROR
        }
    }
}

/// `12.3 MB`-style sizes for human output.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Prints a report as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
