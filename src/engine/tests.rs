//! Engine tests: known digests, round trips, corrupt streams, and both passes agreeing.

use std::io::{Read, Write};

use super::*;

/// Small tuning so the tests exercise many chunk boundaries and pool recycling.
const SINGLE: Tuning = Tuning {
    pipeline_threshold: u64::MAX,
    chunk: 4096,
    buffers: 3,
};
const PIPELINED: Tuning = Tuning {
    pipeline_threshold: 0,
    chunk: 4096,
    buffers: 3,
};

const EMPTY_SHA256: &str =
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Compressible but not trivial: a few hundred KiB of text-like pseudo-random data.
fn sample(len: usize) -> Vec<u8> {
    let words: [&[u8]; 6] = [b"usr ", b"lib ", b"share ", b"bin\n", b"etc/", b"0123 "];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % 6) as usize]);
        out.push((x >> 32) as u8);
    }
    out.truncate(len);
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::stream::encode_all(data, 3).unwrap()
}

fn compress(c: Compression, data: &[u8]) -> Vec<u8> {
    match c {
        Compression::None => data.to_vec(),
        Compression::Gzip => gzip(data),
        Compression::Zstd => zstd(data),
    }
}

/// Run a stream pass with both tunings, check they agree, and return the result.
fn both(stored: &[u8], diff_id: Option<Compression>) -> Result<BlobDigests, EngineError> {
    let a = digest_stream_tuned(stored, diff_id, None, SINGLE);
    let b = digest_stream_tuned(stored, diff_id, None, PIPELINED);
    match (&a, &b) {
        (Ok(x), Ok(y)) => assert_eq!(x, y),
        (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string()),
        _ => panic!("single {a:?} vs pipelined {b:?}"),
    }
    a
}

#[test]
fn empty_input_has_the_well_known_digest() {
    for diff_id in [None, Some(Compression::None)] {
        let d = both(b"", diff_id).unwrap();
        assert_eq!(d.digest.to_string(), EMPTY_SHA256);
        assert_eq!(d.size, 0);
        assert_eq!(d.diff_id.is_some(), diff_id.is_some());
    }
    assert_eq!(
        digest_stream(&b""[..], None, None)
            .unwrap()
            .digest
            .to_string(),
        EMPTY_SHA256
    );
}

#[test]
fn small_gzip_has_its_known_diff_id() {
    let stored = gzip(b"hello world\n");
    let d = both(&stored, Some(Compression::Gzip)).unwrap();
    // `printf 'hello world\n' | sha256sum`
    assert_eq!(
        d.diff_id.unwrap().to_string(),
        "sha256:a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447"
    );
    assert_eq!(d.digest, Digest::of(&stored));
    assert_eq!(d.size, stored.len() as u64);
}

#[test]
fn round_trips_for_every_compression() {
    let data = sample(300_000);
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let stored = compress(c, &data);
        let d = both(&stored, Some(c)).unwrap();
        assert_eq!(d.digest, Digest::of(&stored), "{c:?}");
        assert_eq!(d.size, stored.len() as u64, "{c:?}");
        assert_eq!(d.diff_id, Some(Digest::of(&data)), "{c:?}");
        let digest_only = both(&stored, None).unwrap();
        assert_eq!(digest_only.digest, d.digest);
        assert_eq!(digest_only.diff_id, None);
    }
}

#[test]
fn uncompressed_diff_id_equals_digest() {
    let data = sample(50_000);
    let d = both(&data, Some(Compression::None)).unwrap();
    assert_eq!(d.diff_id, Some(d.digest.clone()));
}

fn assert_corrupt(stored: &[u8], c: Compression, needle: &str) {
    let err = both(stored, Some(c)).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, EngineError::Decompress { .. }),
        "{c:?}: {msg}"
    );
    assert!(msg.starts_with(c.name()), "{msg}");
    assert!(msg.contains(needle), "{c:?}: {msg:?} lacks {needle:?}");
    assert!(!msg.contains('\n'), "one line: {msg:?}");
}

