//! Interop test of `verdict::relations::dpkg` against `apt-get check`, the tool whose verdict
//! it mirrors: on this machine's own `/var/lib/dpkg/status` (a healthy Debian: both must find
//! nothing), on copies of it broken on purpose (a dependency bumped out of reach, a Breaks that
//! matches, a library removed: both must report the same relations), and on small hand-made
//! status files for each rule (architectures, Multi-Arch, provides, package states).
//!
//! apt reads only the status file given (`-o Dir::State::status=`): no sources, no lists, no
//! cache written, no lock taken. (`dpkg --audit` is no reference here: it reports package
//! states, not relations.)
//!
//! `verdict::relations::rpm` is judged by `rpm -Va --nofiles` on a database rpm itself wrote:
//! packages built with rpmbuild (versioned and file requires, an unmet `>` against a provide
//! without release, install-time-only requires, conflicts with others and with itself, a rich
//! dependency) installed into a temporary root with `rpm --root -i --nodeps`.
//!
//! A missing apt-get, dpkg, rpm or rpmbuild fails the test (never a skip); the rpm test runs
//! as root (rpm --root), like the other interop tests.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::*;
use ocipatch::pkgdb::{self, Format};
use ocipatch::verdict::relations::{self, Checked, RelationKind};

/// (package as apt names it, relation as apt names it, the package the relation names).
type Broken = BTreeSet<(String, String, String)>;

/// `apt-get check` on a status file: whether apt calls it consistent, the broken relations it
/// lists, and its output.
fn apt_check(status: &Path, native: &str) -> (bool, Broken, String) {
    let empty = tempfile::tempdir().expect("tempdir");
    let e = empty.path().display();
    let mut c = cmd("apt-get");
    c.arg("check").env("LC_ALL", "C");
    for opt in [
        format!("Dir::State::status={}", status.display()),
        format!("Dir::State::Lists={e}"),
        "Dir::Etc::SourceList=/dev/null".to_string(),
        format!("Dir::Etc::SourceParts={e}"),
        format!("Dir::Cache={e}"),
        "Dir::Cache::pkgcache=".to_string(),
        "Dir::Cache::srcpkgcache=".to_string(),
        "Dir::State::extended_states=/dev/null".to_string(),
        "Debug::NoLocking=1".to_string(),
        format!("APT::Architecture={native}"),
        format!("APT::Architectures::={native}"),
        "APT::Architectures::=i386".to_string(),
    ] {
        c.arg("-o").arg(opt);
    }
    assert!(
        find_in_path("apt-get").is_some(),
        "apt-get is missing: apt-get install -y apt"
    );
    let out = run(&mut c);
    let text = format!("{}{}", out.stdout(), out.stderr());
    let ok = match out.code() {
        0 => true,
        100 => false,
        _ => panic!("apt-get check failed:\n{out}"),
    };
    assert!(
        !text.contains("could not be parsed"),
        "apt could not read the status file:\n{text}"
    );
    let mut broken = Broken::new();
    let mut package = String::new();
    for line in text.lines().filter(|l| l.starts_with(' ')) {
        let rest = match line.split_once(" : ") {
            Some((p, rest)) => {
                package = p.trim().to_string();
                rest
            }
            None => line.trim(),
        };
        for kind in ["PreDepends", "Depends", "Breaks", "Conflicts"] {
            if let Some(dep) = rest.strip_prefix(kind).and_then(|r| r.strip_prefix(": ")) {
                let name = dep.split([' ', ':']).next().unwrap_or("").to_string();
                broken.insert((package.clone(), kind.to_string(), name));
            }
        }
    }
    (ok, broken, text)
}

