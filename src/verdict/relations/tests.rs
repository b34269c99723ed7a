use super::*;
use crate::pkgdb;

// ---------------------------------------------------------------------------------------------
// dpkg

/// A status stanza of an installed package; `extra` holds more lines (each ending in `\n`).
fn stanza(name: &str, version: &str, arch: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nStatus: install ok installed\nVersion: {version}\nArchitecture: {arch}\n{extra}"
    )
}

fn status(stanzas: &[String]) -> Db {
    let text = stanzas.join("\n");
    pkgdb::parse(Format::DpkgStatus, text.as_bytes()).expect("test status parses")
}

fn lines(c: &Checked) -> Vec<String> {
    c.problems.iter().map(|p| p.to_string()).collect()
}

/// The problems of a status made of (name, version, arch, extra) packages.
fn dpkg_lines(pkgs: &[(&str, &str, &str, &str)]) -> Vec<String> {
    let stanzas: Vec<String> = pkgs.iter().map(|(n, v, a, e)| stanza(n, v, a, e)).collect();
    let c = dpkg(&status(&stanzas));
    assert!(c.unchecked.is_empty(), "{:?}", c.unchecked);
    lines(&c)
}

#[test]
fn dpkg_reports_the_three_kinds_of_break() {
    let c = dpkg(&status(&[
        stanza(
            "libssl3t64",
            "3.5.1-1",
            "amd64",
            "Multi-Arch: same\nBreaks: libssl3 (<< 3.5.9-1~deb13u1)\n",
        ),
        stanza("libssl3", "3.0.17-1~deb12u2", "amd64", "Multi-Arch: same\n"),
        stanza(
            "gnutls-bin",
            "3.7.9-2",
            "amd64",
            "Depends: libgnutls30 (>= 3.7.5)\n",
        ),
        stanza(
            "python3",
            "3.11.2-1",
            "amd64",
            "Depends: libpython3-stdlib (= 3.11.2-1), python3-minimal\n",
        ),
        stanza(
            "libpython3-stdlib",
            "3.11.4-1",
            "amd64",
            "Multi-Arch: same\n",
        ),
        stanza("python3-minimal", "3.11.2-1", "amd64", ""),
    ]));
    assert!(c.unchecked.is_empty(), "{:?}", c.unchecked);
    assert_eq!(
        lines(&c),
        [
            "libssl3t64 3.5.1-1 Breaks libssl3 (<< 3.5.9-1~deb13u1): libssl3 3.0.17-1~deb12u2 is installed",
            "gnutls-bin 3.7.9-2 Depends libgnutls30 (>= 3.7.5): not installed, and nothing installed provides it",
            "python3 3.11.2-1 Depends libpython3-stdlib (= 3.11.2-1): libpython3-stdlib 3.11.4-1 is installed",
        ]
    );
    let p = &c.problems[0];
    assert_eq!(p.relation, RelationKind::Breaks);
    assert_eq!(p.package.name, "libssl3t64");
    assert_eq!(p.found[0].version, "3.0.17-1~deb12u2");
    let json = serde_json::to_value(&c.problems[1]).unwrap();
    assert_eq!(json["relation"], "depends");
    assert_eq!(json["wanted"], "libgnutls30 (>= 3.7.5)");
    assert_eq!(json["found"], serde_json::json!([]));
    assert!(json["package"].get("provides").is_none());
}

#[test]
fn dpkg_healthy_status_has_no_problems() {
    assert!(dpkg_lines(&[
        ("libc6", "2.36-9+deb12u10", "amd64", "Multi-Arch: same\n"),
        (
            "bash",
            "5.2.15-2+b7",
            "amd64",
            "Pre-Depends: libc6 (>= 2.36), libtinfo6 (>= 6)\nDepends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)\nConflicts: bash-completion (<< 20060301-0)\n",
        ),
        ("libtinfo6", "6.4-4", "amd64", "Multi-Arch: same\n"),
        ("base-files", "12.4+deb12u10", "amd64", "Multi-Arch: foreign\n"),
        ("debianutils", "5.7-0.5~deb12u1", "amd64", ""),
        ("bash-completion", "1:2.11-6", "all", ""),
    ])
    .is_empty());
}

#[test]
fn dpkg_alternatives_need_one() {
    let broken = dpkg_lines(&[
        ("a", "1", "amd64", "Depends: x (>= 2) | y\n"),
        ("x", "1", "amd64", ""),
    ]);
    assert_eq!(broken, ["a 1 Depends x (>= 2) | y: x 1 is installed"]);
    assert!(dpkg_lines(&[
        ("a", "1", "amd64", "Depends: x (>= 2) | y\n"),
        ("x", "1", "amd64", ""),
        ("y", "7", "amd64", ""),
    ])
    .is_empty());
}

