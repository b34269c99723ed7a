//! Which distribution release a base is, from its release files, and whether two bases are
//! the same release by the distribution's own rule.
//!
//! Read, in order: `etc/os-release`, `usr/lib/os-release` (the first that parses; os-release(5)
//! says the same), then the distributions' own files for what os-release lacks:
//! `etc/debian_version` (Debian's point release, or `trixie/sid` on testing), `etc/alpine-release`,
//! `etc/redhat-release` / `etc/system-release`.
//!
//! The rule that makes two releases "the same", so that a rebuild would have installed packages
//! built for the same libraries:
//! - Debian: the major version (`VERSION_ID` 12; 12.5 → 12.6 is a point release, not a change);
//!   testing/unstable, which have no `VERSION_ID`, by codename.
//! - Ubuntu: `VERSION_ID` (22.04 → 24.04 is a change).
//! - Alpine: major.minor (3.19.1 → 3.19.4 is not a change; 3.19 → 3.20 is).
//! - RHEL and its rebuilds (rhel, centos, rocky, almalinux, ol, amzn…): the major version.
//! - Everything else: `VERSION_ID` as written.
//!
//! A different `ID` is always a change (Debian → Ubuntu).

use serde::Serialize;

/// One base's release, as its files say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Release {
    /// os-release `ID` (`debian`, `ubuntu`, `alpine`, `rhel`, `fedora`…), lower case.
    pub id: String,
    /// os-release `NAME` (`Debian GNU/Linux`), or the id when absent.
    pub name: String,
    /// os-release `VERSION_ID`, or the version the distribution's own file gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// os-release `VERSION_CODENAME` (`bookworm`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// The finer version the distribution's own file gives (`etc/debian_version` 12.5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point: Option<String>,
    /// The part two bases must share to be the same release (`12`, `3.19`, `9`).
    pub series: String,
    /// The file the release was read from.
    pub file: String,
}

impl Release {
    /// `Debian 12 (bookworm)`, `Alpine 3.19`, `Red Hat Enterprise Linux 9`.
    pub fn label(&self) -> String {
        let name = match self.id.as_str() {
            "debian" => "Debian",
            "ubuntu" => "Ubuntu",
            "alpine" => "Alpine",
            _ => short_name(&self.name),
        };
        match &self.codename {
            _ if self.series == UNKNOWN => name.to_string(),
            Some(c) if !self.series.contains(c.as_str()) => format!("{name} {} ({c})", self.series),
            _ => format!("{name} {}", self.series),
        }
    }
}

fn short_name(name: &str) -> &str {
    name.strip_suffix(" GNU/Linux")
        .or_else(|| name.strip_suffix(" Linux"))
        .unwrap_or(name)
}

/// Parses os-release(5) text: `KEY=value` lines, values optionally quoted with `"` or `'`
/// (backslash escapes inside double quotes), `#` comments. Unknown or malformed lines are
/// skipped, as systemd does.
pub fn parse_os_release(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines().take(1000) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        out.push((key.to_string(), unquote(value)));
    }
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        return v[1..v.len() - 1].to_string();
    }
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let mut out = String::new();
        let mut chars = v[1..v.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    v.to_string()
}

/// The series of a release whose files give no version.
const UNKNOWN: &str = "unknown";

const RHEL_FAMILY: [&str; 8] = [
    "rhel",
    "centos",
    "rocky",
    "almalinux",
    "ol",
    "amzn",
    "circle",
    "navylinux",
];

