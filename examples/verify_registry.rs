//! Verify an image in a registry (or any other transport) as a library: every manifest,
//! config and layer digest, and every layer's diff ID.
//!
//! ```text
//! cargo run --example verify_registry -- docker://localhost:5000/team/app:1 [--tls-verify=false]
//! ```
//!
//! Credentials come from the same places as the CLI's (`$REGISTRY_AUTH_FILE`,
//! `~/.docker/config.json`, credential helpers). Exit code 0: intact; 1: problems or an error.
#![allow(clippy::disallowed_macros)] // test and benchmark output is not image text

use ocipatch::model::Reference;
use ocipatch::ops;
use ocipatch::transport::RegistryOptions;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(reference) = args.first() else {
        eprintln!("usage: verify_registry REFERENCE [--tls-verify=false]");
        return std::process::ExitCode::from(2);
    };
    let registry = RegistryOptions {
        tls_verify: !args.iter().any(|a| a == "--tls-verify=false"),
        ..RegistryOptions::default()
    };
    let result = Reference::parse(reference)
        .map_err(ocipatch::Error::from)
        .and_then(|r| ops::verify(&r, &registry, &ops::Silent));
    match result {
        Ok(report) => {
            for p in &report.problems {
                println!("BAD {} {}: {}", p.kind, p.digest, p.message);
            }
            println!(
                "{} ({}): {} layer(s), {} bytes checked, {} problem(s)",
                report.image,
                report.digest,
                report.layers_checked,
                report.bytes_checked,
                report.problems.len()
            );
            if report.problems.is_empty() {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("verify_registry: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