#[test]
fn dpkg_provides() {
    // An unversioned provide never meets a versioned dependency.
    assert_eq!(
        dpkg_lines(&[
            ("a", "1", "amd64", "Depends: v (>= 1)\n"),
            ("p", "1", "amd64", "Provides: v\n"),
        ]),
        ["a 1 Depends v (>= 1): p 1 providing v is installed"]
    );
    // It meets an unversioned one.
    assert!(dpkg_lines(&[
        ("a", "1", "amd64", "Depends: v\n"),
        ("p", "1", "amd64", "Provides: v\n"),
    ])
    .is_empty());
    // A versioned provide meets what its version meets.
    assert!(dpkg_lines(&[
        ("a", "1", "amd64", "Depends: v (>= 1)\n"),
        ("p", "1", "amd64", "Provides: w, v (= 2)\n"),
    ])
    .is_empty());
    assert_eq!(
        dpkg_lines(&[
            ("a", "1", "amd64", "Depends: v (>= 3)\n"),
            ("p", "1", "amd64", "Provides: v (= 2)\n"),
        ]),
        ["a 1 Depends v (>= 3): p 1 providing v (= 2) is installed"]
    );
}

#[test]
fn dpkg_architectures_follow_apt() {
    let broken = |pkgs: &[(&str, &str, &str, &str)]| !dpkg_lines(pkgs).is_empty();
    // :any needs Multi-Arch: allowed, even of the same architecture.
    assert!(broken(&[
        ("a", "1", "amd64", "Depends: b:any\n"),
        ("b", "1", "amd64", ""),
    ]));
    assert!(!broken(&[
        ("a", "1", "amd64", "Depends: b:any\n"),
        ("b", "1", "i386", "Multi-Arch: allowed\n"),
    ]));
    // ... and of a provide, the provider's Multi-Arch.
    assert!(!broken(&[
        ("a", "1", "amd64", "Depends: v:any\n"),
        ("p", "1", "i386", "Multi-Arch: allowed\nProvides: v\n"),
    ]));
    assert!(broken(&[
        ("a", "1", "amd64", "Depends: v:any\n"),
        ("p", "1", "amd64", "Provides: v\n"),
    ]));
    // No qualifier: the same architecture, or Multi-Arch: foreign.
    assert!(broken(&[
        ("a", "1", "amd64", "Depends: b\n"),
        ("b", "1", "i386", "Multi-Arch: allowed\n"),
    ]));
    assert!(!broken(&[
        ("a", "1", "i386", "Depends: b\n"),
        ("b", "1", "amd64", "Multi-Arch: foreign\n"),
    ]));
    assert!(broken(&[
        ("a", "1", "amd64", "Depends: v\n"),
        ("p", "1", "i386", "Provides: v\n"),
    ]));
    assert!(!broken(&[
        ("a", "1", "amd64", "Depends: v\n"),
        ("p", "1", "i386", "Multi-Arch: foreign\nProvides: v\n"),
    ]));
    // `all` is the native architecture (here that of dpkg, else the most common one).
    let all = [
        ("dpkg", "1.21.22", "amd64", ""),
        ("a", "1", "all", "Depends: b\n"),
        ("b", "1", "amd64", ""),
    ];
    assert!(!broken(&all));
    assert!(broken(&[
        ("dpkg", "1.21.22", "amd64", ""),
        ("a", "1", "all", "Depends: b\n"),
        ("b", "1", "i386", ""),
    ]));
    assert!(broken(&[
        ("dpkg", "1.21.22", "amd64", ""),
        ("a", "1", "i386", "Depends: b\n"),
        ("b", "1", "all", ""),
    ]));
    // Explicit qualifiers: exactly that architecture.
    assert!(!broken(&[
        ("dpkg", "1.21.22", "amd64", ""),
        ("a", "1", "i386", "Depends: b:native\n"),
        ("b", "1", "amd64", ""),
    ]));
    assert!(broken(&[
        ("a", "1", "amd64", "Depends: b:amd64\n"),
        ("b", "1", "i386", "Multi-Arch: foreign\n"),
    ]));
    assert!(!broken(&[
        ("a", "1", "amd64", "Depends: b:i386\n"),
        ("b", "1", "i386", ""),
    ]));
    // The other architecture is named in the message.
    assert_eq!(
        dpkg_lines(&[("a", "1", "amd64", "Depends: b\n"), ("b", "1", "i386", ""),]),
        ["a 1 Depends b: b 1 (i386) is installed"]
    );
}

