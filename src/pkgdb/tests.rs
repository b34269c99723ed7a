use super::*;

const REAL_STATUS: &[u8] = include_bytes!("../../testdata/pkgdb/dpkg-status");

fn status(stanzas: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut out = String::new();
    for (name, arch, version) in stanzas {
        out += &format!(
            "Package: {name}\nStatus: install ok installed\nArchitecture: {arch}\nVersion: {version}\nDescription: the {name} package\n long description\n .\n more\n\n"
        );
    }
    out.into_bytes()
}

fn db(format: Format, bytes: &[u8]) -> Db {
    parse(format, bytes).unwrap()
}

fn names(list: &[PackageEntry]) -> Vec<String> {
    list.iter()
        .map(|p| format!("{} {}", p.package, p.version))
        .collect()
}

#[test]
fn real_dpkg_status_round_trips_byte_for_byte() {
    let d = db(Format::DpkgStatus, REAL_STATUS);
    assert_eq!(d.records.len(), 13);
    assert_eq!(d.records[0].name, "apt");
    let m = merge(Some(&d), Some(&d), &d);
    assert_eq!(m.bytes, REAL_STATUS);
    assert!(m.changes.is_empty() && m.pins.is_empty());
}

#[test]
fn untouched_packages_take_the_new_base() {
    let old = db(
        Format::DpkgStatus,
        &status(&[
            ("apt", "amd64", "2.6.1"),
            ("bash", "amd64", "5.2-1"),
            ("gone", "all", "1"),
        ]),
    );
    let new = db(
        Format::DpkgStatus,
        &status(&[
            ("apt", "amd64", "2.6.2"),
            ("bash", "amd64", "5.2-1"),
            ("fresh", "amd64", "3"),
        ]),
    );
    // The app installed python3 on the old base: its copy has the old apt.
    let app = db(
        Format::DpkgStatus,
        &status(&[
            ("apt", "amd64", "2.6.1"),
            ("bash", "amd64", "5.2-1"),
            ("gone", "all", "1"),
            ("python3", "amd64", "3.11"),
        ]),
    );
    let m = merge(Some(&old), Some(&new), &app);
    let rebuild = status(&[
        ("apt", "amd64", "2.6.2"),
        ("bash", "amd64", "5.2-1"),
        ("fresh", "amd64", "3"),
        ("python3", "amd64", "3.11"),
    ]);
    assert_eq!(
        String::from_utf8(m.bytes).unwrap(),
        String::from_utf8(rebuild).unwrap()
    );
    assert_eq!(
        m.changes,
        vec![PackageChange {
            package: "apt".into(),
            arch: "amd64".into(),
            from: "2.6.1".into(),
            to: "2.6.2".into()
        }]
    );
    assert_eq!(names(&m.added), vec!["fresh 3"]);
    assert_eq!(names(&m.removed), vec!["gone 1"]);
    assert!(m.pins.is_empty());
}

#[test]
fn application_changes_survive_when_the_new_base_left_the_package_alone() {
    let old = db(
        Format::DpkgStatus,
        &status(&[("curl", "amd64", "7.88.1-10"), ("vim", "amd64", "9.0")]),
    );
    let new = old.clone();
    // The app upgraded curl and removed vim.
    let app = db(
        Format::DpkgStatus,
        &status(&[("curl", "amd64", "7.88.1-10+deb12u5")]),
    );
    let m = merge(Some(&old), Some(&new), &app);
    assert_eq!(m.bytes, status(&[("curl", "amd64", "7.88.1-10+deb12u5")]));
    assert!(
        m.changes.is_empty() && m.pins.is_empty() && m.added.is_empty() && m.removed.is_empty()
    );
}

#[test]
fn both_changed_keeps_the_application_and_reports_a_pin() {
    let old = db(
        Format::DpkgStatus,
        &status(&[
            ("libssl3", "amd64", "3.0.11-1~deb12u1"),
            ("vim", "amd64", "9.0"),
        ]),
    );
    let new = db(
        Format::DpkgStatus,
        &status(&[
            ("libssl3", "amd64", "3.0.13-1~deb12u1"),
            ("vim", "amd64", "9.1"),
        ]),
    );
    let app = db(
        Format::DpkgStatus,
        &status(&[("libssl3", "amd64", "3.0.11-1~deb12u2")]),
    );
    let m = merge(Some(&old), Some(&new), &app);
    assert_eq!(m.bytes, status(&[("libssl3", "amd64", "3.0.11-1~deb12u2")]));
    assert_eq!(m.pins.len(), 2);
    assert_eq!(
        m.pins[0].to_string(),
        "the application pins libssl3 3.0.11-1~deb12u2 over the new base's 3.0.13-1~deb12u1"
    );
    assert_eq!(
        m.pins[1].to_string(),
        "the application removed vim, which the new base has at 9.1"
    );
}

