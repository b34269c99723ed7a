//! The accounts files (`etc/passwd`, `etc/group`, `etc/shadow`, `etc/gshadow`): when an
//! application adds a user (`useradd`, `adduser`, a package's postinst) its layer carries a
//! whole copy of each file. If the new base changed the same file (a system user added or
//! removed by an update), the application's copy hides that change. A rebuild would have run
//! `useradd` on the new base's files; the 3-way merge below writes that result.
//!
//! The unit is one entry, keyed by its first field (the user or group name), as shadow-utils
//! treats them:
//! - an entry the application did not touch (same line as the old base's): the new base's
//!   (changed, added or removed by it);
//! - an entry only the application added, changed or deleted: the application's doing;
//! - an entry both changed differently: the application's line, and a conflict.
//!
//! The result is the new base's lines in their order (with the application's changes applied
//! in place), then the entries the application added, in its order. An added user or group
//! whose numeric ID the new base now gives to another name is a conflict: files owned by that
//! ID in the application's layers would change owner.
//!
//! PURE: bytes in, bytes out.

use std::collections::{HashMap, HashSet};

/// The merged file and what deserves a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountsMerged {
    /// The file to write.
    pub bytes: Vec<u8>,
    /// Entries both changed, and IDs given to two names, for humans.
    pub conflicts: Vec<String>,
}

/// Why an accounts file cannot be merged (whose copy, which file, what is wrong).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountsError {
    /// A copy that is not UTF-8.
    #[error("{whose} {file} is not UTF-8")]
    NotUtf8 {
        /// Whose copy: `the old base's`, `the new base's`, `the application's`.
        whose: &'static str,
        /// The file (`etc/passwd`).
        file: String,
    },
    /// A line that is not a plain entry (NIS `+`/`-` lines, comments).
    #[error("{whose} {file} line {line}: not a plain entry (NIS or comment lines are not merged)")]
    NotPlain {
        /// Whose copy.
        whose: &'static str,
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
    },
    /// A name listed twice.
    #[error("{whose} {file} lists {name} twice")]
    Twice {
        /// Whose copy.
        whose: &'static str,
        /// The file.
        file: String,
        /// The user or group name.
        name: String,
    },
}

/// One parsed file: entries in order (name, whole line without `\n`).
fn entries(
    text: &[u8],
    file: &str,
    whose: &'static str,
) -> Result<Vec<(String, String)>, AccountsError> {
    let text = std::str::from_utf8(text).map_err(|_| AccountsError::NotUtf8 {
        whose,
        file: file.to_string(),
    })?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let name = line.split(':').next().unwrap_or_default();
        if name.is_empty() || name.starts_with(['#', '+', '-']) {
            return Err(AccountsError::NotPlain {
                whose,
                file: file.to_string(),
                line: n + 1,
            });
        }
        if !seen.insert(name.to_string()) {
            return Err(AccountsError::Twice {
                whose,
                file: file.to_string(),
                name: name.to_string(),
            });
        }
        out.push((name.to_string(), line.to_string()));
    }
    Ok(out)
}

/// The numeric ID field of passwd and group lines (`name:x:ID:...`); none for the shadow files.
fn id_of(file: &str, line: &str) -> Option<String> {
    if file.ends_with("passwd") || file.ends_with("group") {
        line.split(':').nth(2).map(str::to_string)
    } else {
        None
    }
}

