//! What a registry client must never print: the credentials it sends (the password, and the
//! `Authorization: Basic` value it becomes), the Bearer tokens it is given, and the userinfo
//! and query of a URL (a token realm, an upload `Location`, a pre-signed redirect all may carry
//! a signature or a token there).
//!
//! A registry is untrusted, and some echo the request in their error bodies (its headers
//! included) or a token server repeats what it was sent: every message a client builds goes
//! through [`Secrets::scrub`], which knows this connection's secrets, and also removes any
//! `Basic …`/`Bearer …` credential it did not hand out itself.

use std::sync::Mutex;

use base64::Engine as _;

use super::auth::Credentials;

/// The secrets of one registry connection: its credentials, and every token it was issued.
pub struct Secrets {
    known: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

/// A secret shorter than this is replaced only where it stands as a word of its own (not
/// inside a longer run of letters and digits): a four-letter password would otherwise eat
/// that word out of every message.
const SHORT: usize = 8;

/// A `Basic`/`Bearer` value this long is taken for a credential, whoever issued it.
const CREDENTIAL_VALUE: usize = 8;

impl Secrets {
    /// The secrets `creds` put on the wire: the password, `user:password`, and its base64
    /// forms (an `Authorization: Basic` value, padded or not, standard or URL-safe).
    pub fn new(creds: Option<&Credentials>) -> Secrets {
        let mut known = Vec::new();
        if let Some(c) = creds {
            let pair = format!("{}:{}", c.username, c.password);
            use base64::engine::general_purpose::{
                STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
            };
            for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
                known.push(engine.encode(&pair));
            }
            known.push(pair);
            known.push(c.password.clone());
        }
        let secrets = Secrets {
            known: Mutex::new(Vec::new()),
        };
        for s in known {
            secrets.add(&s);
        }
        secrets
    }

    /// Remembers one more secret (a token just issued).
    pub fn add(&self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let mut known = self.known.lock().expect("secrets lock");
        if !known.iter().any(|k| k == secret) {
            known.push(secret.to_string());
            // Longest first: a secret that contains another is replaced whole.
            known.sort_by_key(|k| std::cmp::Reverse(k.len()));
        }
    }

    /// Remembers the query values of `url` (a token realm's key, a pre-signed redirect's
    /// signature): messages never show a query, and an echo of it must not show it either.
    pub fn add_query_of(&self, url: &str) {
        let query = url.split('#').next().unwrap_or(url).split_once('?');
        for pair in query.map_or("", |(_, q)| q).split('&') {
            self.add(pair.split_once('=').map_or("", |(_, v)| v));
        }
    }

    /// `text` with every known secret, and every `Basic`/`Bearer` credential value, replaced by
    /// `***`.
    pub fn scrub(&self, text: &str) -> String {
        let known = self.known.lock().expect("secrets lock");
        let out = known
            .iter()
            .fold(text.to_string(), |t, secret| replace_secret(&t, secret));
        scrub_credential_values(&out)
    }
}