#[test]
fn identical_changes_on_both_sides_are_no_pin() {
    let old = db(Format::DpkgStatus, &status(&[("a", "amd64", "1")]));
    let new = db(Format::DpkgStatus, &status(&[("a", "amd64", "2")]));
    let m = merge(Some(&old), Some(&new), &new);
    assert_eq!(m.bytes, status(&[("a", "amd64", "2")]));
    assert!(m.pins.is_empty());
}

#[test]
fn missing_base_databases_count_as_empty() {
    let app = db(Format::DpkgStatus, &status(&[("a", "amd64", "1")]));
    // Old base had none (the app installed dpkg itself): everything is the app's.
    let m = merge(None, None, &app);
    assert_eq!(m.bytes, status(&[("a", "amd64", "1")]));
    // The new base dropped the database: untouched packages go with it.
    let m = merge(Some(&app), None, &app);
    assert!(m.bytes.is_empty());
    assert_eq!(names(&m.removed), vec!["a 1"]);
}

#[test]
fn dpkg_order_puts_multiarch_instances_after_the_unqualified_one() {
    let text = "Package: libc6\nArchitecture: i386\nMulti-Arch: same\nVersion: 2.36\n\n\
                Package: dpkg\nArchitecture: amd64\nVersion: 1.21\n\n\
                Package: libc6\nArchitecture: amd64\nMulti-Arch: same\nVersion: 2.36\n\n\
                Package: zz\nArchitecture: i386\nVersion: 1\n\n\
                Package: zz\nArchitecture: amd64\nVersion: 1\n\n\
                Package: Zed\nArchitecture: all\nVersion: 1\n\n";
    let d = db(Format::DpkgStatus, text.as_bytes());
    let m = merge(None, None, &d);
    let order: Vec<String> = db(Format::DpkgStatus, &m.bytes)
        .records
        .iter()
        .map(|r| format!("{}:{}", r.name, r.arch))
        .collect();
    // Byte order of names (uppercase first); for libc6 both need the qualifier (M-A: same), so
    // by architecture; for zz the native instance first.
    assert_eq!(
        order,
        [
            "Zed:all",
            "dpkg:amd64",
            "libc6:amd64",
            "libc6:i386",
            "zz:amd64",
            "zz:i386"
        ]
    );
}

#[test]
fn bad_databases_are_refused_with_the_line() {
    let cases: &[(&[u8], usize, &str)] = &[
        (
            b"Package: a\nVersion: 1\n\nPackage: b\nVersion \xff\n",
            5,
            "not UTF-8",
        ),
        (
            b"Package: a\nno colon here\n",
            2,
            "not a 'Field: value' line",
        ),
        (b" continued\nPackage: a\n", 1, "continuation line"),
        (b"Version: 1\nStatus: x\n\n", 1, "without a Package"),
        (
            b"Package: a\nArchitecture: amd64\n\nPackage: a\nArchitecture: amd64\n",
            4,
            "listed twice (first at line 1)",
        ),
        (b"Package: a\nVersion: 1", 2, "no final newline"),
        (b"Package: a\nPackage: b\n", 2, "appears twice"),
        (b"Package: a b\n", 1, "invalid package name"),
    ];
    for (bytes, line, msg) in cases {
        let err = parse(Format::DpkgStatus, bytes).unwrap_err();
        assert_eq!(err.line, *line, "{err}");
        assert!(err.reason.contains(msg), "{err}");
    }
    let err = parse(Format::ApkInstalled, b"P:a\nV:1\n\nnot apk\n").unwrap_err();
    assert_eq!((err.line, err.reason.contains("not an apk")), (4, true));
    let err = parse(Format::ApkInstalled, b"C:Q1abc\nV:1\n\n").unwrap_err();
    assert!(err.reason.contains("without a P:"), "{err}");
}

