//! The one pass a rebase makes over each layer: decompress, walk the tar, hash every regular
//! file's contents, summarise every ELF file (`layer::summarize` through
//! `engine::decode_with_options`), next to plain decompression of the same blob (the floor) and
//! the header-only scan. The layer is generated: 2000 files of mixed sizes, a tenth of them
//! copies of this machine's own ELF libraries, gzip -6, about 64 MiB of tar.
//! `cargo bench --bench summary`.
#![allow(clippy::disallowed_macros)] // test and benchmark output is not image text

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ocipatch::engine::{self, Compression, DecodeOptions};
use ocipatch::layer::{scan_headers, summarize};

/// A tar of `n` files: ELF libraries of the host (when readable) and generated text/binary.
fn layer() -> Vec<u8> {
    let elfs: Vec<Vec<u8>> = [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/bin/ls",
        "/usr/bin/tar",
    ]
    .iter()
    .filter_map(|p| std::fs::read(p).ok())
    .collect();
    let mut b = tar::Builder::new(Vec::new());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut total = 0usize;
    let mut i = 0;
    while total < 64 << 20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let data = if i % 10 == 0 && !elfs.is_empty() {
            elfs[i / 10 % elfs.len()].clone()
        } else {
            let len = 256 + (seed % (96 << 10)) as usize;
            (0..len)
                .map(|j| b"abcdefgh ijklmnop\n"[(j + i) % 18] ^ (seed as u8 & 3))
                .collect()
        };
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, format!("usr/lib/bench/f{i:05}"), &data[..])
            .unwrap();
        total += data.len();
        i += 1;
    }
    b.into_inner().unwrap()
}

fn benches(c: &mut Criterion) {
    let tar = layer();
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(&tar).unwrap();
    let gz = e.finish().unwrap();
    eprintln!(
        "layer: {} MiB tar, {} MiB gzip",
        tar.len() >> 20,
        gz.len() >> 20
    );
    let keep = |p: &str| p.ends_with("f00001");
    let mut g = c.benchmark_group("layer_pass");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(tar.len() as u64));
    g.bench_function("gunzip (floor)", |b| {
        b.iter(|| {
            let mut d = flate2::bufread::MultiGzDecoder::new(black_box(&gz[..]));
            std::io::copy(&mut d, &mut std::io::sink()).unwrap()
        })
    });
    for (name, pipelined) in [
        ("summarize, one thread", false),
        ("summarize, pipelined", true),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let opts = DecodeOptions {
                    diff_id: false,
                    pipelined,
                };
                engine::decode_with_options(
                    black_box(&gz[..]),
                    Compression::Gzip,
                    opts,
                    |r: &mut dyn Read| summarize(r, &keep, 1 << 20),
                )
                .unwrap()
            })
        });
    }
    g.bench_function("header scan (no contents hashed)", |b| {
        b.iter(|| {
            let opts = DecodeOptions {
                diff_id: false,
                pipelined: true,
            };
            engine::decode_with_options(
                black_box(&gz[..]),
                Compression::Gzip,
                opts,
                |r: &mut dyn Read| scan_headers(r),
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(summary, benches);
criterion_main!(summary);
