//! Property test of `verdict::version` against the real tools, on thousands of real version
//! strings (`testdata/versions/debian.txt`, written by `scripts/make-version-corpus.sh` from
//! the Debian archive indexes; the same strings serve as rpm EVRs, see the file's header) and
//! on a few hand-made strings for the rules real versions rarely exercise.
//!
//! - dpkg: `dpkg --compare-versions A OP B` must confirm the relation `dpkg_cmp` gives for
//!   every pair (the three relations exclude each other, so one call per pair checks the
//!   exact order), and accept exactly the strings `dpkg_parse` accepts.
//! - rpm: one `/usr/bin/python3` process with rpm's own bindings (python3-rpm) answers for
//!   every pair: `rpm.labelCompare` on `(E, V, None)` tuples (plain `rpmvercmp` of V), on the
//!   strings (`rpmverCmp`), and `rpm.ds(...).Compare` (`rpmdsCompare`) for all 25 combinations
//!   of `<`, `<=`, `=`, `>=`, `>` on both sides.
//!
//! Pairs: every version with its neighbour in sorted order, the versions of one package with
//! each other, and a seeded pseudo-random sample. A missing tool fails the test (never a skip):
//! `apt-get install -y dpkg python3-rpm`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::util::*;
use ocipatch::verdict::version::{
    dpkg_cmp, dpkg_parse, rpm_ds_matches, rpm_evr_cmp, rpm_label_cmp, rpm_vercmp, RPMSENSE_EQUAL,
    RPMSENSE_GREATER, RPMSENSE_LESS,
};

/// The rpm bindings of the system python: a pyenv python on PATH has none.
const PYTHON: &str = "/usr/bin/python3";

/// Hand-made dpkg versions for rules real versions rarely show: `~` against the end, letters
/// against punctuation, epochs written oddly, long digit runs, bytes above 127, and strings
/// dpkg only warns about. All of them are versions dpkg accepts (it cannot compare the others).
const DPKG_EXTRA: &[&str] = &[
    "0",
    "0.0",
    "1",
    "1.0",
    "1.0-0",
    "1.0-1",
    "1.0~",
    "1.0~~",
    "1.0~a",
    "1.0a",
    "1.0A",
    "1.0+",
    "1.0.",
    "1.0-1~",
    "1:0",
    "0:1.0",
    "00:1.0",
    "+1:1.0",
    "-0:1.0",
    "1.0-1-1",
    "1.00001",
    "1.99999999999999999999999",
    "1.100000000000000000000000",
    "abc",
    "1.0_x",
    "2:1.0:3-4",
    "1.0\u{e9}",
    "1.0z",
    "~",
    "~~1",
    "a",
    "Z",
    "1.0-a",
    "1.0-+",
    "9",
    "10",
    "1a1",
    "1a01",
    "1.0-1+b1",
    "1.0+really0.9-1",
];

/// Strings dpkg rejects (it exits 2), and some it accepts with a warning, for `dpkg_parse`.
const DPKG_PARSE: &[&str] = &[
    "1.0-",
    ":1",
    "a:1",
    "-1:1",
    "1:",
    "-1",
    "1:-1",
    "99999999999:1",
    "2147483647:1",
    "2147483648:1",
    "1a:1",
    "+:1",
    "abc",
    "1.0_x",
    "1.0 ",
    " 1.0",
];

/// Hand-made rpm versions: separators, `~` and `^`, leading zeros, alphabetic against numeric,
/// epochs and releases.
const RPM_EXTRA: &[&str] = &[
    "1.0",
    "1.0.",
    "1..0",
    "1_0",
    "1.0a",
    "1.0~rc1",
    "1.0~",
    "1.0^",
    "1.0^git1",
    "1.0^git1~pre",
    "1.0~rc1^git1",
    "1.01",
    "1.001",
    "1.1",
    "1.a",
    "a.1",
    "xyz.4",
    "8",
    "10xyz",
    "10.1xyz",
    "1.0-1",
    "1.0-2",
    "1.0-1.el9",
    "1.0-1.el10",
    "1:1.0",
    "0:1.0",
    "1:1.0-1",
    "2.0-1",
    ":1.0",
    "001:1.0",
    "1.123456789012345678901234567890",
    "1.123456789012345678901234567889",
    "1.A",
    "+1",
    "1-2-3",
    "1.0-",
    "5.5p1",
    "5.5p10",
    "2.0.1a",
    "6.0.rc1",
];

fn corpus() -> Vec<(String, String)> {
    let path = repo_root().join("testdata/versions/debian.txt");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (scripts/make-version-corpus.sh)", path.display()));
    let out: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (p, v) = l.split_once(' ').expect("PACKAGE VERSION");
            (p.to_string(), v.to_string())
        })
        .collect();
    assert!(
        out.len() > 3000,
        "the corpus has only {} versions",
        out.len()
    );
    out
}

