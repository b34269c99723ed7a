//! apk-tools' installed database and world file.
//!
//! `lib/apk/db/installed` (apk-tools 2.x `apk_db_write_fdb`, read with `apk_db_index_read`):
//! one stanza per package, lines `X:value` with a one-letter field (`C` checksum, `P` name,
//! `V` version, `A` arch, ... then `F`/`R`/`Z`/`a`/`M` for the owned directories and files),
//! each stanza followed by a blank line. apk-tools 2.14 writes the packages sorted by name
//! (`apk_db_sorted_installed_packages`: `strcasecmp`, then `strcmp`, then version); older
//! versions wrote them in install order, upgrades re-appended at the end.
//!
//! `etc/apk/world` (`apk_db_write_config`): the requested dependencies joined by `\n`, plus a
//! final `\n`, in the order of `db->world`: `apk_deps_add` replaces an entry in place or
//! appends it; `apk_deps_del` moves the last entry into the deleted one's slot. apk reads the
//! file as whitespace-separated tokens (`apk_blob_pull_deps`).

use super::{split_stanzas, ParseError, Record};

pub(super) fn parse_installed(bytes: &[u8]) -> Result<Vec<Record>, ParseError> {
    let mut records = Vec::new();
    for raw in split_stanzas(bytes)? {
        let mut fields = Fields::default();
        for (lineno, content) in raw.lines {
            let b = content.as_bytes();
            if b.len() < 2 || b[1] != b':' || !b[0].is_ascii_alphabetic() {
                return Err(ParseError::new(
                    lineno,
                    format!(
                        "not an apk 'X:value' line: {:?}",
                        content.chars().take(60).collect::<String>()
                    ),
                ));
            }
            let value = &content[2..];
            match b[0] {
                b'P' => fields.name = Some(value.to_string()),
                b'V' => fields.version = value.to_string(),
                b'A' => fields.arch = value.to_string(),
                _ => {}
            }
        }
        records.push(fields.finish(raw.line, raw.text.as_bytes())?);
    }
    Ok(records)
}

#[derive(Default)]
struct Fields {
    name: Option<String>,
    version: String,
    arch: String,
}

impl Fields {
    fn finish(self, line: usize, text: &[u8]) -> Result<Record, ParseError> {
        let name = self
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ParseError::new(line, "package stanza without a P: line"))?;
        Ok(Record {
            name,
            arch: self.arch,
            version: self.version,
            multi_arch_same: false,
            // apk installs one package per name: the name alone is the key.
            arch_in_key: false,
            text: text.to_vec(),
            line,
        })
    }
}

/// A world token split into the name it asks for and its constraint: `name`, `name>=1.2`,
/// `name@tag`, `!name` (a conflict), `name=~1`.
fn split_dep(token: &str) -> (&str, &str) {
    let body = token.strip_prefix('!').unwrap_or(token);
    // An ASCII byte: a char boundary.
    let end = body.find(['<', '>', '=', '~', '@']).unwrap_or(body.len());
    body.split_at(end)
}

pub(super) fn parse_world(bytes: &[u8]) -> Result<Vec<Record>, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::new(1, "not UTF-8"))?;
    let mut records = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for token in line.split_whitespace() {
            let (name, constraint) = split_dep(token);
            if name.is_empty() {
                return Err(ParseError::new(
                    i + 1,
                    format!("world entry {token:?} names no package"),
                ));
            }
            records.push(Record {
                name: name.to_string(),
                arch: String::new(),
                version: constraint.to_string(),
                multi_arch_same: false,
                arch_in_key: false,
                text: token.as_bytes().to_vec(),
                line: i + 1,
            });
        }
    }
    Ok(records)
}

/// apk-tools 2.14's installed-database order: name case-insensitively, then byte order.
pub(super) fn apk_order(a: &Record, b: &Record) -> std::cmp::Ordering {
    a.name
        .to_ascii_lowercase()
        .cmp(&b.name.to_ascii_lowercase())
        .then_with(|| a.name.cmp(&b.name))
}

/// Whether a database is in apk-tools 2.14's sorted order (then the result is sorted too).
pub(super) fn is_apk_sorted(records: &[Record]) -> bool {
    records
        .windows(2)
        .all(|w| apk_order(&w[0], &w[1]) != std::cmp::Ordering::Greater)
}

/// The world that results from applying the application's edits (relative to the old base's
/// world) to the new base's world, the way `apk add` / `apk del` edit it.
pub(super) fn merge_world(old: &[Record], new: &[Record], app: &[Record]) -> Vec<Record> {
    let mut world: Vec<Record> = new.to_vec();
    // apk_deps_del: the last entry takes the deleted one's place.
    for o in old {
        if !app.iter().any(|a| a.name == o.name) {
            if let Some(i) = world.iter().position(|w| w.name == o.name) {
                world.swap_remove(i);
            }
        }
    }
    // apk_deps_add: replace in place, or append.
    for a in app {
        if old.iter().any(|o| o.name == a.name && o.text == a.text) {
            continue;
        }
        match world.iter_mut().find(|w| w.name == a.name) {
            Some(w) => *w = a.clone(),
            None => world.push(a.clone()),
        }
    }
    world
}
