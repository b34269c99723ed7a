//! Registry flags shared by every subcommand that reads or writes images (skopeo's names).

use std::path::PathBuf;

use clap::Args;

use ocipatch::transport::{Credentials, RegistryOptions};

#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Registry credentials for docker:// references (default: auth files and credential helpers)
    #[arg(long, value_name = "USER:PASSWORD", value_parser = parse_creds)]
    pub creds: Option<Credentials>,
    /// Auth file to read credentials from (default: $REGISTRY_AUTH_FILE,
    /// $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json)
    #[arg(long, value_name = "PATH")]
    pub authfile: Option<PathBuf>,
    /// Require HTTPS with verified certificates for registries; false also allows plain HTTP
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: bool,
}

fn parse_creds(s: &str) -> Result<Credentials, String> {
    Credentials::parse(s)
}

impl RegistryArgs {
    pub fn options(&self) -> RegistryOptions {
        RegistryOptions {
            creds: self.creds.clone(),
            authfile: self.authfile.clone(),
            tls_verify: self.tls_verify,
        }
    }
}