/// Our problems in apt's terms: the package with `:ARCH` when it is not of the native
/// architecture (or `all`), the relation as apt prints it (the implicit multi-arch ones are
/// apt's Breaks for `Multi-Arch: same`, Conflicts for the others), the first name it names.
fn ours(checked: &Checked, native: &str) -> Broken {
    checked
        .problems
        .iter()
        .map(|p| {
            let pkg = &p.package;
            let name = if pkg.arch == native || pkg.arch == "all" || pkg.arch.is_empty() {
                pkg.name.clone()
            } else {
                format!("{}:{}", pkg.name, pkg.arch)
            };
            let (kind, target) = match p.relation {
                RelationKind::MultiArch if p.wanted.starts_with("same") => {
                    ("Breaks", pkg.name.clone())
                }
                RelationKind::MultiArch => ("Conflicts", pkg.name.clone()),
                other => {
                    let kind = match other {
                        RelationKind::PreDepends => "PreDepends",
                        RelationKind::Depends => "Depends",
                        RelationKind::Breaks => "Breaks",
                        RelationKind::Conflicts => "Conflicts",
                        k => panic!("{k:?} in a dpkg database"),
                    };
                    let first = p.wanted.split(['|', ' ', '(', ':']).next().unwrap_or("");
                    (kind, first.to_string())
                }
            };
            (name, kind.to_string(), target)
        })
        .collect()
}

fn check_status(text: &str) -> Checked {
    let db = pkgdb::parse(Format::DpkgStatus, text.as_bytes()).expect("status parses");
    relations::dpkg(&db)
}

fn native_arch() -> String {
    assert!(
        find_in_path("dpkg").is_some(),
        "dpkg is missing: apt-get install -y dpkg"
    );
    run(cmd("dpkg").arg("--print-architecture"))
        .stdout()
        .trim()
        .to_string()
}

/// Both judge `text`; they must agree on every broken relation.
fn agree(label: &str, text: &str, native: &str) -> Broken {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("status");
    std::fs::write(&path, text).expect("write status");
    let (apt_ok, apt, output) = apt_check(&path, native);
    let checked = check_status(text);
    let mine = ours(&checked, native);
    assert_eq!(
        apt,
        mine,
        "{label}: apt-get check and relations::dpkg disagree\napt:\n{output}\nours:\n{}",
        checked
            .problems
            .iter()
            .map(|p| format!("  {p}\n"))
            .collect::<String>()
    );
    assert_eq!(apt_ok, mine.is_empty(), "{label}: {output}");
    mine
}

#[test]
fn host_status_is_healthy_for_both() {
    let native = native_arch();
    let path = Path::new("/var/lib/dpkg/status");
    let text = std::fs::read_to_string(path).expect("read /var/lib/dpkg/status");
    let (ok, broken, output) = apt_check(path, &native);
    assert!(
        ok && broken.is_empty(),
        "this machine's status is not healthy for apt:\n{output}"
    );
    let checked = check_status(&text);
    assert!(
        checked.problems.is_empty(),
        "{:#?}",
        checked
            .problems
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
    );
    assert!(checked.unchecked.is_empty(), "{:?}", checked.unchecked);
    let db = pkgdb::parse(Format::DpkgStatus, text.as_bytes()).unwrap();
    println!(
        "{} packages of /var/lib/dpkg/status: no broken relations for apt-get check nor relations::dpkg",
        db.records.len()
    );
}

/// The stanzas of a status file (without the blank lines between them).
fn stanzas(text: &str) -> Vec<String> {
    text.split("\n\n")
        .map(|s| s.trim_matches('\n').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn field<'a>(stanza: &'a str, name: &str) -> Option<&'a str> {
    stanza.lines().find_map(|l| {
        l.split_once(':')
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    })
}

fn installed(stanza: &str) -> bool {
    field(stanza, "Status").is_some_and(|s| s.ends_with(" installed"))
}

fn join(stanzas: &[String]) -> String {
    stanzas.iter().map(|s| format!("{s}\n\n")).collect()
}