/// xorshift64*: a fixed seed, the same pairs on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// Neighbours in `order`, one package's versions with each other, a seeded random sample, and
/// every pair of the hand-made strings; no pair twice.
fn pairs(
    corpus: &[(String, String)],
    extra: &[&str],
    order: fn(&str, &str) -> Ordering,
) -> Vec<(String, String)> {
    let mut versions: Vec<&str> = corpus.iter().map(|(_, v)| v.as_str()).collect();
    versions.sort();
    versions.dedup();
    versions.sort_by(|a, b| order(a, b).then_with(|| a.cmp(b)));
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut add = |a: &str, b: &str| {
        if a != b && seen.insert((a.to_string(), b.to_string())) {
            out.push((a.to_string(), b.to_string()));
        }
    };
    for w in versions.windows(2) {
        add(w[0], w[1]);
    }
    let mut by_package: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (p, v) in corpus {
        by_package.entry(p).or_default().push(v);
    }
    for vs in by_package.values() {
        for (i, a) in vs.iter().enumerate() {
            for b in &vs[i + 1..] {
                add(a, b);
            }
        }
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..2000 {
        let (a, b) = (rng.below(versions.len()), rng.below(versions.len()));
        add(versions[a], versions[b]);
    }
    for a in extra {
        for b in extra {
            add(a, b);
        }
    }
    out
}

/// Runs `dpkg --compare-versions` for each (a, op, b) on two threads; true where it exits 0.
fn dpkg_says(queries: &[(String, &'static str, String)]) -> Vec<bool> {
    assert!(
        find_in_path("dpkg").is_some(),
        "dpkg is missing: apt-get install -y dpkg"
    );
    // A dpkg run is short and mostly waits on exec and the loader: twice as many threads as
    // cores keeps the cores busy.
    let threads = std::thread::available_parallelism().map_or(4, |n| (2 * n.get()).min(8));
    let chunk = queries.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(a, op, b)| {
                            let r = run(cmd("dpkg")
                                .args(["--compare-versions", "--", a, op, b])
                                .env("LC_ALL", "C"));
                            match r.code() {
                                0 => true,
                                1 => false,
                                _ => panic!("{r}"),
                            }
                        })
                        .collect::<Vec<bool>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("dpkg thread"))
            .collect()
    })
}

