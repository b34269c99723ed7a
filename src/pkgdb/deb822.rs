//! dpkg's status file and apt's extended_states: RFC 822-style stanzas separated by blank
//! lines, `Field: value` lines continued by lines that start with a space or a tab.

use super::{split_stanzas, ParseError, Record};

/// Reads the fields the merge needs from each stanza of `bytes` (already checked to be UTF-8).
/// Each record keeps its exact lines.
pub(super) fn parse(bytes: &[u8]) -> Result<Vec<Record>, ParseError> {
    let mut records = Vec::new();
    for raw in split_stanzas(bytes)? {
        let mut s = Stanza::new(raw.line);
        for (lineno, content) in raw.lines {
            if content.starts_with([' ', '\t']) {
                if s.last_field.is_none() {
                    return Err(ParseError::new(
                        lineno,
                        "continuation line without a field before it",
                    ));
                }
                continue;
            }
            let Some((name, value)) = content.split_once(':') else {
                return Err(ParseError::new(
                    lineno,
                    format!("not a 'Field: value' line: {:?}", truncate(content)),
                ));
            };
            if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c.is_control()) {
                return Err(ParseError::new(
                    lineno,
                    format!("invalid field name {:?}", truncate(name)),
                ));
            }
            if s.seen.iter().any(|f| f.eq_ignore_ascii_case(name)) {
                return Err(ParseError::new(
                    lineno,
                    format!("field {name} appears twice in one stanza"),
                ));
            }
            s.seen.push(name.to_string());
            s.last_field = Some(name.to_string());
            let value = value.trim();
            match name.to_ascii_lowercase().as_str() {
                "package" => s.name = Some(value.to_string()),
                "architecture" => s.arch = value.to_string(),
                "version" => s.version = value.to_string(),
                "multi-arch" => s.multi_arch_same = value == "same",
                _ => {}
            }
        }
        records.push(s.finish(raw.text)?);
    }
    Ok(records)
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

struct Stanza {
    line: usize,
    name: Option<String>,
    arch: String,
    version: String,
    multi_arch_same: bool,
    seen: Vec<String>,
    last_field: Option<String>,
}

impl Stanza {
    fn new(line: usize) -> Stanza {
        Stanza {
            line,
            name: None,
            arch: String::new(),
            version: String::new(),
            multi_arch_same: false,
            seen: Vec::new(),
            last_field: None,
        }
    }

    fn finish(self, text: &str) -> Result<Record, ParseError> {
        let name = self
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ParseError::new(self.line, "stanza without a Package field"))?;
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(ParseError::new(
                self.line,
                format!("invalid package name {:?}", truncate(&name)),
            ));
        }
        Ok(Record {
            name,
            arch: self.arch,
            version: self.version,
            multi_arch_same: self.multi_arch_same,
            arch_in_key: true,
            text: text.as_bytes().to_vec(),
            line: self.line,
        })
    }
}

/// dpkg's order for the status file (`writedb_stanzas` sorts with
/// `pkg_sorter_by_nonambig_name_arch`): by name (byte order), then the instance whose name needs
/// no architecture qualifier first, then by architecture. A name needs the qualifier when the
/// package is `Multi-Arch: same` or of a foreign architecture (neither native nor `all`).
pub(super) fn dpkg_order(a: &Record, b: &Record, native: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let needs_arch = |r: &Record| {
        if r.arch.is_empty() {
            return false;
        }
        r.multi_arch_same || !(r.arch == native || r.arch == "all")
    };
    a.name.as_bytes().cmp(b.name.as_bytes()).then_with(|| {
        if a.arch == b.arch {
            return Ordering::Equal;
        }
        match (needs_arch(a), needs_arch(b)) {
            (true, true) => a.arch.as_bytes().cmp(b.arch.as_bytes()),
            (true, false) => Ordering::Greater,
            (false, _) => Ordering::Less,
        }
    })
}

/// The native architecture, as dpkg knows it: the architecture of the `dpkg` package itself, or
/// the most common architecture other than `all`.
pub(crate) fn native_arch<'a>(records: impl Iterator<Item = &'a Record> + Clone) -> String {
    if let Some(r) = records
        .clone()
        .find(|r| r.name == "dpkg" && !r.arch.is_empty())
    {
        return r.arch.clone();
    }
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for r in records.filter(|r| !r.arch.is_empty() && r.arch != "all") {
        *counts.entry(&r.arch).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(a, _)| a.to_string())
        .unwrap_or_default()
}