#[test]
fn dpkg_states_follow_apt() {
    let with_status = |state: &str| {
        format!("Package: b\nStatus: install ok {state}\nVersion: 1\nArchitecture: amd64\n")
    };
    for (state, present) in [
        ("installed", true),
        ("unpacked", true),
        ("half-configured", true),
        ("half-installed", true),
        ("triggers-awaited", true),
        ("triggers-pending", true),
        ("config-files", false),
        ("not-installed", false),
    ] {
        let db = status(&[
            stanza("a", "1", "amd64", "Depends: b\n"),
            stanza("c", "1", "amd64", "Breaks: b\n"),
            with_status(state),
        ]);
        let got: Vec<RelationKind> = dpkg(&db).problems.iter().map(|p| p.relation).collect();
        let want = if present {
            vec![RelationKind::Breaks]
        } else {
            vec![RelationKind::Depends]
        };
        assert_eq!(got, want, "{state}");
    }
    // A package that is not installed has no relations to check.
    let db = status(&[
        "Package: a\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\nDepends: zz\n"
            .to_string(),
    ]);
    assert!(dpkg(&db).problems.is_empty());
    // The want flag does not matter: deinstall ok installed is installed.
    let db = status(&[
        "Package: a\nStatus: deinstall ok installed\nVersion: 1\nArchitecture: amd64\nDepends: zz\n"
            .to_string(),
    ]);
    assert_eq!(dpkg(&db).problems.len(), 1);
    // No Status (distroless status.d): installed.
    let db = status(&["Package: a\nVersion: 1\nArchitecture: amd64\nDepends: zz\n".to_string()]);
    assert_eq!(dpkg(&db).problems.len(), 1);
    // A Status apt cannot read: installed, with a note.
    let db = status(&[
        "Package: a\nStatus: installed\nVersion: 1\nArchitecture: amd64\nDepends: zz\n".to_string(),
    ]);
    let c = dpkg(&db);
    assert_eq!(c.problems.len(), 1);
    assert!(
        c.unchecked[0].contains("Status \"installed\""),
        "{:?}",
        c.unchecked
    );
}

#[test]
fn dpkg_breaks_and_conflicts() {
    // Never against itself, even through its own provides.
    assert!(dpkg_lines(&[(
        "a",
        "1",
        "amd64",
        "Provides: v\nConflicts: v, a\nBreaks: a (<< 2)\n"
    )])
    .is_empty());
    // Through another package's provide.
    assert_eq!(
        dpkg_lines(&[
            ("a", "1", "amd64", "Conflicts: v\n"),
            ("p", "1", "amd64", "Provides: v\n"),
        ]),
        ["a 1 Conflicts v: p 1 providing v is installed"]
    );
    // A versioned conflict does not match an unversioned provide.
    assert!(dpkg_lines(&[
        ("a", "1", "amd64", "Conflicts: v (<< 2)\n"),
        ("p", "1", "amd64", "Provides: v\n"),
    ])
    .is_empty());
    // Any architecture matches.
    assert_eq!(
        dpkg_lines(&[
            ("a", "1", "amd64", "Breaks: b (<< 2)\n"),
            ("b", "1", "i386", ""),
        ]),
        ["a 1 Breaks b (<< 2): b 1 (i386) is installed"]
    );
    // Unless one is named.
    assert!(dpkg_lines(&[
        ("a", "1", "amd64", "Breaks: b:amd64 (<< 2)\n"),
        ("b", "1", "i386", ""),
    ])
    .is_empty());
    // Versions that do not match are fine.
    assert!(dpkg_lines(&[
        ("a", "1", "amd64", "Breaks: b (<< 2)\n"),
        ("b", "2", "amd64", ""),
    ])
    .is_empty());
    // A Multi-Arch: same package does not break its other architecture by name...
    assert!(dpkg_lines(&[
        ("l", "1", "amd64", "Multi-Arch: same\nBreaks: l (<< 5)\n"),
        ("l", "1", "i386", "Multi-Arch: same\nBreaks: l (<< 5)\n"),
    ])
    .is_empty());
}

#[test]
fn dpkg_implicit_multi_arch_relations() {
    assert_eq!(
        dpkg_lines(&[
            ("l", "1.0", "amd64", "Multi-Arch: same\n"),
            ("l", "1.1", "i386", "Multi-Arch: same\n"),
        ]),
        [
            "l 1.0 Multi-Arch: same (one version on every architecture): l 1.1 (i386) is installed",
            "l 1.1 Multi-Arch: same (one version on every architecture): l 1.0 (amd64) is installed",
        ]
    );
    assert!(dpkg_lines(&[
        ("l", "1.0", "amd64", "Multi-Arch: same\n"),
        ("l", "1.0", "i386", "Multi-Arch: same\n"),
    ])
    .is_empty());
    let two = dpkg_lines(&[("l", "1.0", "amd64", ""), ("l", "1.0", "i386", "")]);
    assert_eq!(
        two[0],
        "l 1.0 Multi-Arch: no (one architecture at a time): l 1.0 (i386) is installed"
    );
    assert_eq!(two.len(), 2);
    assert_eq!(
        dpkg_lines(&[
            ("l", "1.0", "amd64", "Multi-Arch: foreign\n"),
            ("l", "1.0", "i386", "Multi-Arch: foreign\n"),
        ])
        .len(),
        2
    );
}