/// Merges one accounts file: the old base's copy, the new base's, and the application's.
/// `file` is its path (`etc/passwd`), for the words and to know which field is the ID.
pub fn merge(
    file: &str,
    old: Option<&[u8]>,
    new: Option<&[u8]>,
    app: &[u8],
) -> Result<AccountsMerged, AccountsError> {
    let old = entries(old.unwrap_or_default(), file, "the old base's")?;
    let new = entries(new.unwrap_or_default(), file, "the new base's")?;
    let app = entries(app, file, "the application's")?;
    let index = |v: &[(String, String)]| -> HashMap<String, String> { v.iter().cloned().collect() };
    let (old_m, new_m, app_m) = (index(&old), index(&new), index(&app));
    let mut conflicts = Vec::new();
    let mut lines: Vec<String> = Vec::new();
    for (name, new_line) in &new {
        let (o, a) = (old_m.get(name), app_m.get(name));
        match (o, a) {
            // Untouched by the application: the new base's.
            (Some(o), Some(a)) if a == o => lines.push(new_line.clone()),
            (None, None) => lines.push(new_line.clone()),
            // Deleted by the application.
            (Some(o), None) => {
                if o != new_line {
                    conflicts.push(format!(
                        "{file}: the application deletes {name}, which the new base changes; left deleted"
                    ));
                }
            }
            // Changed or added by the application (the new base added or changed it too).
            (o, Some(a)) => {
                if a != new_line && o.is_some_and(|o| o != new_line) {
                    conflicts.push(format!(
                        "{file}: both the application and the new base change {name}; the application's entry is kept"
                    ));
                } else if a != new_line && o.is_none() {
                    conflicts.push(format!(
                        "{file}: the application and the new base both add {name}, differently; the application's entry is kept"
                    ));
                }
                lines.push(a.clone());
            }
        }
    }
    let ids: HashMap<String, String> = lines
        .iter()
        .filter_map(|l| {
            let name = l.split(':').next()?.to_string();
            Some((id_of(file, l)?, name))
        })
        .collect();
    for (name, app_line) in &app {
        if new_m.contains_key(name) {
            continue;
        }
        match old_m.get(name) {
            // The new base removed it and the application did not touch it: removed.
            Some(o) if o == app_line => continue,
            Some(_) => conflicts.push(format!(
                "{file}: the new base removes {name}, which the application changed; the application's entry is kept"
            )),
            None => {}
        }
        if let Some(id) = id_of(file, app_line) {
            if let Some(other) = ids.get(&id).filter(|o| *o != name) {
                conflicts.push(format!(
                    "{file}: the application's {name} has ID {id}, which the new base gives to {other}"
                ));
            }
        }
        lines.push(app_line.clone());
    }
    let mut bytes = Vec::new();
    for l in lines {
        bytes.extend_from_slice(l.as_bytes());
        bytes.push(b'\n');
    }
    Ok(AccountsMerged { bytes, conflicts })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\n";

    fn text(m: &AccountsMerged) -> &str {
        std::str::from_utf8(&m.bytes).unwrap()
    }

    #[test]
    fn the_apps_users_go_on_the_new_bases_file() {
        let app = format!("{OLD}app:x:999:999::/home/app:/bin/sh\n");
        // The new base adds a system user and changes a shell.
        let new = OLD.replace(
            "daemon:/usr/sbin:/usr/sbin/nologin",
            "daemon:/usr/sbin:/bin/false",
        ) + "systemd-network:x:998:998::/:/usr/sbin/nologin\n";
        let m = merge(
            "etc/passwd",
            Some(OLD.as_bytes()),
            Some(new.as_bytes()),
            app.as_bytes(),
        )
        .unwrap();
        assert_eq!(text(&m), format!("{new}app:x:999:999::/home/app:/bin/sh\n"));
        assert!(m.conflicts.is_empty());
        // The same inputs give the same bytes; the new base unchanged gives the app's file.
        let same = merge(
            "etc/passwd",
            Some(OLD.as_bytes()),
            Some(OLD.as_bytes()),
            app.as_bytes(),
        )
        .unwrap();
        assert_eq!(text(&same), app);
    }

    #[test]
    fn conflicts_are_named() {
        let app =
            OLD.replace("/root:/bin/bash", "/root:/bin/zsh") + "app:x:998:998::/home/app:/bin/sh\n";
        let new = OLD.replace("/root:/bin/bash", "/root:/bin/dash")
            + "systemd-network:x:998:998::/:/usr/sbin/nologin\n";
        let m = merge(
            "etc/passwd",
            Some(OLD.as_bytes()),
            Some(new.as_bytes()),
            app.as_bytes(),
        )
        .unwrap();
        assert!(
            text(&m).starts_with("root:x:0:0:root:/root:/bin/zsh\n"),
            "{}",
            text(&m)
        );
        assert_eq!(m.conflicts.len(), 2, "{:?}", m.conflicts);
        assert!(m.conflicts[0].contains("both the application and the new base change root"));
        assert!(
            m.conflicts[1].contains("app has ID 998, which the new base gives to systemd-network")
        );
        // Shadow files have no ID field.
        let m = merge(
            "etc/shadow",
            Some(b"root:*:1::::::\n"),
            Some(b"root:*:2::::::\n"),
            b"root:*:1::::::\napp:!:3::::::\n",
        )
        .unwrap();
        assert_eq!(text(&m), "root:*:2::::::\napp:!:3::::::\n");
    }

    #[test]
    fn what_cannot_be_merged_is_refused() {
        let e = merge("etc/group", None, None, b"a:x:1:\na:x:2:\n").unwrap_err();
        assert!(
            matches!(&e, AccountsError::Twice { name, .. } if name == "a"),
            "{e}"
        );
        assert!(e.to_string().contains("twice"), "{e}");
        let e = merge("etc/group", None, None, b"+@nis\n").unwrap_err();
        assert!(matches!(e, AccountsError::NotPlain { line: 1, .. }), "{e}");
        assert!(e.to_string().contains("NIS"), "{e}");
        let e = merge("etc/group", None, None, b"\xff\n").unwrap_err();
        assert_eq!(e.to_string(), "the application's etc/group is not UTF-8");
    }
}
