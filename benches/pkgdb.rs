//! Package-database reconciliation: parse + 3-way merge + dpkg-order write of a big status file,
//! next to sha256 of the same bytes (the floor: every byte must at least be looked at once).
//! The input is generated: 3000 dpkg stanzas shaped like real ones (~3.5 MB, a large Debian
//! system), the new base upgrading every tenth package, the app adding 200. `cargo bench --bench pkgdb`.
#![allow(clippy::disallowed_macros)] // test and benchmark output is not image text

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ocipatch::pkgdb::{merge, parse, Format};
use sha2::{Digest as _, Sha256};

fn stanza(name: &str, version: &str) -> String {
    let mut s = format!(
        "Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: libs\n\
         Installed-Size: 1234\nMaintainer: Debian Team <team@lists.debian.org>\n\
         Architecture: amd64\nMulti-Arch: same\nSource: {name}-src\nVersion: {version}\n\
         Depends: libc6 (>= 2.34), libgcc-s1 (>= 3.0), zlib1g (>= 1:1.2.0)\n\
         Description: the {name} library\n"
    );
    for i in 0..12 {
        s += &format!(" line {i} of a long description that real packages have, wrapped at 80.\n");
    }
    s += " .\n end\n\n";
    s
}

fn status(n: usize, bump: impl Fn(usize) -> bool, extra: usize) -> Vec<u8> {
    let mut names: Vec<(String, String)> = (0..n)
        .map(|i| {
            let v = if bump(i) { "1.0-2+deb12u1" } else { "1.0-2" };
            (format!("lib{i:05}"), v.to_string())
        })
        .chain((0..extra).map(|i| (format!("app{i:04}"), "3.1-1".to_string())))
        .collect();
    names.sort();
    names
        .iter()
        .map(|(n, v)| stanza(n, v))
        .collect::<String>()
        .into_bytes()
}

fn bench(c: &mut Criterion) {
    let old = status(3000, |_| false, 0);
    let new = status(3000, |i| i % 10 == 0, 0);
    let app = status(3000, |_| false, 200);
    let mut g = c.benchmark_group("pkgdb");
    g.throughput(Throughput::Bytes(
        (old.len() + new.len() + app.len()) as u64,
    ));
    g.bench_function("sha256 of the three files", |b| {
        b.iter(|| {
            for f in [&old, &new, &app] {
                black_box(Sha256::digest(f));
            }
        })
    });
    g.bench_function("parse + merge + write (dpkg status)", |b| {
        b.iter(|| {
            let (o, n, a) = (
                parse(Format::DpkgStatus, &old).unwrap(),
                parse(Format::DpkgStatus, &new).unwrap(),
                parse(Format::DpkgStatus, &app).unwrap(),
            );
            let m = merge(Some(&o), Some(&n), &a);
            assert_eq!(m.changes.len(), 300);
            black_box(m.bytes.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