#[test]
fn dpkg_reads_fields_like_dpkg() {
    // Continuation lines, any case, any whitespace, no spaces at all.
    let db = status(&[
        "Package: a\nstatus: install ok installed\nVersion: 1\nArchitecture: amd64\nDEPENDS: b (>= 1),\n  c   (  >=   2  ) ,\n\td|e\n"
            .to_string(),
        stanza("b", "1", "amd64", ""),
        stanza("c", "1", "amd64", ""),
        stanza("x", "1", "amd64", "Depends: b(>=1)|zz, c(<2)\n"),
    ]);
    let c = dpkg(&db);
    assert!(c.unchecked.is_empty(), "{:?}", c.unchecked);
    assert_eq!(
        lines(&c),
        [
            "a 1 Depends c   (  >=   2  ): c 1 is installed",
            "a 1 Depends d|e: not installed, and nothing installed provides it",
        ]
    );
    // Pre-Depends is its own kind; the obsolete '<' means '<='.
    let c = dpkg(&status(&[
        stanza("a", "1", "amd64", "Pre-Depends: b (>= 2), b (< 1)\n"),
        stanza("b", "1", "amd64", ""),
    ]));
    assert_eq!(lines(&c), ["a 1 Pre-Depends b (>= 2): b 1 is installed"]);
    assert_eq!(c.problems[0].relation, RelationKind::PreDepends);
    // Other relation fields (Recommends, Suggests, Replaces, Enhances) are not checked.
    assert!(dpkg_lines(&[(
        "a",
        "1",
        "amd64",
        "Recommends: zz\nSuggests: zz\nReplaces: zz\nEnhances: zz\n"
    )])
    .is_empty());
}

#[test]
fn dpkg_garbage_is_unchecked_never_a_panic() {
    let bad = [
        "b (!! 2)",
        "b [amd64]",
        "c <!nocheck>",
        "b (>= )",
        "b (>= 1",
        "b (>= 1) junk",
        "b (><1)",
        "b:",
        ":amd64",
        "(>= 1)",
        "b (>= 1.0 2)",
        "b (>= 1:)",
        "b (>= a:1)",
        "b (>= 1.0-)",
        "b$",
        "|",
    ];
    for clause in bad {
        let c = dpkg(&status(&[
            stanza(
                "a",
                "1",
                "amd64",
                &format!("Depends: {clause}\nBreaks: {clause}\n"),
            ),
            stanza("b", "1", "amd64", ""),
        ]));
        assert!(c.problems.is_empty(), "{clause}: {:?}", lines(&c));
        assert!(
            !c.unchecked.is_empty() && c.unchecked[0].contains("does not parse"),
            "{clause}: {:?}",
            c.unchecked
        );
    }
    // Empty clauses are errors; an empty field is nothing.
    let c = dpkg(&status(&[
        stanza("a", "1", "amd64", "Depends: zz, , b\nBreaks:\n"),
        stanza("b", "1", "amd64", ""),
    ]));
    assert_eq!(lines(&c).len(), 1, "{:?}", lines(&c));
    assert_eq!(c.unchecked.len(), 1, "{:?}", c.unchecked);
    // Alternatives in Breaks/Conflicts/Provides; non-'=' provides (apt ignores them).
    let c = dpkg(&status(&[stanza(
        "a",
        "1",
        "amd64",
        "Breaks: x | y\nProvides: v | w, u (>= 1)\n",
    )]));
    assert!(c.problems.is_empty());
    assert_eq!(c.unchecked.len(), 3, "{:?}", c.unchecked);
    // Not a status file.
    let world = pkgdb::parse(Format::ApkWorld, b"busybox\n").unwrap();
    assert!(dpkg(&world).unchecked[0].contains("not a dpkg status"));
    // The apt rule for bad versions of installed packages: compared leniently.
    assert_eq!(
        dpkg_lines(&[
            ("a", "1", "amd64", "Depends: b (>= 2)\n"),
            ("b", "1 x", "amd64", ""),
        ])
        .len(),
        1
    );
}

#[test]
fn dpkg_is_bounded_on_a_hostile_database() {
    // 20000 packages, each providing and depending on names shared by all of them with
    // versions nothing meets: without indexes and the budget this is 10^9 comparisons.
    let n = 20_000;
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&stanza(
            &format!("p{i}"),
            "1",
            "amd64",
            &format!(
                "Provides: shared (= 1), other\nDepends: shared (>= {i}), missing{i} | shared (>> 9{i})\nBreaks: shared (<< 0), other (= 1)\nConflicts: shared (<< 0)\n"
            ),
        ));
        text.push('\n');
    }
    let db = pkgdb::parse(Format::DpkgStatus, text.as_bytes()).unwrap();
    let start = std::time::Instant::now();
    let c = dpkg(&db);
    // Generous: a debug build on a shared machine; a release build takes a tenth of a second.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert!(!c.problems.is_empty() && c.problems.len() <= MAX_PROBLEMS);
    assert!(c.problems.iter().all(|p| p.found.len() <= MAX_FOUND));
    assert!(c.problems.iter().any(|p| p.found.len() == MAX_FOUND));
    assert!(
        c.unchecked.iter().any(|u| u.contains("work budget")),
        "{:?}",
        c.unchecked
    );
    assert!(c.unchecked.len() <= MAX_UNCHECKED + 3);
}

