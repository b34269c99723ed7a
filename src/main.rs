#![forbid(unsafe_code)]

use clap::Parser;

mod cli;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => std::process::exit(cli::clap_error(e)),
    };
    clean_up_on_signals();
    let code = cli::run(cli);
    ocipatch::cleanup::settle();
    std::process::exit(code);
}

/// On SIGINT or SIGTERM, removes what this run created and has not finished (temp files,
/// staging directories, a destination layout it made and did not commit), as a failed run
/// does, then exits 128 + the signal: 130 or 143, what a shell reports for a process the
/// signal killed. Without a handler, the signal would kill us mid-write and leave it all.
fn clean_up_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return; // no handler: the default action (die) still stops the run
    };
    std::thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            ocipatch::cleanup::run_all();
            std::process::exit(128 + signal);
        }
    });
}