/// `text` with `secret` replaced by `***` (a short one only as a word of its own).
fn replace_secret(text: &str, secret: &str) -> String {
    if secret.len() >= SHORT {
        return text.replace(secret, "***");
    }
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(secret) {
        let end = i + secret.len();
        if word(rest[..i].chars().next_back()) || word(rest[end..].chars().next()) {
            // Inside a longer word: keep one character and look again after it.
            let step = i + rest[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..step]);
            rest = &rest[step..];
        } else {
            out.push_str(&rest[..i]);
            out.push_str("***");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// `text` with the value after any `Basic ` or `Bearer ` (any case) replaced by `***` when it
/// looks like a credential: [`CREDENTIAL_VALUE`] or more base64, token or JWT characters (see
/// `looks_like_credential`).
fn scrub_credential_values(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let token_char = |b: u8| b.is_ascii_alphanumeric() || b"+/=._~-".contains(&b);
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some((start, scheme)) = ["basic ", "bearer "]
        .iter()
        .filter_map(|s| lower[from..].find(s).map(|i| (from + i, s.len())))
        .min()
    {
        let value = start + scheme;
        let len = text.as_bytes()[value..]
            .iter()
            .take_while(|b| token_char(**b))
            .count();
        let word_start = start == 0 || !text.as_bytes()[start - 1].is_ascii_alphanumeric();
        if word_start && looks_like_credential(&text[value..value + len]) {
            out.push_str(&text[copied..value]);
            out.push_str("***");
            copied = value + len;
        }
        from = value + len;
    }
    out.push_str(&text[copied..]);
    out
}

/// Whether the word after `Basic `/`Bearer ` is a credential rather than prose: long enough,
/// and with a digit, a symbol, or capitals past its first letter (base64 and tokens are mixed;
/// "authentication" is not).
fn looks_like_credential(value: &str) -> bool {
    value.len() >= CREDENTIAL_VALUE
        && (value.bytes().any(|b| !b.is_ascii_alphabetic())
            || value.bytes().skip(1).any(|b| b.is_ascii_uppercase()))
}

/// A URL as messages show it: scheme, host, port and path; no userinfo, query or fragment.
pub fn shown_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let authority_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].rfind('@') {
        Some(at) => format!("{}{}", &url[..scheme_end], &url[scheme_end + at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            username: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn credentials_and_their_basic_header_are_scrubbed() {
        let c = creds("alice", "s3cr3t-pass");
        let s = Secrets::new(Some(&c));
        let header = c.basic_header();
        let echoed = format!(
            "denied: Authorization: {header}; user alice password s3cr3t-pass; raw {}",
            header.trim_start_matches("Basic ")
        );
        let shown = s.scrub(&echoed);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(
            !shown.contains(header.trim_start_matches("Basic ")),
            "{shown}"
        );
        assert!(shown.contains("user alice"), "{shown}");
    }

    #[test]
    fn tokens_are_scrubbed_once_known_and_unknown_ones_by_their_scheme() {
        let s = Secrets::new(None);
        s.add("tok-0123456789");
        assert_eq!(s.scrub("token tok-0123456789 expired"), "token *** expired");
        assert_eq!(
            s.scrub("got authorization: bearer eyJhbGciOi.eyJzdWIi.sig_-x"),
            "got authorization: bearer ***"
        );
        assert_eq!(
            s.scrub("BASIC dXNlcjpwYXNz, Bearer realm=\"x\""),
            "BASIC ***, Bearer realm=\"x\""
        );
        // Words that merely follow the scheme's name stay.
        assert_eq!(
            s.scrub("Bearer token required; basic authentication failed"),
            "Bearer token required; basic authentication failed"
        );
    }

    #[test]
    fn query_values_of_a_url_are_secrets_once_added() {
        let s = Secrets::new(None);
        s.add_query_of("https://auth.test/token?access_key=k3y-0123456789&x=#frag");
        assert_eq!(
            s.scrub("GET /token?access_key=k3y-0123456789&service=r"),
            "GET /token?access_key=***&service=r"
        );
    }

    #[test]
    fn a_short_password_is_scrubbed_as_a_word_only() {
        let s = Secrets::new(Some(&creds("u", "test")));
        assert_eq!(
            s.scrub("latest: password test refused (test)"),
            "latest: password *** refused (***)"
        );
    }

    #[test]
    fn urls_are_shown_without_userinfo_query_or_fragment() {
        assert_eq!(
            shown_url("https://u:p@s3.test:443/b/k?X-Amz-Signature=abc#f"),
            "https://s3.test:443/b/k"
        );
        assert_eq!(
            shown_url("http://tok@auth.test/token?access_key=k"),
            "http://auth.test/token"
        );
        assert_eq!(
            shown_url("https://r.test/v2/a/blobs/uploads/1?_state=xyz"),
            "https://r.test/v2/a/blobs/uploads/1"
        );
        // An `@` in the path is no userinfo.
        assert_eq!(shown_url("https://r.test/a@b"), "https://r.test/a@b");
        assert_eq!(shown_url("relative/path?sig=1"), "relative/path");
    }

    #[test]
    fn debug_shows_nothing() {
        let s = Secrets::new(Some(&creds("u", "hunter2-long")));
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
