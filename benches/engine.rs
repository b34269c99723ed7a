//! Building-block benchmarks for the blob engine.
//!
//! The input is generated here, deterministically: 32 MiB of text-like pseudo-random data that
//! compresses about like a tar of /usr (gzip -6 to ~40%). Throughput is reported in bytes of
//! *decompressed* data so the rows compare directly. The whole run takes well under a minute:
//! `cargo bench --bench engine`.
//!
//! Set `OCIPATCH_BENCH_FILE=/path/layer.tar.gz` (or `.zst`, `.tar`) to also time `digest_file`
//! on a real layer from disk (one iteration of a big file is slow; the group uses 10 samples).
#![allow(clippy::disallowed_macros)] // test and benchmark output is not image text

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ocipatch::engine::{self, Compression};
use sha2::{Digest as _, Sha256};

const LEN: usize = 32 << 20;

/// Words and bytes mixed so that gzip and zstd land near real layer ratios.
fn input() -> Vec<u8> {
    let words: [&[u8]; 8] = [
        b"/usr/lib/x86_64-linux-gnu/",
        b"share/doc/",
        b"\0\0\0\0\0\0\0\0",
        b"copyright ",
        b"libfoo.so.1",
        b"#include <stdio.h>\n",
        b"0000644",
        b"ustar  ",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut out = Vec::with_capacity(LEN + 64);
    while out.len() < LEN {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x & 7) as usize]);
        // Incompressible noise keeps the ratio realistic.
        out.extend_from_slice(&x.to_le_bytes()[..((x >> 8) % 9) as usize]);
    }
    out.truncate(LEN);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// The building block "decompress and hash the output", single-threaded, 1 MiB buffer.
fn decode_and_hash(mut dec: impl Read) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = dec.read(&mut buf).unwrap();
        if n == 0 {
            return h.finalize().into();
        }
        h.update(&buf[..n]);
    }
}

fn benches(c: &mut Criterion) {
    let raw = input();
    let gz = gzip(&raw);
    let zst = zstd::stream::encode_all(&raw[..], 3).unwrap();
    eprintln!(
        "input: {} MiB, gzip -6 {:.1}%, zstd -3 {:.1}%",
        raw.len() >> 20,
        100.0 * gz.len() as f64 / raw.len() as f64,
        100.0 * zst.len() as f64 / raw.len() as f64
    );

    let mut g = c.benchmark_group("blocks");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("sha256", |b| b.iter(|| sha256(black_box(&raw))));
    g.bench_function("gunzip+sha256", |b| {
        b.iter(|| decode_and_hash(flate2::bufread::MultiGzDecoder::new(black_box(&gz[..]))))
    });
    g.bench_function("unzstd+sha256", |b| {
        b.iter(|| decode_and_hash(zstd::stream::read::Decoder::new(black_box(&zst[..])).unwrap()))
    });
    g.finish();

    // The fused pass: digest + diff ID + copy, single-thread vs the two-thread pipeline.
    let mut g = c.benchmark_group("fused_copy");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(raw.len() as u64));
    for (name, stored, comp) in [
        ("gzip", &gz, Compression::Gzip),
        ("zstd", &zst, Compression::Zstd),
        ("none", &raw, Compression::None),
    ] {
        g.bench_with_input(BenchmarkId::new("single", name), stored, |b, s| {
            b.iter(|| {
                engine::bench_support::digest_stream_single_thread(
                    &s[..],
                    Some(comp),
                    Some(&mut std::io::sink()),
                )
                .unwrap()
            })
        });
        g.bench_with_input(BenchmarkId::new("pipelined", name), stored, |b, s| {
            b.iter(|| {
                engine::digest_stream(&s[..], Some(comp), Some(&mut std::io::sink())).unwrap()
            })
        });
    }
    g.finish();

    if let Ok(path) = std::env::var("OCIPATCH_BENCH_FILE") {
        let path = std::path::PathBuf::from(path);
        let comp = match path.extension().and_then(|e| e.to_str()) {
            Some("gz") => Compression::Gzip,
            Some("zst") => Compression::Zstd,
            _ => Compression::None,
        };
        let len = std::fs::metadata(&path).unwrap().len();
        let mut g = c.benchmark_group("file");
        g.sample_size(10)
            .measurement_time(Duration::from_secs(10))
            .throughput(Throughput::Bytes(len));
        g.bench_function("digest_file+diff_id", |b| {
            b.iter(|| engine::digest_file(&path, Some(comp)).unwrap())
        });
        g.bench_function("digest_file", |b| {
            b.iter(|| engine::digest_file(&path, None).unwrap())
        });
        g.finish();
    }
}

criterion_group!(engine_benches, benches);
criterion_main!(engine_benches);