#[test]
fn truncated_gzip_is_an_error() {
    let stored = gzip(&sample(200_000));
    // Cut inside the deflate data and inside the 8-byte trailer.
    assert_corrupt(&stored[..stored.len() / 2], Compression::Gzip, "truncated");
    assert_corrupt(&stored[..stored.len() - 3], Compression::Gzip, "truncated");
}

#[test]
fn truncated_zstd_is_an_error() {
    let stored = zstd(&sample(200_000));
    assert_corrupt(&stored[..stored.len() / 2], Compression::Zstd, "truncated");
    assert_corrupt(&stored[..stored.len() - 1], Compression::Zstd, "truncated");
}

#[test]
fn empty_compressed_stream_is_an_error() {
    assert_corrupt(b"", Compression::Gzip, "");
    assert_corrupt(b"", Compression::Zstd, "");
}

#[test]
fn gzip_members_concatenate_but_garbage_after_the_stream_is_an_error() {
    let (a, b) = (sample(70_000), sample(9_000));
    let mut stored = gzip(&a);
    stored.extend(gzip(&b));
    let d = both(&stored, Some(Compression::Gzip)).unwrap();
    assert_eq!(d.diff_id, Some(Digest::of(&[a.clone(), b].concat())));

    let mut garbage = gzip(&a);
    garbage.extend_from_slice(b"not gzip at all");
    assert_corrupt(&garbage, Compression::Gzip, "");
    // Zero padding is not gzip either (GNU gzip only warns about it; we are strict).
    let mut padded = gzip(&a);
    padded.extend_from_slice(&[0; 512]);
    assert_corrupt(&padded, Compression::Gzip, "");
}

#[test]
fn zstd_frames_concatenate_but_garbage_after_the_stream_is_an_error() {
    let (a, b) = (sample(70_000), sample(9_000));
    let mut stored = zstd(&a);
    stored.extend(zstd(&b));
    let d = both(&stored, Some(Compression::Zstd)).unwrap();
    assert_eq!(d.diff_id, Some(Digest::of(&[a.clone(), b].concat())));

    let mut garbage = zstd(&a);
    garbage.extend_from_slice(b"not zstd at all");
    assert_corrupt(&garbage, Compression::Zstd, "");
}

#[test]
fn corrupt_gzip_body_is_an_error() {
    let mut stored = gzip(&sample(100_000));
    let mid = stored.len() / 2;
    for b in &mut stored[mid..mid + 64] {
        *b ^= 0x5a;
    }
    assert_corrupt(&stored, Compression::Gzip, "");
}

#[test]
fn copy_to_writes_identical_bytes_on_both_paths() {
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let stored = compress(c, &sample(150_000));
        for tuning in [SINGLE, PIPELINED] {
            for diff_id in [None, Some(c)] {
                let mut out = Vec::new();
                let d = digest_stream_tuned(&stored[..], diff_id, Some(&mut out), tuning).unwrap();
                assert!(out == stored, "{c:?} {tuning:?} {diff_id:?}");
                assert_eq!(d.digest, Digest::of(&stored));
            }
        }
    }
}

#[test]
fn files_copy_and_digest_on_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample(120_000);
    let stored = gzip(&data);
    for (name, tuning) in [("single", SINGLE), ("pipelined", PIPELINED)] {
        let dest = dir.path().join(name);
        let copied =
            copy_to_file_tuned(&stored[..], &dest, Some(Compression::Gzip), tuning).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), stored);
        let read = digest_file_tuned(&dest, Some(Compression::Gzip), tuning).unwrap();
        assert_eq!(copied, read);
        assert_eq!(read.diff_id, Some(Digest::of(&data)));
    }
    assert_eq!(
        digest_file(&dir.path().join("single"), Some(Compression::Gzip)).unwrap(),
        copy_to_file(
            &stored[..],
            &dir.path().join("again"),
            Some(Compression::Gzip)
        )
        .unwrap()
    );
}

#[test]
fn failed_copy_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("blob");
    let stored = gzip(&sample(50_000));
    let err = copy_to_file(&stored[..100], &dest, Some(Compression::Gzip)).unwrap_err();
    assert!(matches!(err, EngineError::Decompress { .. }), "{err}");
    assert!(!dest.exists());
}

