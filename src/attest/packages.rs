//! The installed packages of a package database, from its bytes: dpkg's `status` (and the
//! `status.d/` stanza files of distroless images), apk's `installed`, rpm's `rpmdb.sqlite`.
//!
//! dpkg lists packages that are not installed (removed with their configuration files kept,
//! half-installed): only stanzas whose `Status:` says `installed` are packages of the image, as
//! `dpkg-query -W -f '${db:Status-Status}'` says `installed`. A stanza without `Status:` (some
//! status.d files) counts as installed.

use super::{Package, PackageKind};
use crate::pkgdb::rpmheader::Header;
use crate::pkgdb::{self, rpm, Format, ParseError, Record};

/// rpm's `RPMTAG_SOURCERPM`: the source package's file name.
const TAG_SOURCERPM: u32 = 1044;

/// The value of a deb822 field (`Source: openssl (3.0.11-1)`) of one stanza, first line only.
fn deb822_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (!l.starts_with([' ', '\t']) && k.eq_ignore_ascii_case(key)).then(|| v.trim())
    })
}

/// The value of an apk `X:value` line of one stanza.
fn apk_field(text: &str, key: char) -> Option<&str> {
    text.lines().find_map(|l| {
        let mut chars = l.chars();
        (chars.next() == Some(key) && chars.next() == Some(':')).then(|| &l[2..])
    })
}

/// `name` and `(version)` of a dpkg `Source:` field.
fn dpkg_source(value: &str) -> (String, Option<String>) {
    match value.split_once('(') {
        Some((name, rest)) => (
            name.trim().to_string(),
            rest.strip_suffix(')')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty()),
        ),
        None => (value.trim().to_string(), None),
    }
}

fn dpkg_package(r: &Record) -> Option<Package> {
    let text = String::from_utf8_lossy(&r.text);
    if let Some(status) = deb822_field(&text, "Status") {
        if status.split_whitespace().nth(2) != Some("installed") {
            return None;
        }
    }
    let (source, source_version) = match deb822_field(&text, "Source") {
        Some(s) if !s.is_empty() => {
            let (n, v) = dpkg_source(s);
            (Some(n), v)
        }
        _ => (None, None),
    };
    Some(Package {
        kind: PackageKind::Deb,
        name: r.name.clone(),
        version: r.version.clone(),
        arch: r.arch.clone(),
        epoch: None,
        source,
        source_version,
    })
}

/// The installed packages of a dpkg `status` file (or one `status.d/` file).
pub fn dpkg(bytes: &[u8]) -> Result<Vec<Package>, ParseError> {
    let db = pkgdb::parse(Format::DpkgStatus, bytes)?;
    Ok(db.records.iter().filter_map(dpkg_package).collect())
}

/// The packages of an apk `installed` database.
pub fn apk(bytes: &[u8]) -> Result<Vec<Package>, ParseError> {
    let db = pkgdb::parse(Format::ApkInstalled, bytes)?;
    Ok(db
        .records
        .iter()
        .map(|r| {
            let text = String::from_utf8_lossy(&r.text);
            Package {
                kind: PackageKind::Apk,
                name: r.name.clone(),
                version: r.version.clone(),
                arch: r.arch.clone(),
                epoch: None,
                source: apk_field(&text, 'o')
                    .filter(|o| !o.is_empty())
                    .map(str::to_string),
                source_version: None,
            }
        })
        .collect())
}

/// One rpm header as a package: `VERSION-RELEASE`, the epoch apart, `SOURCERPM`.
pub fn rpm_package(name: &str, arch: &str, header: &Header) -> Package {
    let version = header.string(rpm::TAG_VERSION).unwrap_or_default();
    let release = header.string(rpm::TAG_RELEASE).unwrap_or_default();
    let version = match (version.is_empty(), release.is_empty()) {
        (false, false) => format!("{version}-{release}"),
        (false, true) => version,
        (true, _) => release,
    };
    Package {
        kind: PackageKind::Rpm,
        name: name.to_string(),
        version,
        arch: arch.to_string(),
        epoch: header.u32s(rpm::TAG_EPOCH).and_then(|e| e.first().copied()),
        source: header.string(TAG_SOURCERPM).filter(|s| !s.is_empty()),
        source_version: None,
    }
}

/// The packages of an rpm `rpmdb.sqlite`.
pub fn rpm(bytes: &[u8]) -> Result<Vec<Package>, rpm::RpmDbError> {
    let db = rpm::read(bytes)?;
    Ok(db
        .packages
        .iter()
        .map(|p| rpm_package(&p.name, &p.arch, &p.header))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "\
Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.13-1~deb12u1)
Version: 3.0.13-1~deb12u1
Description: x
 more

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2
Description: y

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
Description: z

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
";

    #[test]
    fn dpkg_installed_packages_with_their_source() {
        let p = dpkg(STATUS.as_bytes()).unwrap();
        let names: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["libssl3", "bash", "zlib1g"],
            "config-files is not installed"
        );
        assert_eq!(p[0].source.as_deref(), Some("openssl"));
        assert_eq!(p[0].source_version.as_deref(), Some("3.0.13-1~deb12u1"));
        assert_eq!(p[1].source, None);
        assert_eq!(p[2].source.as_deref(), Some("zlib"));
        assert_eq!(p[2].source_version, None);
        assert_eq!(p[2].version, "1:1.2.13.dfsg-1");
    }

    #[test]
    fn apk_origin_is_the_source() {
        let db = "C:Q1abc=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\nT:x\n\nP:musl\nV:1.2.4-r2\nA:x86_64\n\n";
        let p = apk(db.as_bytes()).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "libcrypto3");
        assert_eq!(p[0].source.as_deref(), Some("openssl"));
        assert_eq!(p[1].source, None);
    }

    #[test]
    fn broken_databases_are_errors() {
        assert!(dpkg(b"Package: a\nVersion: 1").is_err());
        assert!(rpm(b"not sqlite").is_err());
    }
}