/// The release a base's files describe; `read(path)` gives a file's contents (links already
/// followed inside the image). `None` when no release file says anything.
pub fn detect(read: &dyn Fn(&str) -> Option<Vec<u8>>) -> Option<Release> {
    let text = |p: &str| read(p).map(|b| String::from_utf8_lossy(&b).into_owned());
    let os = ["etc/os-release", "usr/lib/os-release"]
        .into_iter()
        .find_map(|f| {
            let fields = parse_os_release(&text(f)?);
            fields.iter().any(|(k, _)| k == "ID").then_some((f, fields))
        });
    let get = |fields: &[(String, String)], key: &str| {
        fields
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let first_line = |p: &str| {
        text(p).and_then(|t| {
            let l = t.lines().next()?.trim().to_string();
            (!l.is_empty()).then_some(l)
        })
    };
    let (file, id, name, version_id, codename) = match &os {
        Some((f, fields)) => {
            let id = get(fields, "ID").unwrap_or_default().to_ascii_lowercase();
            (
                f.to_string(),
                id.clone(),
                get(fields, "NAME").unwrap_or(id),
                get(fields, "VERSION_ID"),
                get(fields, "VERSION_CODENAME"),
            )
        }
        None => {
            if let Some(v) = first_line("etc/alpine-release") {
                (
                    "etc/alpine-release".into(),
                    "alpine".into(),
                    "Alpine Linux".into(),
                    Some(v),
                    None,
                )
            } else if let Some(v) = first_line("etc/debian_version") {
                (
                    "etc/debian_version".into(),
                    "debian".into(),
                    "Debian GNU/Linux".into(),
                    None,
                    Some(v),
                )
            } else if let Some((f, l)) = ["etc/redhat-release", "etc/system-release"]
                .into_iter()
                .find_map(|f| Some((f, first_line(f)?)))
            {
                // "Red Hat Enterprise Linux release 9.3 (Plow)"
                let version = l
                    .split_whitespace()
                    .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
                    .map(str::to_string);
                let name = l.split(" release ").next().unwrap_or(&l).to_string();
                (f.to_string(), "rhel".into(), name, version, None)
            } else {
                return None;
            }
        }
    };
    let family = |fam: &str| id == fam;
    let rhel = RHEL_FAMILY.contains(&id.as_str());
    let point = if family("debian") {
        first_line("etc/debian_version")
    } else if family("alpine") {
        first_line("etc/alpine-release")
    } else {
        None
    };
    let codename = codename.or_else(|| {
        // Debian testing/unstable: `trixie/sid` in debian_version, no VERSION_ID.
        point
            .as_deref()
            .filter(|p| family("debian") && !p.starts_with(|c: char| c.is_ascii_digit()))
            .map(|p| p.split('/').next().unwrap_or(p).to_string())
    });
    let major = |v: &str| v.split('.').next().unwrap_or(v).to_string();
    let major_minor = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    let series = match (&version_id, id.as_str()) {
        (Some(v), "debian") => major(v),
        (Some(v), "alpine") => major_minor(v),
        (Some(v), _) if rhel => major(v),
        (Some(v), _) => v.clone(),
        (None, _) => codename.clone().unwrap_or_else(|| UNKNOWN.into()),
    };
    Some(Release {
        id,
        name,
        version_id,
        codename,
        point,
        series,
        file,
    })
}

/// Whether going from `old` to `new` changes the release by the distribution's rule; the words
/// for the finding when it does.
pub fn change(old: &Release, new: &Release) -> Option<String> {
    if old.id == new.id && old.series == new.series {
        return None;
    }
    Some(format!(
        "{} → {}: the application's packages were built for {}",
        old.label(),
        new.label(),
        if old.id == new.id {
            old.series.clone()
        } else {
            old.label()
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> impl Fn(&str) -> Option<Vec<u8>> {
        let list: Vec<(String, Vec<u8>)> = list
            .iter()
            .map(|(f, t)| (f.to_string(), t.as_bytes().to_vec()))
            .collect();
        move |p: &str| list.iter().find(|(f, _)| f == p).map(|(_, t)| t.clone())
    }

    fn os_release(text: &str) -> Release {
        detect(&files(&[("etc/os-release", text)])).unwrap()
    }

    const BOOKWORM: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
    const TRIXIE: &str = "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"13\"\nVERSION=\"13 (trixie)\"\nVERSION_CODENAME=trixie\nID=debian\n";

    #[test]
    fn debian_point_releases_are_the_same_release_and_majors_are_not() {
        let a = detect(&files(&[
            ("usr/lib/os-release", BOOKWORM),
            ("etc/debian_version", "12.5\n"),
        ]))
        .unwrap();
        let b = detect(&files(&[
            ("usr/lib/os-release", BOOKWORM),
            ("etc/debian_version", "12.6\n"),
        ]))
        .unwrap();
        assert_eq!(
            (a.series.as_str(), a.point.as_deref()),
            ("12", Some("12.5"))
        );
        assert_eq!(change(&a, &b), None);
        let t = detect(&files(&[
            ("etc/os-release", TRIXIE),
            ("etc/debian_version", "13.1\n"),
        ]))
        .unwrap();
        assert_eq!(
            change(&a, &t).unwrap(),
            "Debian 12 (bookworm) → Debian 13 (trixie): the application's packages were built for 12"
        );
        // Testing: no VERSION_ID, the codename decides.
        let sid = detect(&files(&[
            ("etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux trixie/sid\"\nNAME=\"Debian GNU/Linux\"\nID=debian\n"),
            ("etc/debian_version", "trixie/sid\n"),
        ]))
        .unwrap();
        assert_eq!(sid.series, "trixie");
        assert!(change(&a, &sid).is_some());
    }

    #[test]
    fn alpine_by_major_minor_rhel_by_major_ubuntu_by_version_id() {
        let alpine = |v: &str| {
            os_release(&format!(
                "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID={v}\n"
            ))
        };
        assert_eq!(change(&alpine("3.19.1"), &alpine("3.19.4")), None);
        assert_eq!(
            change(&alpine("3.19.1"), &alpine("3.20.0")).unwrap(),
            "Alpine 3.19 → Alpine 3.20: the application's packages were built for 3.19"
        );
        let ubi = |v: &str| {
            os_release(&format!(
                "NAME=\"Red Hat Enterprise Linux\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"{v}\"\n"
            ))
        };
        assert_eq!(change(&ubi("9.3"), &ubi("9.4")), None);
        assert!(change(&ubi("8.10"), &ubi("9.4"))
            .unwrap()
            .contains("built for 8"));
        let u = |v: &str| {
            os_release(&format!(
                "NAME=\"Ubuntu\"\nID=ubuntu\nVERSION_ID=\"{v}\"\nVERSION_CODENAME=x\n"
            ))
        };
        assert!(change(&u("22.04"), &u("24.04")).is_some());
        // Another distribution is always a change.
        let deb = detect(&files(&[("etc/os-release", BOOKWORM)])).unwrap();
        assert!(change(&deb, &u("22.04"))
            .unwrap()
            .contains("built for Debian 12"));
    }

    #[test]
    fn distribution_files_stand_in_for_a_missing_os_release() {
        let r = detect(&files(&[("etc/alpine-release", "3.18.4\n")])).unwrap();
        assert_eq!((r.id.as_str(), r.series.as_str()), ("alpine", "3.18"));
        let r = detect(&files(&[(
            "etc/redhat-release",
            "CentOS Linux release 7.9.2009 (Core)\n",
        )]))
        .unwrap();
        assert_eq!((r.series.as_str(), r.name.as_str()), ("7", "CentOS Linux"));
        assert_eq!(detect(&files(&[])), None);
        // Garbage never panics, and is no release.
        assert_eq!(
            detect(&files(&[("etc/os-release", "\u{0}=\n==\n'\n")])),
            None
        );
        assert_eq!(unquote("\"a\\\"b\""), "a\"b");
    }
}