/// A reader that fails after some bytes, like a dropped connection.
struct Failing(usize);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::Error::other("connection reset"));
        }
        let n = buf.len().min(self.0);
        buf[..n].fill(b'x');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn read_errors_are_not_reported_as_corrupt_streams() {
    for tuning in [SINGLE, PIPELINED] {
        for diff_id in [None, Some(Compression::Gzip), Some(Compression::Zstd)] {
            // Start with a valid gzip header so the decoder is mid-stream when the read fails.
            let head = &gzip(&sample(10_000))[..20];
            let r = head.chain(Failing(0));
            let err = digest_stream_tuned(r, diff_id, None, tuning).unwrap_err();
            assert!(
                matches!(err, EngineError::Read(_)),
                "{tuning:?} {diff_id:?}: {err}"
            );
            assert_eq!(err.to_string(), "read failed: connection reset");
        }
    }
}

/// A writer that fails, like a full disk.
struct Full;

impl Write for Full {
    fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("no space left"))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn write_errors_are_reported_as_such() {
    let stored = gzip(&sample(100_000));
    for tuning in [SINGLE, PIPELINED] {
        for diff_id in [None, Some(Compression::Gzip)] {
            let err =
                digest_stream_tuned(&stored[..], diff_id, Some(&mut Full), tuning).unwrap_err();
            assert_eq!(err.to_string(), "write failed: no space left", "{tuning:?}");
        }
    }
}

#[test]
fn parallel_results_keep_job_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut jobs = Vec::new();
    let mut expected = Vec::new();
    for (i, len) in [1_000usize, 200_000, 0, 50_000].into_iter().enumerate() {
        let data = sample(len);
        let stored = gzip(&data);
        let path = dir.path().join(i.to_string());
        std::fs::write(&path, &stored).unwrap();
        jobs.push((path, Some(Compression::Gzip)));
        expected.push((Digest::of(&stored), Digest::of(&data)));
    }
    jobs.push((dir.path().join("missing"), None));
    let results = digest_files_parallel(&jobs);
    assert_eq!(results.len(), 5);
    for (r, (digest, diff_id)) in results.iter().zip(&expected) {
        let r = r.as_ref().unwrap();
        assert_eq!(&r.digest, digest);
        assert_eq!(r.diff_id.as_ref(), Some(diff_id));
    }
    assert!(matches!(results[4], Err(EngineError::Read(_))));
}

#[test]
fn map_biggest_first_runs_biggest_first_on_one_thread() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let started = std::sync::Mutex::new(Vec::new());
    let out = pool.install(|| {
        map_biggest_first(
            &[3u64, 10, 1, 7],
            |&n| n,
            |&n| {
                started.lock().unwrap().push(n);
                n * 2
            },
        )
    });
    assert_eq!(out, vec![6, 20, 2, 14]);
    assert_eq!(started.into_inner().unwrap(), vec![10, 7, 3, 1]);
}

#[test]
fn media_types_map_to_compression() {
    use Compression as C;
    let cases = [
        ("application/vnd.oci.image.layer.v1.tar", Some(C::None)),
        ("application/vnd.oci.image.layer.v1.tar+gzip", Some(C::Gzip)),
        ("application/vnd.oci.image.layer.v1.tar+zstd", Some(C::Zstd)),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar",
            Some(C::None),
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            Some(C::Gzip),
        ),
        (
            "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
            Some(C::Zstd),
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar",
            Some(C::None),
        ),
        (
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Some(C::Gzip),
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
            Some(C::Gzip),
        ),
        (
            "application/vnd.docker.image.rootfs.foreign.diff.tar",
            Some(C::None),
        ),
        ("application/vnd.oci.image.config.v1+json", None),
        ("application/vnd.docker.container.image.v1+json", None),
        ("application/vnd.oci.image.manifest.v1+json", None),
        ("application/vnd.oci.empty.v1+json", None),
        ("application/vnd.cncf.helm.chart.content.v1.tar+gzip", None),
        ("application/x-tar", None),
        ("", None),
    ];
    for (media_type, expected) in cases {
        assert_eq!(
            Compression::from_media_type(media_type),
            expected,
            "{media_type}"
        );
    }
}