#[test]
fn extended_states_keep_the_new_base_order_then_the_application_additions() {
    let st = |pkgs: &[&str]| -> Vec<u8> {
        pkgs.iter()
            .map(|p| format!("Package: {p}\nArchitecture: amd64\nAuto-Installed: 1\n\n"))
            .collect::<String>()
            .into_bytes()
    };
    let old = db(Format::AptExtendedStates, &st(&["b", "a"]));
    let new = db(Format::AptExtendedStates, &st(&["b", "c", "a"]));
    let app = db(
        Format::AptExtendedStates,
        &st(&["b", "a", "libpython", "zlib"]),
    );
    let m = merge(Some(&old), Some(&new), &app);
    assert_eq!(m.bytes, st(&["b", "c", "a", "libpython", "zlib"]));
    assert!(m.changes.is_empty());
}

fn apk_db(pkgs: &[(&str, &str)]) -> Vec<u8> {
    pkgs.iter()
        .map(|(p, v)| format!("C:Q1{p}{v}=\nP:{p}\nV:{v}\nA:x86_64\nS:100\nI:200\nT:{p}\no:{p}\nm:Someone\nt:1700000000\nF:usr/lib\nR:lib{p}.so\nZ:Q1zz=\n\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn apk_installed_merges_and_stays_sorted_like_apk_2_14() {
    let old = db(
        Format::ApkInstalled,
        &apk_db(&[
            ("busybox", "1.36.1-r15"),
            ("libcrypto3", "3.1.4-r1"),
            ("musl", "1.2.4-r2"),
        ]),
    );
    let new = db(
        Format::ApkInstalled,
        &apk_db(&[
            ("busybox", "1.36.1-r15"),
            ("libcrypto3", "3.1.4-r5"),
            ("musl", "1.2.4-r2"),
        ]),
    );
    let app = db(
        Format::ApkInstalled,
        &apk_db(&[
            ("busybox", "1.36.1-r15"),
            ("curl", "8.5.0-r0"),
            ("libcrypto3", "3.1.4-r1"),
            ("musl", "1.2.4-r2"),
        ]),
    );
    let m = merge(Some(&old), Some(&new), &app);
    assert_eq!(
        m.bytes,
        apk_db(&[
            ("busybox", "1.36.1-r15"),
            ("curl", "8.5.0-r0"),
            ("libcrypto3", "3.1.4-r5"),
            ("musl", "1.2.4-r2")
        ])
    );
    assert_eq!(m.changes.len(), 1);
    assert_eq!(
        (m.changes[0].from.as_str(), m.changes[0].to.as_str()),
        ("3.1.4-r1", "3.1.4-r5")
    );
}

#[test]
fn apk_world_replays_the_application_edits() {
    let w = |s: &str| db(Format::ApkWorld, s.as_bytes());
    let old = w("alpine-baselayout\napk-tools\nbusybox\nssl_client\n");
    let new = w("alpine-baselayout\napk-tools\nbusybox\nca-certificates-bundle\nssl_client\n");
    // The app ran `apk add curl python3>=3.11` and `apk del ssl_client`.
    let app = w("alpine-baselayout\napk-tools\nbusybox\ncurl\npython3>=3.11\n");
    let m = merge(Some(&old), Some(&new), &app);
    // apk_deps_del moves the last entry into the deleted slot; apk_deps_add appends.
    assert_eq!(
        String::from_utf8(m.bytes).unwrap(),
        "alpine-baselayout\napk-tools\nbusybox\nca-certificates-bundle\ncurl\npython3>=3.11\n"
    );
    let m = merge(Some(&old), Some(&old), &old);
    assert_eq!(
        m.bytes,
        b"alpine-baselayout\napk-tools\nbusybox\nssl_client\n"
    );
    assert_eq!(w("").records.len(), 0);
    // Found by the pkgdb fuzz target: a doubled `!` made the constraint slice start past the
    // token's end (a panic).
    let r = w("!!a !!foo>=1\n").records;
    assert_eq!((r[0].name.as_str(), r[0].version.as_str()), ("!a", ""));
    assert_eq!((r[1].name.as_str(), r[1].version.as_str()), ("!foo", ">=1"));
    assert_eq!(
        w("!foo bar@edge\n")
            .records
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["foo", "bar"]
    );
}

#[test]
fn watched_paths() {
    assert!(is_watched("var/lib/dpkg/status"));
    assert!(is_watched("var/lib/dpkg/status.d/libc6"));
    assert!(!is_watched("var/lib/dpkg/status.d"));
    assert!(!is_watched("var/lib/dpkg/status.d/a/b"));
    assert!(!is_watched("var/lib/dpkg/status-old"));
    assert!(is_watched("lib/apk/db/installed"));
}
