//! Text that reaches the terminal. Image histories, annotations, tar member names and error
//! messages come from images and archives that may be hostile: a control character or a
//! bidirectional override in them must not reach the terminal as such (an escape sequence can
//! retitle the window, hide text or fake a line). Every human output line goes through
//! [`clean`]; JSON output is escaped by serde already.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` with every control character (C0, DEL, C1; newlines and tabs included: one call is one
/// line) and every bidirectional formatting character written as a `\u{..}` escape.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// One line of human output on stdout, escaped: `outln!("{} …", x)`.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::text::out(&format!($($arg)*))
    };
}

/// One line of human output on stderr, escaped.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::text::err(&format!($($arg)*))
    };
}

/// Append one escaped line to a `String` report.
macro_rules! push_line {
    ($s:expr, $($arg:tt)*) => {{
        $s.push_str(&$crate::cli::text::clean(&format!($($arg)*)));
        $s.push('\n');
    }};
}

pub(crate) use {errln, outln, push_line};

/// Writes `text` on stdout, every line escaped ([`clean`]), each ending in a newline. A closed
/// pipe (`ocipatch inspect … | head`) is not worth a panic: the rest is dropped.
pub fn out(text: &str) {
    write_lines(&mut std::io::stdout().lock(), text);
}

/// Writes `text` on stderr, every line escaped.
pub fn err(text: &str) {
    write_lines(&mut std::io::stderr().lock(), text);
}

/// A `--json` report on stdout: serde has escaped every string in it.
pub fn out_json(json: &str) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    let _ = o
        .write_all(json.as_bytes())
        .and_then(|()| o.write_all(b"\n"));
}

fn write_lines(w: &mut dyn std::io::Write, text: &str) {
    let text = text.strip_suffix('\n').unwrap_or(text);
    for line in text.split('\n') {
        if writeln!(w, "{}", clean(line)).is_err() {
            return;
        }
    }
}

/// The one-line form of an error and its causes, escaped for the terminal (see
/// [`error_text`]).
pub fn error_line(e: &anyhow::Error) -> String {
    clean(&error_text(e)).into_owned()
}

/// The one-line form of an error and its causes, as text (JSON escapes it itself): each cause
/// is added after a `: ` unless the message so far already says it (library errors that name
/// their source in their own text, and the io::Error under them, would otherwise print it two
/// or three times).
pub fn error_text(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !text.is_empty() && !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
        if is_whole(cause) {
            break;
        }
    }
    line
}

/// An error whose message says all there is: its cause is the file system's answer, already
/// told in words (and a library's io::Error text may hold a temporary name).
fn is_whole(cause: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        cause.downcast_ref::<ocipatch::Error>(),
        Some(ocipatch::Error::Argument { .. })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_are_escaped() {
        assert_eq!(clean("plain café ✓"), "plain café ✓");
        assert_eq!(
            clean("RUN \u{1b}]0;pwned\u{7}\u{1b}[2J x\ny\tz\u{9b}\u{202e}"),
            "RUN \\u{1b}]0;pwned\\u{7}\\u{1b}[2J x\\u{a}y\\u{9}z\\u{9b}\\u{202e}"
        );
    }

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let shown = io.to_string();
        // A library error that shows its source in its text and also returns it as source().
        let lib = ocipatch::Error::io("patchh", io);
        let e = anyhow::Error::new(lib);
        assert_eq!(error_line(&e), format!("patchh: {shown}"));
        // Context added at the CLI edge, over an error that does not repeat it, keeps both.
        let e = anyhow::Error::new(std::io::Error::other("No space left on device"))
            .context("writing oci:out:x");
        assert_eq!(error_line(&e), "writing oci:out:x: No space left on device");
        let e = anyhow::anyhow!("bad \u{1b}[31m name");
        assert_eq!(error_line(&e), "bad \\u{1b}[31m name");
    }
}