#[test]
fn problems_are_capped() {
    // 5000 missing dependencies, cheap to find: the first MAX_PROBLEMS are kept.
    let deps: Vec<String> = (0..5000).map(|i| format!("missing{i}")).collect();
    let db = status(&[stanza(
        "a",
        "1",
        "amd64",
        &format!("Depends: {}\n", deps.join(", ")),
    )]);
    let c = dpkg(&db);
    assert_eq!(c.problems.len(), MAX_PROBLEMS);
    assert_eq!(
        c.unchecked,
        ["904 more problems not listed (the first 4096 are)"]
    );
}

// ---------------------------------------------------------------------------------------------
// apk

fn installed_db(stanzas: &[&str]) -> Db {
    let mut text = String::new();
    for s in stanzas {
        text.push_str(s);
        text.push('\n');
    }
    pkgdb::parse(Format::ApkInstalled, text.as_bytes()).expect("test installed db parses")
}

fn apk_lines(stanzas: &[&str]) -> Vec<String> {
    let c = apk(&installed_db(stanzas));
    assert!(c.unchecked.is_empty(), "{:?}", c.unchecked);
    lines(&c)
}

const MUSL: &str = "C:Q1musl=\nP:musl\nV:1.2.5-r0\nA:x86_64\np:so:libc.musl-x86_64.so.1=1\n";
const BUSYBOX: &str = "C:Q1bb=\nP:busybox\nV:1.36.1-r29\nA:x86_64\nD:so:libc.musl-x86_64.so.1\np:cmd:sh=1.36.1-r29 /bin/sh\n";
const ZLIB: &str = "C:Q1zlib=\nP:zlib\nV:1.3.1-r1\nA:x86_64\nD:so:libc.musl-x86_64.so.1\np:so:libz.so.1=1.3.1 pc:zlib\n";

#[test]
fn apk_dependencies_and_provides() {
    assert!(apk_lines(&[
        MUSL,
        BUSYBOX,
        ZLIB,
        "P:app\nV:1.0-r0\nA:x86_64\nD:musl>=1.2 zlib=1.3.1-r1 so:libz.so.1 cmd:sh busybox<2 zlib~1.3 so:libz.so.1>=1.3 pc:zlib busybox@edge\n",
    ])
    .is_empty());
    assert_eq!(
        apk_lines(&[
            MUSL,
            ZLIB,
            "P:app\nV:1.0-r0\nA:x86_64\nD:zlib>=1.4 so:libssl.so.3 so:libz.so.1>=2 pc:zlib>=1 musl=1.2.5-r1\n",
        ]),
        [
            "app 1.0-r0 Depends zlib>=1.4: zlib 1.3.1-r1 is installed",
            "app 1.0-r0 Depends so:libssl.so.3: not installed, and nothing installed provides it",
            "app 1.0-r0 Depends so:libz.so.1>=2: zlib 1.3.1-r1 providing so:libz.so.1=1.3.1 is installed",
            // An unversioned provide meets only unversioned dependencies.
            "app 1.0-r0 Depends pc:zlib>=1: zlib 1.3.1-r1 providing pc:zlib is installed",
            "app 1.0-r0 Depends musl=1.2.5-r1: musl 1.2.5-r0 is installed",
        ]
    );
}

#[test]
fn apk_conflicts_and_checksums() {
    let c = apk(&installed_db(&[
        MUSL,
        ZLIB,
        // Self conflicts (through its own name or provides) never count.
        "C:Q1a=\nP:a\nV:1-r0\nA:x86_64\nD:!zlib<1.3 !b !a !so:liba.so.1 !musl>2\np:so:liba.so.1=1\n",
        "C:Q1b=\nP:b\nV:1-r0\nA:x86_64\nD:!so:libz.so.1 !zlib>=1.3 zlib><Q1zlib= musl><Q1other=\n",
    ]));
    assert!(c.unchecked.is_empty(), "{:?}", c.unchecked);
    assert_eq!(
        lines(&c),
        [
            "a 1-r0 Conflicts !b: b 1-r0 is installed",
            "b 1-r0 Conflicts !so:libz.so.1: zlib 1.3.1-r1 providing so:libz.so.1=1.3.1 is installed",
            "b 1-r0 Conflicts !zlib>=1.3: zlib 1.3.1-r1 is installed",
            "b 1-r0 Depends musl><Q1other=: musl 1.2.5-r0 is installed",
        ]
    );
    assert_eq!(c.problems[0].relation, RelationKind::Conflicts);
}

