//! Arguments that may hold a secret (`--creds`, a reference someone wrote a password into)
//! and clap's messages about them. clap quotes a value it refuses (`invalid value '…' for
//! '--creds'`) and an argument it does not expect; here a refused value is never quoted, and
//! whatever clap prints has every such secret of the command line replaced by `***`.

use std::ffi::OsStr;

use clap::builder::TypedValueParser;
use clap::error::ErrorKind;

use ocipatch::model::reference;

/// A value parser whose error names the argument and the reason but never quotes the value.
pub struct Quiet<T, E>(fn(&str) -> Result<T, E>);

// A function pointer is `Copy` whatever it returns (derive would ask it of `T` and `E`).
impl<T, E> Clone for Quiet<T, E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T, E> Copy for Quiet<T, E> {}

/// A reference argument: [`ocipatch::model::Reference::parse`], whose errors already show the
/// reference redacted.
pub fn reference() -> Quiet<ocipatch::model::Reference, ocipatch::model::reference::ReferenceError>
{
    Quiet(ocipatch::model::Reference::parse)
}

/// A parser from `parse`, quiet as [`Quiet`] is.
pub fn quiet<T, E>(parse: fn(&str) -> Result<T, E>) -> Quiet<T, E> {
    Quiet(parse)
}

impl<T, E> TypedValueParser for Quiet<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: std::fmt::Display + 'static,
{
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<T, clap::Error> {
        let name = arg.map_or_else(|| "...".to_string(), ToString::to_string);
        let refuse = |why: &str| {
            cmd.clone().error(
                ErrorKind::ValueValidation,
                format!("invalid value for '{name}': {why}"),
            )
        };
        let text = value.to_str().ok_or_else(|| refuse("not UTF-8"))?;
        (self.0)(text).map_err(|why| refuse(&why.to_string()))
    }
}

/// What must not appear in a message about `args` (the command line, program name first):
/// the password of `--creds USER:PASSWORD` (the whole value when it has no `:`), and what
/// [`reference::redact`] hides in any argument.
pub fn in_args(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut creds_next = false;
    for arg in args {
        let creds = if creds_next {
            Some(arg.as_str())
        } else {
            arg.strip_prefix("--creds=")
        };
        creds_next = arg == "--creds";
        if let Some(value) = creds {
            out.push(value.split_once(':').map_or(value, |(_, p)| p).to_string());
        }
        if let Some(secret) = reference::secret_part(arg) {
            out.push(secret.to_string());
        }
    }
    out.retain(|s| !s.is_empty());
    // Longest first: a secret that contains another is replaced whole.
    out.sort_by_key(|s| std::cmp::Reverse(s.len()));
    out
}

/// `text` with each of `secrets` replaced by `***`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn secrets_of_a_command_line() {
        let found = in_args(&args(&[
            "ocipatch",
            "inspect",
            "--creds",
            "user:pa:ss",
            "--creds=tokenonly",
            "docker://u:hunter2@h/r",
            "oci:plain:tag",
        ]));
        assert_eq!(found, ["tokenonly", "hunter2", "pa:ss"]);
        let shown = scrub(
            "invalid value 'docker://u:hunter2@h/r'; unexpected 'user:pa:ss'",
            &found,
        );
        assert_eq!(
            shown,
            "invalid value 'docker://u:***@h/r'; unexpected 'user:***'"
        );
    }
}
