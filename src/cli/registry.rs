//! Registry flags shared by every subcommand that reads or writes images (skopeo's names).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use ocipatch::transport::registry::auth::CredentialsError;
use ocipatch::transport::{Credentials, Deadlines, RegistryOptions};

#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Registry credentials for docker:// references (default: auth files and credential helpers)
    #[arg(long, value_name = "USER:PASSWORD", value_parser = super::secrets::quiet(parse_creds))]
    pub creds: Option<Credentials>,
    /// Auth file to read credentials from (default: $REGISTRY_AUTH_FILE,
    /// $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json)
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Require HTTPS with verified certificates for registries; false also allows plain HTTP
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: bool,
    /// Deadline of each registry request, in seconds, from connecting to the last byte of the
    /// answer; a blob transfer gets this plus its size divided by --min-transfer-rate
    #[arg(long, value_name = "SECS", default_value_t = Deadlines::default().request.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Slowest average blob transfer accepted, in bytes per second (see --timeout)
    #[arg(long, value_name = "BYTES_PER_SEC", default_value_t = Deadlines::default().min_rate,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub min_transfer_rate: u64,
}

fn parse_creds(s: &str) -> Result<Credentials, CredentialsError> {
    Credentials::parse(s)
}

impl RegistryArgs {
    /// The options, once `--authfile` (when given) is known to be a file ocipatch can read:
    /// a wrong path fails here, naming the flag, not at the first registry that needs it.
    pub fn options(&self) -> Result<RegistryOptions, ocipatch::Error> {
        if let Some(file) = &self.authfile {
            let opened = std::fs::File::open(file).and_then(|f| {
                if f.metadata()?.is_dir() {
                    Err(std::io::Error::from(std::io::ErrorKind::IsADirectory))
                } else {
                    Ok(())
                }
            });
            opened.map_err(|e| ocipatch::Error::argument("--authfile", file, e, false))?;
        }
        Ok(RegistryOptions {
            creds: self.creds.clone(),
            authfile: self.authfile.clone(),
            tls_verify: self.tls_verify,
            deadlines: Deadlines {
                request: Duration::from_secs(self.timeout),
                min_rate: self.min_transfer_rate,
            },
            // One session per run: every registry is pinged once, tokens fetched once.
            session: Default::default(),
        })
    }
}