#[test]
fn apk_garbage_is_unchecked_like_apk() {
    // apk stops reading the line at a token it cannot read.
    for bad in [
        "zlib>=",
        ">=1",
        "zlib=1.0-bar",
        "!",
        "@edge",
        "zlib>=1.0_foo",
    ] {
        let c = apk(&installed_db(&[
            MUSL,
            &format!("P:app\nV:1\nA:x86_64\nD:musl {bad} so:libmissing.so.1\n"),
        ]));
        assert!(c.problems.is_empty(), "{bad}: {:?}", lines(&c));
        assert_eq!(c.unchecked.len(), 1, "{bad}");
        assert!(
            c.unchecked[0].contains("1 after it are not checked"),
            "{:?}",
            c.unchecked
        );
    }
    let c = apk(&installed_db(&["P:app\nV:1\np:ok=1 =bad later\nD:later\n"]));
    assert_eq!(c.unchecked.len(), 1, "{:?}", c.unchecked);
    assert_eq!(
        c.problems.len(),
        1,
        "the provide after the bad one is ignored too"
    );
    let dpkg_db = status(&[stanza("a", "1", "amd64", "")]);
    assert!(apk(&dpkg_db).unchecked[0].contains("not apk's installed database"));
}

#[test]
fn apk_is_bounded_on_a_hostile_database() {
    let n = 20_000;
    let mut stanzas = Vec::new();
    for i in 0..n {
        stanzas.push(format!(
            "P:p{i}\nV:1\np:so:shared.so=1 other\nD:so:shared.so>={i} !other !so:shared.so<0\n"
        ));
    }
    let refs: Vec<&str> = stanzas.iter().map(String::as_str).collect();
    let start = std::time::Instant::now();
    let c = apk(&installed_db(&refs));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert!(!c.problems.is_empty() && c.problems.len() <= MAX_PROBLEMS);
    assert!(c.problems.iter().all(|p| p.found.len() <= MAX_FOUND));
    assert!(c.unchecked.iter().any(|u| u.contains("work budget")));
}

// ---------------------------------------------------------------------------------------------
// rpm

use crate::pkgdb::rpm::{
    TAG_ARCH, TAG_BASENAMES, TAG_CONFLICTFLAGS, TAG_CONFLICTNAME, TAG_CONFLICTVERSION,
    TAG_DIRINDEXES, TAG_DIRNAMES, TAG_EPOCH, TAG_FILESTATES, TAG_NAME, TAG_PROVIDEFLAGS,
    TAG_PROVIDENAME, TAG_PROVIDEVERSION, TAG_RELEASE, TAG_REQUIREFLAGS, TAG_REQUIRENAME,
    TAG_REQUIREVERSION, TAG_VERSION,
};
use crate::pkgdb::rpmheader::tests::{build, ints, s, strs};
use crate::pkgdb::rpmheader::{TYPE_CHAR, TYPE_INT32, TYPE_STRING, TYPE_STRING_ARRAY};

const LT: u32 = super::super::version::RPMSENSE_LESS;
const GT: u32 = super::super::version::RPMSENSE_GREATER;
const EQ: u32 = super::super::version::RPMSENSE_EQUAL;

/// A package header: name, `[E:]V-R`, and its dependency lists as (name, flags, evr).
#[derive(Default)]
struct Rpm<'a> {
    name: &'a str,
    evr: &'a str,
    provides: Vec<(&'a str, u32, &'a str)>,
    requires: Vec<(&'a str, u32, &'a str)>,
    conflicts: Vec<(&'a str, u32, &'a str)>,
    /// (directory with its final '/', base name, file state).
    files: Vec<(&'a str, &'a str, u8)>,
    /// Leave out PROVIDEFLAGS and PROVIDEVERSION (as rpm before 3.0.2 wrote).
    bare_provides: bool,
}

impl Rpm<'_> {
    fn header(&self) -> Vec<u8> {
        let (epoch, vr) = match self.evr.split_once(':') {
            Some((e, vr)) => (Some(e.parse::<u32>().unwrap()), vr),
            None => (None, self.evr),
        };
        let (v, r) = vr.rsplit_once('-').unwrap();
        let mut e = vec![
            (TAG_NAME, TYPE_STRING, 1, s(self.name)),
            (TAG_VERSION, TYPE_STRING, 1, s(v)),
            (TAG_RELEASE, TYPE_STRING, 1, s(r)),
            (TAG_ARCH, TYPE_STRING, 1, s("x86_64")),
        ];
        if let Some(epoch) = epoch {
            e.push((TAG_EPOCH, TYPE_INT32, 1, ints(&[epoch])));
        }
        let mut deps = |list: &[(&str, u32, &str)], tags: [u32; 3], bare: bool| {
            if list.is_empty() {
                return;
            }
            let n = list.len() as u32;
            let names: Vec<&str> = list.iter().map(|d| d.0).collect();
            let flags: Vec<u32> = list.iter().map(|d| d.1).collect();
            let evrs: Vec<&str> = list.iter().map(|d| d.2).collect();
            e.push((tags[0], TYPE_STRING_ARRAY, n, strs(&names)));
            if !bare {
                e.push((tags[1], TYPE_INT32, n, ints(&flags)));
                e.push((tags[2], TYPE_STRING_ARRAY, n, strs(&evrs)));
            }
        };
        deps(
            &self.provides,
            [TAG_PROVIDENAME, TAG_PROVIDEFLAGS, TAG_PROVIDEVERSION],
            self.bare_provides,
        );
        deps(
            &self.requires,
            [TAG_REQUIRENAME, TAG_REQUIREFLAGS, TAG_REQUIREVERSION],
            false,
        );
        deps(
            &self.conflicts,
            [TAG_CONFLICTNAME, TAG_CONFLICTFLAGS, TAG_CONFLICTVERSION],
            false,
        );
        if !self.files.is_empty() {
            let mut dirs: Vec<&str> = Vec::new();
            let mut idx = Vec::new();
            for (d, _, _) in &self.files {
                let k = dirs.iter().position(|x| x == d).unwrap_or_else(|| {
                    dirs.push(d);
                    dirs.len() - 1
                });
                idx.push(k as u32);
            }
            let bases: Vec<&str> = self.files.iter().map(|f| f.1).collect();
            let states: Vec<u8> = self.files.iter().map(|f| f.2).collect();
            let n = self.files.len() as u32;
            e.push((TAG_FILESTATES, TYPE_CHAR, n, states));
            e.push((TAG_DIRINDEXES, TYPE_INT32, n, ints(&idx)));
            e.push((TAG_BASENAMES, TYPE_STRING_ARRAY, n, strs(&bases)));
            e.push((
                TAG_DIRNAMES,
                TYPE_STRING_ARRAY,
                dirs.len() as u32,
                strs(&dirs),
            ));
        }
        e.sort_by_key(|x| x.0);
        build(&e)
    }
}

