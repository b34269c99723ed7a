//! The command line: clap argument structs, one file per subcommand, output formatting and the
//! mapping of errors to exit codes. Everything else lives in the library.

pub mod append;
pub mod attest;
pub mod check;
pub mod generate;
pub mod inspect;
pub mod progress;
pub mod rebase;
pub mod registry;
pub mod secrets;
pub mod text;
pub mod verify;

use clap::{Parser, Subcommand};

/// Exit codes (a contract: scripts depend on them).
pub mod exit {
    /// Success (for `check`: the base is current).
    pub const OK: i32 = 0;
    /// Any failure: bad input, a corrupt blob, an unreachable reference, a refused rebase.
    pub const ERROR: i32 = 1;
    /// The command line itself was wrong (clap exits with it before we run; [`super::Usage`]
    /// errors found later exit with it too).
    pub const USAGE: i32 = 2;
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
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout
    Completions(generate::CompletionsArgs),
    /// Print the man page (roff) on stdout; view it with `ocipatch man | man -l -`
    Man,
}

impl Command {
    /// Whether the command prints its report as JSON (`--json`).
    fn json(&self) -> bool {
        match self {
            Command::Rebase(a) => a.json,
            Command::Append(a) => a.json,
            Command::Verify(a) => a.json,
            Command::Inspect(a) => a.json,
            Command::Check(a) => a.json,
            Command::Completions(_) | Command::Man => false,
        }
    }
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    let json = cli.command.json();
    let result = match cli.command {
        Command::Rebase(args) => rebase::run(args),
        Command::Append(args) => append::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Check(args) => check::run(args),
        Command::Completions(args) => generate::completions(args),
        Command::Man => generate::man(),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            text::err(&format!("ocipatch: error: {}", text::error_line(&e)));
            if json {
                // The report a script reads says why there is none (docs/json.md, error).
                let report = ErrorReport {
                    error: text::error_text(&e),
                    error_kind: error_kind(&e),
                };
                if let Err(e) = print_json(&report) {
                    text::err(&format!("ocipatch: error: {}", text::error_line(&e)));
                }
            }
            let usage = |cause: &(dyn std::error::Error + 'static)| {
                cause.is::<Usage>()
                    || matches!(
                        cause.downcast_ref::<ocipatch::Error>(),
                        Some(ocipatch::Error::Usage(_))
                    )
            };
            if e.chain().any(usage) {
                exit::USAGE
            } else {
                exit::ERROR
            }
        }
    }
}

/// Prints a clap error (a usage error quotes the argument it refused, which may hold anything)
/// with control characters escaped and every secret of the command line (`--creds`, what may
/// be a password in a reference) replaced by `***`; help and version go out as clap writes
/// them. Returns the exit code.
pub fn clap_error(e: clap::Error) -> i32 {
    if !e.use_stderr() {
        let _ = e.print();
        return e.exit_code();
    }
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let hidden = secrets::in_args(&args);
    // One prefix for every error: clap's `error: ` becomes ocipatch's `ocipatch: error: `.
    let rendered = secrets::scrub(&e.render().to_string(), &hidden);
    for line in rendered.lines() {
        match line.strip_prefix("error: ") {
            Some(rest) => text::errln!("ocipatch: error: {rest}"),
            None => text::errln!("{line}"),
        }
    }
    e.exit_code()
}

/// What `--json` prints on stdout when the command fails before it has a report.
#[derive(serde::Serialize)]
struct ErrorReport {
    /// The error line (as on stderr, without `ocipatch: error: `).
    error: String,
    /// Its kind: [`ocipatch::Error::kind`], `usage` for a command line that cannot run, `io`
    /// for a file the command line names, `other` for anything else.
    error_kind: &'static str,
}

/// The kind of the first cause that has one.
fn error_kind(e: &anyhow::Error) -> &'static str {
    for cause in e.chain() {
        if let Some(e) = cause.downcast_ref::<ocipatch::Error>() {
            return e.kind();
        }
        if cause.is::<Usage>() {
            return "usage";
        }
        if cause.is::<std::io::Error>() {
            return "io";
        }
    }
    "other"
}

/// A command line that cannot run as given, found after clap parsed it (a bad `-o` pattern, an
/// empty `--images-from` list): exits with [`exit::USAGE`], like clap's own errors.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `Err(Usage(...))` as an anyhow error.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
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

/// The version of the `--json` reports' shape (docs/json.md, docs/schema/). Adding a field
/// keeps it; renaming, removing or retyping one bumps it, so CI pipelines can tell.
pub const JSON_SCHEMA_VERSION: &str = "1";

/// A report as the JSON object `--json` prints: `schemaVersion` first, then the report's own
/// fields in their declared order.
pub fn json_report<T: serde::Serialize>(value: &T) -> anyhow::Result<serde_json::Value> {
    let fields = match serde_json::to_value(value)? {
        serde_json::Value::Object(map) => map,
        other => anyhow::bail!("a --json report must be an object, not {other}"),
    };
    let mut out = serde_json::Map::new();
    out.insert("schemaVersion".into(), JSON_SCHEMA_VERSION.into());
    out.extend(fields);
    Ok(serde_json::Value::Object(out))
}

/// Prints a report as pretty JSON on stdout, with its `schemaVersion` (serde escapes control
/// characters).
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    text::out_json(&serde_json::to_string_pretty(&json_report(value)?)?);
    Ok(())
}