#[test]
fn dpkg_cmp_agrees_with_dpkg() {
    let corpus = corpus();
    let pairs = pairs(&corpus, DPKG_EXTRA, dpkg_cmp);
    // dpkg compares only versions it accepts (it exits 2 on the others).
    assert!(pairs
        .iter()
        .all(|(a, b)| dpkg_parse(a).is_ok() && dpkg_parse(b).is_ok()));
    let queries: Vec<(String, &'static str, String)> = pairs
        .iter()
        .map(|(a, b)| {
            let op = match dpkg_cmp(a, b) {
                Ordering::Less => "lt",
                Ordering::Equal => "eq",
                Ordering::Greater => "gt",
            };
            (a.clone(), op, b.clone())
        })
        .collect();
    let start = std::time::Instant::now();
    let answers = dpkg_says(&queries);
    let wrong: Vec<String> = queries
        .iter()
        .zip(&answers)
        .filter(|(_, ok)| !**ok)
        .map(|((a, op, b), _)| format!("dpkg denies {a:?} {op} {b:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} pairs disagree:\n{}",
        wrong.len(),
        queries.len(),
        wrong.join("\n")
    );
    println!(
        "dpkg --compare-versions agrees with dpkg_cmp on all {} version pairs ({} real versions, {:.1}s)",
        queries.len(),
        corpus.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(queries.len() > 8000, "{} pairs", queries.len());
}

#[test]
fn dpkg_parse_accepts_what_dpkg_accepts() {
    let mut strings: Vec<String> = DPKG_PARSE.iter().map(|s| s.to_string()).collect();
    strings.extend(DPKG_EXTRA.iter().map(|s| s.to_string()));
    // `eq` with itself: exit 0 for a version dpkg accepts (warnings included), 2 for an error.
    let mut accepted = Vec::new();
    assert!(
        find_in_path("dpkg").is_some(),
        "dpkg is missing: apt-get install -y dpkg"
    );
    for s in &strings {
        let r = run(cmd("dpkg").args(["--compare-versions", "--", s, "eq", s]));
        accepted.push(match r.code() {
            0 => true,
            2 => false,
            _ => panic!("{r}"),
        });
    }
    for (s, dpkg_ok) in strings.iter().zip(accepted) {
        assert_eq!(
            dpkg_parse(s).is_ok(),
            dpkg_ok,
            "{s:?}: dpkg_parse says {:?}",
            dpkg_parse(s)
        );
    }
}

/// The python side: reads `A\tB` lines, writes `VERCMP LABEL MATCHES` lines.
const RPM_SCRIPT: &str = r#"
import sys, rpm
L, E, G = rpm.RPMSENSE_LESS, rpm.RPMSENSE_EQUAL, rpm.RPMSENSE_GREATER
FLAGS = [L, L | E, E, G | E, G]
out = []
for line in sys.stdin:
    a, b = line.rstrip("\n").split("\t")
    vercmp = rpm.labelCompare(("0", a, None), ("0", b, None))
    label = rpm.labelCompare(a, b)
    A = [rpm.ds(("x", f, a), rpm.RPMTAG_PROVIDENAME) for f in FLAGS]
    B = [rpm.ds(("x", f, b), rpm.RPMTAG_REQUIRENAME) for f in FLAGS]
    m = "".join("1" if x.Compare(y) else "0" for x in A for y in B)
    out.append("%d %d %s" % (vercmp, label, m))
sys.stdout.write("\n".join(out) + "\n")
"#;

const FLAGS: [u32; 5] = [
    RPMSENSE_LESS,
    RPMSENSE_LESS | RPMSENSE_EQUAL,
    RPMSENSE_EQUAL,
    RPMSENSE_GREATER | RPMSENSE_EQUAL,
    RPMSENSE_GREATER,
];

fn sign(o: Ordering) -> i32 {
    match o {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }
}

#[test]
fn rpm_comparisons_agree_with_rpm() {
    let corpus = corpus();
    let pairs = pairs(&corpus, RPM_EXTRA, rpm_label_cmp);
    let start = std::time::Instant::now();
    assert!(
        Path::new(PYTHON).is_file(),
        "{PYTHON} is missing (apt-get install -y python3-rpm)"
    );
    let input: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    let output = run(cmd(PYTHON).args(["-c", RPM_SCRIPT]).stdin(input));
    assert!(
        output.success(),
        "{PYTHON} with rpm's bindings failed (apt-get install -y python3-rpm):\n{output}"
    );
    let answers: Vec<&str> = std::str::from_utf8(&output.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(answers.len(), pairs.len());
    let mut wrong = Vec::new();
    for ((a, b), answer) in pairs.iter().zip(&answers) {
        let mut parts = answer.split(' ');
        let vercmp: i32 = parts.next().and_then(|x| x.parse().ok()).expect("vercmp");
        let label: i32 = parts.next().and_then(|x| x.parse().ok()).expect("label");
        let matches = parts.next().expect("matches").as_bytes();
        if sign(rpm_vercmp(a, b)) != vercmp {
            wrong.push(format!("rpmvercmp({a:?}, {b:?}) = {vercmp}"));
        }
        if sign(rpm_label_cmp(a, b)) != label {
            wrong.push(format!("labelCompare({a:?}, {b:?}) = {label}"));
        }
        for (i, fa) in FLAGS.iter().enumerate() {
            for (j, fb) in FLAGS.iter().enumerate() {
                let rpm_says = matches[i * FLAGS.len() + j] == b'1';
                if rpm_ds_matches(*fa, a, *fb, b) != rpm_says {
                    wrong.push(format!(
                        "rpmdsCompare({a:?} flags {fa}, {b:?} flags {fb}) = {rpm_says}"
                    ));
                }
            }
        }
        // rpm_evr_cmp is the comparison inside: `= a` overlaps `= b` exactly when equal,
        // `= a` overlaps `< b` exactly when less.
        let eq = matches[2 * FLAGS.len() + 2] == b'1';
        let lt = matches[2 * FLAGS.len()] == b'1';
        let rpm_order = if eq {
            Ordering::Equal
        } else if lt {
            Ordering::Less
        } else {
            Ordering::Greater
        };
        if rpm_evr_cmp(a, b) != rpm_order {
            wrong.push(format!(
                "rpm's EVR comparison of {a:?} and {b:?} is {rpm_order:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} disagreements over {} pairs:\n{}",
        wrong.len(),
        pairs.len(),
        wrong[..wrong.len().min(50)].join("\n")
    );
    println!(
        "rpm (python3-rpm {}) agrees on all {} EVR pairs: rpmvercmp, labelCompare and 25 rpmdsCompare flag combinations each ({:.1}s)",
        rpm_version(),
        pairs.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(pairs.len() > 8000, "{} pairs", pairs.len());
}

fn rpm_version() -> String {
    run(cmd(PYTHON).args(["-c", "import rpm; print(rpm.__version__)"]))
        .stdout()
        .trim()
        .to_string()
}