fn rpmdb_of(pkgs: &[Rpm]) -> RpmDb {
    let mut c = rusqlite::Connection::open_in_memory().unwrap();
    c.execute_batch(
        "CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL);",
    )
    .unwrap();
    for p in pkgs {
        c.execute("INSERT INTO Packages (blob) VALUES (?)", [p.header()])
            .unwrap();
    }
    let bytes = c.serialize(rusqlite::MAIN_DB).unwrap().to_vec();
    crate::pkgdb::rpm::read(&bytes).unwrap()
}

fn rpm_lines(pkgs: &[Rpm], files: &[&str]) -> Vec<String> {
    let exists = |p: &str| files.contains(&p);
    let c = rpm(&rpmdb_of(pkgs), &exists);
    assert!(c.unchecked.is_empty(), "{:?}", c.unchecked);
    lines(&c)
}

fn osslite(evr: &str) -> Rpm<'_> {
    Rpm {
        name: "osslite",
        evr,
        provides: vec![("osslite", EQ, evr), ("libosslite.so.3()(64bit)", 0, "")],
        files: vec![("/usr/lib64/", "libosslite.so.3", 0)],
        ..Default::default()
    }
}

#[test]
fn rpm_requires_follow_rpmds() {
    let curlite = Rpm {
        name: "curlite",
        evr: "8.0-1",
        requires: vec![
            ("osslite", GT | EQ, "3.0"),
            ("libosslite.so.3()(64bit)", 0, ""),
            (
                "rpmlib(CompressedFileNames)",
                LT | EQ | (1 << 24),
                "3.0.4-1",
            ),
            ("/bin/sh", 1 << 9, ""),               // %pre: install time only
            ("/usr/bin/perl", 1 << 19, ""),        // missingok
            ("/usr/lib64/libosslite.so.3", 0, ""), // owned by osslite
            ("/etc/hostname", 0, ""),              // in the image, not in a package
        ],
        ..Default::default()
    };
    assert!(rpm_lines(&[osslite("3.0.1-2"), curlite], &["/etc/hostname"]).is_empty());

    let curlite = Rpm {
        name: "curlite",
        evr: "8.0-1",
        requires: vec![
            ("osslite", GT | EQ, "3.1"),
            ("libmissing.so.1()(64bit)", 0, ""),
            ("/etc/hostname", 0, ""),
        ],
        ..Default::default()
    };
    assert_eq!(
        rpm_lines(&[osslite("3.0.1-2"), curlite], &[]),
        [
            "curlite 8.0-1 Requires osslite >= 3.1: osslite 3.0.1-2 providing osslite = 3.0.1-2 is installed",
            "curlite 8.0-1 Requires libmissing.so.1()(64bit): not installed, and nothing installed provides it",
            "curlite 8.0-1 Requires /etc/hostname: not installed, and nothing installed provides it",
        ]
    );
}