#[test]
fn broken_copies_of_the_host_status_agree_with_apt() {
    let native = native_arch();
    let text = std::fs::read_to_string("/var/lib/dpkg/status").expect("read status");
    let all = stanzas(&text);

    // 1. A versioned dependency bumped out of reach (epoch 99).
    let mut bumped = all.clone();
    let (i, dep) = bumped
        .iter()
        .enumerate()
        .filter(|(_, s)| installed(s))
        .find_map(|(i, s)| {
            let deps = field(s, "Depends")?;
            let clause = deps
                .split(',')
                .map(str::trim)
                .find(|c| c.contains("(>=") && !c.contains('|'))?;
            Some((i, clause.to_string()))
        })
        .expect("an installed package with a versioned dependency");
    let name = dep.split([' ', '(', ':']).next().unwrap().to_string();
    let new_dep = format!("{name} (>= 99:0)");
    bumped[i] = bumped[i].replacen(&dep, &new_dep, 1);
    let pkg = field(&bumped[i], "Package").unwrap().to_string();
    let got = agree("bumped dependency", &join(&bumped), &native);
    assert!(
        got.contains(&(pkg.clone(), "Depends".into(), name.clone())),
        "{got:?}"
    );
    println!("bumped {pkg}'s '{dep}' to '{new_dep}': both report {got:?}");

    // 2. A Breaks that matches an installed library.
    let mut breaks = all.clone();
    let (i, target) = {
        let libc = all
            .iter()
            .find(|s| field(s, "Package") == Some("libc6"))
            .expect("libc6 is installed");
        let j = all
            .iter()
            .position(|s| installed(s) && field(s, "Breaks").is_none() && !s.contains("libc6"))
            .expect("a package without Breaks");
        (j, field(libc, "Version").unwrap().to_string())
    };
    breaks[i].push_str(&format!("\nBreaks: libc6 (<< {target}.1)"));
    let pkg = field(&breaks[i], "Package").unwrap().to_string();
    let got = agree("added Breaks", &join(&breaks), &native);
    assert_eq!(
        got,
        Broken::from([(pkg.clone(), "Breaks".into(), "libc6".into())])
    );

    // 3. A library removed: every dependency on it breaks (the library the fewest other
    // packages depend on, so the list stays short).
    let checked = check_status(&text);
    assert!(checked.problems.is_empty());
    let mut rdeps: std::collections::BTreeMap<String, usize> = Default::default();
    for s in all.iter().filter(|s| installed(s)) {
        for f in ["Depends", "Pre-Depends"] {
            for clause in field(s, f).unwrap_or("").split(',') {
                if clause.contains('|') {
                    continue;
                }
                let n = clause.trim().split([' ', '(', ':']).next().unwrap_or("");
                if n.starts_with("lib") {
                    *rdeps.entry(n.to_string()).or_default() += 1;
                }
            }
        }
    }
    let (lib, _) = rdeps
        .iter()
        .filter(|(n, _)| {
            // Only a real package, provided by nothing else.
            all.iter().any(|s| field(s, "Package") == Some(n.as_str()))
                && !all.iter().any(|s| {
                    field(s, "Provides")
                        .is_some_and(|p| p.split(',').any(|x| x.trim().starts_with(n.as_str())))
                })
        })
        .min_by_key(|(n, c)| (**c, (*n).clone()))
        .expect("a library others depend on");
    let removed: Vec<String> = all
        .iter()
        .filter(|s| field(s, "Package") != Some(lib.as_str()))
        .cloned()
        .collect();
    let got = agree("removed library", &join(&removed), &native);
    assert!(got
        .iter()
        .all(|(_, k, n)| k.contains("Depends") && n == lib));
    assert!(!got.is_empty());
    println!("removed {lib}: both report {got:?}");
}

/// An installed package's stanza.
fn pkg(name: &str, version: &str, arch: &str, extra: &str) -> String {
    format!(
        "Package: {name}\nStatus: install ok installed\nVersion: {version}\nArchitecture: {arch}\n{extra}"
    )
}

