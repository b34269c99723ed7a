//! Package URLs (purl) of OS packages, per the purl specification and its type definitions
//! (`deb`, `apk`, `rpm`): `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS`.
//!
//! - The namespace is the distribution's os-release `ID` (`debian`, `ubuntu`, `alpine`,
//!   `fedora`…), lower case; absent when the image names no release.
//! - deb and apk names are lower-cased (their type definitions say they are case-insensitive);
//!   rpm names keep their case.
//! - The version is percent-encoded; `:` is kept as it is (the deb type's own example
//!   `pkg:deb/debian/attr@1:2.4.47-2%2Bb1`): a dpkg epoch stays in the version. An rpm version
//!   is `VERSION-RELEASE`; its epoch is the `epoch` qualifier.
//! - Qualifiers are sorted by key, empty values left out (`arch`, `distro`, `epoch`). `distro`
//!   is `ID-VERSION_ID` (`debian-12`, `alpine-3.19.1`, `fedora-39`), or `ID-CODENAME` when
//!   there is no `VERSION_ID`.

use super::{Package, PackageKind};

/// Characters the purl specification leaves unencoded in a component: ASCII letters, digits,
/// `.`, `-`, `_`, `~`; and `:`, which is unambiguous after the type.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b':')
}

/// Percent-encodes one purl component (UTF-8 bytes, upper-case hex).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The purl of `package` in a distribution named `namespace` (os-release `ID`) with `distro`
/// as its qualifier (see the module documentation).
pub fn purl(package: &Package, namespace: Option<&str>, distro: Option<&str>) -> String {
    let (kind, lower) = match package.kind {
        PackageKind::Deb => ("deb", true),
        PackageKind::Apk => ("apk", true),
        PackageKind::Rpm => ("rpm", false),
    };
    let mut s = format!("pkg:{kind}/");
    if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
        s.push_str(&encode(&ns.to_ascii_lowercase()));
        s.push('/');
    }
    let name = if lower {
        package.name.to_ascii_lowercase()
    } else {
        package.name.clone()
    };
    s.push_str(&encode(&name));
    if !package.version.is_empty() {
        s.push('@');
        s.push_str(&encode(&package.version));
    }
    let epoch = package.epoch.map(|e| e.to_string());
    let mut qualifiers: Vec<(&str, &str)> = [
        ("arch", Some(package.arch.as_str())),
        ("distro", distro),
        ("epoch", epoch.as_deref()),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v.filter(|v| !v.is_empty())?)))
    .collect();
    qualifiers.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (k, v)) in qualifiers.iter().enumerate() {
        s.push(if i == 0 { '?' } else { '&' });
        s.push_str(k);
        s.push('=');
        s.push_str(&encode(v));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(kind: PackageKind, name: &str, version: &str, arch: &str) -> Package {
        Package {
            kind,
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
            epoch: None,
            source: None,
            source_version: None,
        }
    }

    #[test]
    fn deb_purl() {
        let p = pkg(PackageKind::Deb, "libssl3", "3.0.13-1~deb12u1", "amd64");
        assert_eq!(
            purl(&p, Some("debian"), Some("debian-12")),
            "pkg:deb/debian/libssl3@3.0.13-1~deb12u1?arch=amd64&distro=debian-12"
        );
    }

    #[test]
    fn deb_epoch_stays_in_the_version_and_plus_is_encoded() {
        // The deb type definition's own example.
        let p = pkg(PackageKind::Deb, "attr", "1:2.4.47-2+b1", "amd64");
        assert_eq!(
            purl(&p, Some("debian"), None),
            "pkg:deb/debian/attr@1:2.4.47-2%2Bb1?arch=amd64"
        );
    }

    #[test]
    fn deb_and_apk_names_are_lower_cased_rpm_names_keep_their_case() {
        let p = pkg(PackageKind::Deb, "Foo", "1", "all");
        assert_eq!(
            purl(&p, Some("Debian"), None),
            "pkg:deb/debian/foo@1?arch=all"
        );
        let p = pkg(PackageKind::Apk, "Py3-Foo", "1-r0", "x86_64");
        assert_eq!(
            purl(&p, Some("alpine"), None),
            "pkg:apk/alpine/py3-foo@1-r0?arch=x86_64"
        );
        let p = pkg(PackageKind::Rpm, "NetworkManager", "1.44-1.fc39", "x86_64");
        assert_eq!(
            purl(&p, Some("fedora"), None),
            "pkg:rpm/fedora/NetworkManager@1.44-1.fc39?arch=x86_64"
        );
    }

    #[test]
    fn apk_purl() {
        let p = pkg(PackageKind::Apk, "musl", "1.2.4-r2", "x86_64");
        assert_eq!(
            purl(&p, Some("alpine"), Some("alpine-3.19.1")),
            "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1"
        );
    }

    #[test]
    fn rpm_purl_with_epoch_qualifier_in_key_order() {
        let p = pkg(PackageKind::Rpm, "bash", "5.2.15-5.fc39", "x86_64");
        assert_eq!(
            purl(&p, Some("fedora"), Some("fedora-39")),
            "pkg:rpm/fedora/bash@5.2.15-5.fc39?arch=x86_64&distro=fedora-39"
        );
        let mut p = pkg(PackageKind::Rpm, "openssl-libs", "3.1.1-4.fc39", "x86_64");
        p.epoch = Some(1);
        assert_eq!(
            purl(&p, Some("fedora"), Some("fedora-39")),
            "pkg:rpm/fedora/openssl-libs@3.1.1-4.fc39?arch=x86_64&distro=fedora-39&epoch=1"
        );
    }

    #[test]
    fn rpm_without_arch_and_release_without_namespace() {
        // gpg-pubkey has no architecture; an image without os-release has no namespace.
        let p = pkg(PackageKind::Rpm, "gpg-pubkey", "18b8e74c-62f2920f", "");
        assert_eq!(purl(&p, None, None), "pkg:rpm/gpg-pubkey@18b8e74c-62f2920f");
    }

    #[test]
    fn hostile_text_is_percent_encoded() {
        let p = pkg(PackageKind::Deb, "a/b?c#d", "1 2&x=y", "am@d");
        assert_eq!(
            purl(&p, Some("de/bian"), Some("x&y=z")),
            "pkg:deb/de%2Fbian/a%2Fb%3Fc%23d@1%202%26x%3Dy?arch=am%40d&distro=x%26y%3Dz"
        );
        assert_eq!(encode("é"), "%C3%A9");
    }
}