#[test]
fn rpm_release_and_epoch_rules() {
    let req = |flags, evr| Rpm {
        name: "app",
        evr: "1-1",
        requires: vec![("osslite", flags, evr)],
        ..Default::default()
    };
    let broken = |flags, evr, provider: &str| {
        !rpm_lines(&[osslite(provider), req(flags, evr)], &[]).is_empty()
    };
    // A require without a release ignores the provide's release.
    assert!(!broken(GT | EQ, "3.0.1", "3.0.1-2"));
    assert!(!broken(LT | EQ, "3.0.1", "3.0.1-2"));
    assert!(!broken(EQ, "3.0.1", "3.0.1-2"));
    assert!(broken(GT, "3.0.1", "3.0.1-2"));
    assert!(broken(LT, "3.0.1", "3.0.1-2"));
    // With one, releases compare.
    assert!(broken(GT | EQ, "3.0.1-3", "3.0.1-2"));
    assert!(!broken(LT, "3.0.1-3", "3.0.1-2"));
    // A missing epoch is 0.
    assert!(broken(GT | EQ, "1:3.0", "3.0.1-2"));
    assert!(!broken(GT | EQ, "1:3.0", "1:3.0.1-2"));
    assert!(!broken(GT | EQ, "0:3.0", "3.0.1-2"));
    // An unversioned provide meets a versioned require (unlike dpkg and apk).
    let bare = Rpm {
        name: "p",
        evr: "1-1",
        provides: vec![("osslite", 0, "")],
        ..Default::default()
    };
    assert!(rpm_lines(&[bare, req(GT | EQ, "99")], &[]).is_empty());
    // So does a header without provide flags and versions (rpm before 3.0.2).
    let old = Rpm {
        name: "p",
        evr: "1-1",
        provides: vec![("osslite", EQ, "1")],
        bare_provides: true,
        ..Default::default()
    };
    assert!(rpm_lines(&[old, req(GT | EQ, "99")], &[]).is_empty());
}

#[test]
fn rpm_files_follow_their_state() {
    let app = Rpm {
        name: "app",
        evr: "1-1",
        requires: vec![("/usr/bin/tool", 0, ""), ("/usr/bin/other", 0, "")],
        ..Default::default()
    };
    let owner = Rpm {
        name: "tools",
        evr: "1-1",
        // /usr/bin/other was replaced by another package's copy: it does not count.
        files: vec![("/usr/bin/", "tool", 3), ("/usr/bin/", "other", 1)],
        ..Default::default()
    };
    assert_eq!(
        rpm_lines(&[app, owner], &[]),
        ["app 1-1 Requires /usr/bin/other: not installed, and nothing installed provides it"]
    );
    // A package may also provide a path by name.
    let app = Rpm {
        name: "app",
        evr: "1-1",
        requires: vec![("/usr/bin/tool", 0, "")],
        ..Default::default()
    };
    let provider = Rpm {
        name: "p",
        evr: "1-1",
        provides: vec![("/usr/bin/tool", 0, "")],
        ..Default::default()
    };
    assert!(rpm_lines(&[app, provider], &[]).is_empty());
}

#[test]
fn rpm_conflicts() {
    let c = rpm_lines(
        &[
            osslite("3.0.1-2"),
            Rpm {
                name: "app",
                evr: "1-1",
                provides: vec![("app", EQ, "1-1"), ("tls", 0, "")],
                // Its own provides never conflict.
                conflicts: vec![
                    ("osslite", LT, "3.1"),
                    ("osslite", LT, "3.0"),
                    ("tls", 0, ""),
                    ("app", 0, ""),
                    ("/usr/lib64/libosslite.so.3", 0, ""),
                ],
                ..Default::default()
            },
        ],
        &[],
    );
    assert_eq!(
        c,
        [
            "app 1-1 Conflicts osslite < 3.1: osslite 3.0.1-2 providing osslite = 3.0.1-2 is installed",
            "app 1-1 Conflicts /usr/lib64/libosslite.so.3: osslite 3.0.1-2 is installed",
        ]
    );
}

#[test]
fn rpm_rich_and_garbage_are_unchecked() {
    let app = Rpm {
        name: "app",
        evr: "1-1",
        requires: vec![("(osslite or basefs)", 0, ""), ("", GT, "1")],
        conflicts: vec![("(a and b)", 0, "")],
        ..Default::default()
    };
    let c = rpm(&rpmdb_of(&[app]), &|_: &str| false);
    assert!(c.problems.is_empty());
    assert_eq!(c.unchecked.len(), 3, "{:?}", c.unchecked);
    assert!(c.unchecked[0].contains("rich dependency"));
    // Flags and versions shorter than the names: the rest are unversioned.
    let h = build(&[
        (TAG_NAME, TYPE_STRING, 1, s("app")),
        (TAG_VERSION, TYPE_STRING, 1, s("1")),
        (TAG_RELEASE, TYPE_STRING, 1, s("1")),
        (TAG_REQUIREFLAGS, TYPE_INT32, 1, ints(&[GT])),
        (TAG_REQUIRENAME, TYPE_STRING_ARRAY, 2, strs(&["app", "zz"])),
        (TAG_REQUIREVERSION, TYPE_STRING_ARRAY, 1, strs(&["0"])),
    ]);
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL);",
    )
    .unwrap();
    conn.execute("INSERT INTO Packages (blob) VALUES (?)", [h])
        .unwrap();
    let db = crate::pkgdb::rpm::read(&conn.serialize(rusqlite::MAIN_DB).unwrap()).unwrap();
    let c = rpm(&db, &|_: &str| false);
    assert_eq!(
        lines(&c),
        [
            "app 1-1 Requires app > 0: not installed, and nothing installed provides it",
            "app 1-1 Requires zz: not installed, and nothing installed provides it",
        ]
    );
}