#[test]
fn hand_made_rules_agree_with_apt() {
    let native = "amd64";
    // `dpkg` pins the native architecture for relations::dpkg (as on a real system).
    let base = pkg("dpkg", "1.21.22", "amd64", "");
    let with_state = |name: &str, state: &str| {
        format!("Package: {name}\nStatus: install ok {state}\nVersion: 1\nArchitecture: amd64\n")
    };
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("missing", vec![pkg("a", "1", "amd64", "Depends: c\n")]),
        (
            ":any of a Multi-Arch: no package",
            vec![pkg("a", "1", "amd64", "Depends: b:any\n"), pkg("b", "1", "amd64", "")],
        ),
        (
            ":any of a Multi-Arch: allowed package",
            vec![
                pkg("a", "1", "amd64", "Depends: b:any\n"),
                pkg("b", "1", "i386", "Multi-Arch: allowed\n"),
            ],
        ),
        (
            "foreign-arch allowed package, no qualifier",
            vec![
                pkg("a", "1", "amd64", "Depends: b\n"),
                pkg("b", "1", "i386", "Multi-Arch: allowed\n"),
            ],
        ),
        (
            "Multi-Arch: same skew",
            vec![
                pkg("l", "1.0", "amd64", "Multi-Arch: same\n"),
                pkg("l", "1.1", "i386", "Multi-Arch: same\n"),
            ],
        ),
        (
            "Multi-Arch: same in step",
            vec![
                pkg("l", "1.0", "amd64", "Multi-Arch: same\n"),
                pkg("l", "1.0", "i386", "Multi-Arch: same\n"),
            ],
        ),
        (
            "two architectures of a Multi-Arch: no package",
            vec![pkg("l", "1.0", "amd64", ""), pkg("l", "1.0", "i386", "")],
        ),
        (
            "two architectures of a Multi-Arch: foreign package",
            vec![
                pkg("l", "1.0", "amd64", "Multi-Arch: foreign\n"),
                pkg("l", "1.0", "i386", "Multi-Arch: foreign\n"),
            ],
        ),
        (
            "unversioned provide, versioned dependency",
            vec![
                pkg("a", "1", "amd64", "Depends: v (>= 1)\n"),
                pkg("p", "1", "amd64", "Provides: v\n"),
            ],
        ),
        (
            "versioned provide",
            vec![
                pkg("a", "1", "amd64", "Depends: v (>= 1), w (>= 3)\n"),
                pkg("p", "1", "amd64", "Provides: v (= 2), w (= 2)\n"),
            ],
        ),
        (
            "self conflict through a provide",
            vec![pkg("a", "1", "amd64", "Provides: v\nConflicts: v, a\n")],
        ),
        (
            "conflict through another's provide",
            vec![
                pkg("a", "1", "amd64", "Conflicts: v\nBreaks: w (<< 2)\n"),
                pkg("p", "1", "amd64", "Provides: v, w\n"),
            ],
        ),
        (
            "package states",
            vec![
                pkg("a", "1", "amd64", "Depends: b, c, d, e, f\nBreaks: b, c, d, e, f\n"),
                with_state("b", "config-files"),
                with_state("c", "unpacked"),
                with_state("d", "half-configured"),
                with_state("e", "triggers-pending"),
                with_state("f", "not-installed"),
                "Package: g\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\nDepends: zz\n"
                    .to_string(),
            ],
        ),
        (
            "arch all and foreign architectures",
            vec![
                pkg("a", "1", "all", "Depends: b, c\n"),
                pkg("b", "1", "i386", ""),
                pkg("c", "1", "amd64", ""),
                pkg("d", "1", "i386", "Depends: e, f, g:native, h:amd64, b:i386\n"),
                pkg("e", "1", "all", ""),
                pkg("f", "1", "amd64", "Multi-Arch: foreign\n"),
                pkg("g", "1", "amd64", ""),
                pkg("h", "1", "i386", "Multi-Arch: foreign\n"),
            ],
        ),
        (
            "provides across architectures",
            vec![
                pkg("a", "1", "amd64", "Depends: v, w, x:any, y:any\n"),
                pkg("p", "1", "i386", "Provides: v\n"),
                pkg("q", "1", "i386", "Multi-Arch: foreign\nProvides: w\n"),
                pkg("r", "1", "i386", "Multi-Arch: allowed\nProvides: x\n"),
                pkg("s", "1", "amd64", "Provides: y\n"),
            ],
        ),
        (
            "alternatives, obsolete operators, Pre-Depends",
            vec![
                pkg(
                    "a",
                    "1",
                    "amd64",
                    "Depends: x (>= 2) | y, x (< 1), x (> 1)\nPre-Depends: x (>> 1), x (<= 1)\n",
                ),
                pkg("x", "1", "amd64", ""),
            ],
        ),
        (
            "Breaks of another architecture",
            vec![
                pkg("a", "1", "amd64", "Breaks: b (<< 2), c:amd64\n"),
                pkg("b", "1", "i386", ""),
                pkg("c", "1", "i386", ""),
            ],
        ),
        (
            "the libssl3t64 transition",
            vec![
                pkg(
                    "libssl3t64",
                    "3.5.1-1",
                    "amd64",
                    "Multi-Arch: same\nProvides: libssl3 (= 3.5.1-1)\nBreaks: libssl3 (<< 3.5.9-1~deb13u1)\nReplaces: libssl3\n",
                ),
                pkg("libssl3", "3.0.17-1~deb12u2", "amd64", "Multi-Arch: same\n"),
                pkg("curl", "7.88.1-10", "amd64", "Depends: libssl3 (>= 3.0.0)\n"),
            ],
        ),
        (
            "epochs, tildes and revisions",
            vec![
                pkg(
                    "a",
                    "1",
                    "amd64",
                    "Depends: b (>= 1:1.0), c (>= 2.0), d (= 1.0-1), e (<< 1.0)\n",
                ),
                pkg("b", "1.0", "amd64", ""),
                pkg("c", "2.0~rc1", "amd64", ""),
                pkg("d", "1.0-1+b1", "amd64", ""),
                pkg("e", "1.0~beta", "amd64", ""),
            ],
        ),
    ];
    let mut relations = 0;
    for (label, mut stanzas) in cases {
        stanzas.insert(0, base.clone());
        let text = join(&stanzas);
        relations += agree(label, &text, native).len();
    }
    println!("{relations} broken relations in the hand-made status files: apt-get check and relations::dpkg agree on each");
}

/// Builds a noarch package with `rpmbuild` (one file, `/usr/share/NAME/file`) with the given
/// spec header lines.
fn rpmbuild(top: &Path, name: &str, version: &str, header: &str) {
    let spec = top.join(format!("SPECS/{name}.spec"));
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: {version}\nRelease: 1\nSummary: {name}\nLicense: MIT\nBuildArch: noarch\n{header}\n\n%description\n{name} (ocipatch relations test)\n\n%install\nmkdir -p %{{buildroot}}/usr/share/{name}\necho {name} > %{{buildroot}}/usr/share/{name}/file\n\n%files\n/usr/share/{name}/file\n"
        ),
    )
    .expect("write spec");
    assert!(
        find_in_path("rpmbuild").is_some(),
        "rpmbuild is missing: apt-get install -y rpm"
    );
    run_ok(
        cmd("rpmbuild")
            .args(["--quiet", "--define"])
            .arg(format!("_topdir {}", top.display()))
            .args(["--define", "_binary_payload w9.gzdio", "-bb"])
            .arg(&spec),
    );
}

#[test]
fn rpm_relations_agree_with_rpm_verify() {
    let dir = tempfile::tempdir().expect("tempdir");
    let top = dir.path().join("rpmbuild");
    for d in ["SPECS", "SOURCES", "BUILD", "RPMS", "SRPMS"] {
        std::fs::create_dir_all(top.join(d)).unwrap();
    }
    rpmbuild(&top, "base", "1.0", "Provides: base-virtual = 2.0, tls");
    rpmbuild(
        &top,
        "app",
        "1.0",
        "Requires: base >= 1.0, base-virtual >= 2, base-virtual, base >= 0:1.0, base <= 1.0\nRequires: /usr/share/base/file, (base or nothing)\nRequires(pre): /bin/sh\nRequires(post): missing-at-install-time",
    );
    rpmbuild(
        &top,
        "broken",
        "1.0",
        "Requires: base >= 2.0, missing-thing, /usr/share/nothing, base > 1.0, base-virtual > 2.0-1\nRequires: (missing-a or missing-b)\nProvides: tls2\nConflicts: base < 5, tls2, base-virtual = 2.0",
    );
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let rpm = |args: &[&str]| {
        run(cmd("rpm")
            .arg("--root")
            .arg(&root)
            .args(["--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"])
            .args(args)
            .env("LC_ALL", "C"))
    };
    let rpms: Vec<String> = std::fs::read_dir(top.join("RPMS/noarch"))
        .expect("built packages")
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let mut install = vec!["-i", "--nodeps", "--noscripts"];
    install.extend(rpms.iter().map(String::as_str));
    let out = rpm(&install);
    assert!(out.success(), "rpm -i:\n{out}");
    // rpm's verdict: "X is needed by (installed) P", "X conflicts with (installed) P" (a
    // conflict is listed under both packages; the relation belongs to P).
    let out = rpm(&["-Va", "--nofiles"]);
    let text = out.stdout();
    let mut theirs = BTreeSet::new();
    for line in text.lines().filter_map(|l| l.strip_prefix('\t')) {
        let (dep, kind, rest) = if let Some((d, r)) = line.split_once(" is needed by ") {
            (d, "Requires", r)
        } else if let Some((d, r)) = line.split_once(" conflicts with ") {
            (d, "Conflicts", r)
        } else {
            panic!("rpm -V line not understood: {line:?}\n{text}");
        };
        let nevra = rest.trim_start_matches("(installed) ");
        theirs.insert((kind.to_string(), dep.to_string(), nevra.to_string()));
    }
    let db_path = root.join("var/lib/rpm/rpmdb.sqlite");
    let wal = root.join("var/lib/rpm/rpmdb.sqlite-wal");
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "rpm left transactions in {}",
        wal.display()
    );
    let db = pkgdb::rpm::read(&std::fs::read(&db_path).expect("rpmdb.sqlite")).expect("read rpmdb");
    // rpm looks for files in its database only, never on disk.
    let checked = relations::rpm(&db, &|_: &str| false);
    let mut mine = BTreeSet::new();
    for p in &checked.problems {
        let kind = match p.relation {
            RelationKind::Requires => "Requires",
            RelationKind::Conflicts => "Conflicts",
            k => panic!("{k:?} in an rpm database"),
        };
        let nevra = format!(
            "{}-{}.{}",
            p.package.name, p.package.version, p.package.arch
        );
        mine.insert((kind.to_string(), p.wanted.clone(), nevra));
    }
    // Rich dependencies are rpm's alone: each one rpm reports must be an unchecked note.
    let rich: Vec<_> = theirs
        .iter()
        .filter(|(_, d, _)| d.starts_with('('))
        .cloned()
        .collect();
    for (_, dep, _) in &rich {
        assert!(
            checked.unchecked.iter().any(|u| u.contains(dep.as_str())),
            "{dep}: {:?}",
            checked.unchecked
        );
        theirs.retain(|(_, d, _)| d != dep);
    }
    assert_eq!(
        theirs,
        mine,
        "rpm -Va --nofiles:\n{text}\nrelations::rpm:\n{}",
        checked
            .problems
            .iter()
            .map(|p| format!("  {p}\n"))
            .collect::<String>()
    );
    assert!(mine.len() >= 5, "{mine:?}");
    println!(
        "rpm -Va --nofiles and relations::rpm agree on {} broken relations ({} rich one(s) left to rpm)",
        mine.len(),
        rich.len()
    );
}
