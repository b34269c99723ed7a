//! The parallel blob engine: one streaming pass per blob computes its digest and diff ID.
//!
//! Every blob is read exactly once. The stored (usually compressed) bytes feed one SHA-256 and,
//! when copying, the destination; when a diff ID is asked for, the same bytes are decompressed
//! and the output feeds a second SHA-256. Nothing ever holds a whole blob: data moves in
//! `CHUNK`-sized buffers.
//!
//! Small blobs run on the calling thread (`single`). Big blobs run as a two-thread pipeline
//! (`pipeline`): decompression is the one serial step of a gzip layer, so it gets a thread of
//! its own and every hash (and the copy) runs on the other. Across blobs, `parallel` runs the
//! biggest first so the cores finish together.

mod consume;
mod decode;
mod parallel;
mod pipeline;
mod single;
mod source;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

pub use consume::{decode_with, decode_with_options, ConsumeError, DecodeOptions};
pub use decode::decoder;
pub use parallel::{digest_files_parallel, map_biggest_first};

use crate::model::Digest;

/// How a blob's stored bytes are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Stored as is.
    None,
    /// Gzip (one or more members).
    Gzip,
    /// Zstandard (one or more frames).
    Zstd,
}

impl Compression {
    /// The compression of a layer media type, or `None` when the media type is not a layer
    /// (configs, manifests, artifacts): those have no diff ID.
    ///
    /// Covers the OCI names (`…layer.v1.tar`, `+gzip`, `+zstd`, and the nondistributable
    /// variants) and the Docker schema 2 names (`…rootfs.diff.tar`, `.tar.gzip`,
    /// `.foreign.diff.tar.gzip`).
    pub fn from_media_type(media_type: &str) -> Option<Compression> {
        let is_layer = media_type.starts_with("application/vnd.oci.image.layer.")
            || media_type.starts_with("application/vnd.docker.image.rootfs.");
        if !is_layer {
            return None;
        }
        if media_type.ends_with("+gzip") || media_type.ends_with(".gzip") {
            Some(Compression::Gzip)
        } else if media_type.ends_with("+zstd") {
            Some(Compression::Zstd)
        } else if media_type.ends_with(".tar") {
            Some(Compression::None)
        } else {
            None
        }
    }

    /// The name used in error messages.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// What one pass over a blob found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobDigests {
    /// sha256 of the bytes as stored (compressed).
    pub digest: Digest,
    /// Number of stored bytes.
    pub size: u64,
    /// sha256 of the decompressed stream, when it was asked for.
    pub diff_id: Option<Digest>,
}

/// Why a pass failed. Messages are one line; the caller adds which blob or file it was.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading the source failed.
    #[error("read failed: {0}")]
    Read(#[source] std::io::Error),
    /// Writing the copy failed.
    #[error("write failed: {0}")]
    Write(#[source] std::io::Error),
    /// The compressed stream is invalid or ends early.
    #[error("{compression} stream is corrupt: {detail}")]
    Decompress {
        /// `"gzip"` or `"zstd"`.
        compression: &'static str,
        /// What the decoder said.
        detail: String,
    },
}

/// Size of one buffer moving through the engine. 1 MiB amortises per-call overhead (syscalls,
/// channel hand-offs) while keeping a pipeline's working set at a few MiB.
pub(crate) const CHUNK: usize = 1 << 20;

/// Knobs the public functions fix and the tests vary.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    /// Blobs at least this big run as a two-thread pipeline. Below it a thread hand-off costs
    /// more than it saves.
    pub pipeline_threshold: u64,
    /// Buffer size for reads, decompressed output and hand-offs.
    pub chunk: usize,
    /// Buffers in flight in a pipeline; bounds its memory to `buffers * chunk`.
    pub buffers: usize,
}

impl Tuning {
    pub(crate) const DEFAULT: Tuning = Tuning {
        pipeline_threshold: 4 << 20,
        chunk: CHUNK,
        buffers: 8,
    };
}

/// One pass over `reader`: sha256 and byte count of the stored bytes; when `diff_id` is
/// `Some(c)`, also decompress with `c` and sha256 the output (`Compression::None` gives
/// `diff_id == digest`, hashed once); when `copy_to` is `Some`, the stored bytes are written
/// there as they stream by.
///
/// Never holds a whole blob in memory. A truncated gzip/zstd stream, an empty one, or bytes
/// after its end are errors; concatenated gzip members are legal gzip and are accepted.
pub fn digest_stream(
    reader: impl Read + Send,
    diff_id: Option<Compression>,
    copy_to: Option<&mut (dyn Write + Send)>,
) -> Result<BlobDigests, EngineError> {
    digest_stream_tuned(reader, diff_id, copy_to, Tuning::DEFAULT)
}

/// Same as [`digest_stream`], for a file on disk: its size picks the single-thread or the
/// pipelined pass up front.
pub fn digest_file(path: &Path, diff_id: Option<Compression>) -> Result<BlobDigests, EngineError> {
    digest_file_tuned(path, diff_id, Tuning::DEFAULT)
}

/// Copy `reader` into a new file `dest` (created, or truncated if it exists), returning the
/// digests of what was written; the file is fsync'ed before this returns.
///
/// On error the partial file is removed, so a failed copy leaves nothing behind. Callers write
/// to a temporary name and rename it once the digests check out.
pub fn copy_to_file(
    reader: impl Read + Send,
    dest: &Path,
    diff_id: Option<Compression>,
) -> Result<BlobDigests, EngineError> {
    copy_to_file_tuned(reader, dest, diff_id, Tuning::DEFAULT)
}

pub(crate) fn digest_file_tuned(
    path: &Path,
    diff_id: Option<Compression>,
    tuning: Tuning,
) -> Result<BlobDigests, EngineError> {
    let file = File::open(path).map_err(EngineError::Read)?;
    let len = file.metadata().map_err(EngineError::Read)?.len();
    if len >= tuning.pipeline_threshold {
        pipeline::run(file, diff_id, None, tuning)
    } else {
        single::run(file, diff_id, None, tuning)
    }
}

pub(crate) fn copy_to_file_tuned(
    reader: impl Read + Send,
    dest: &Path,
    diff_id: Option<Compression>,
    tuning: Tuning,
) -> Result<BlobDigests, EngineError> {
    let mut file = File::create(dest).map_err(EngineError::Write)?;
    let result = digest_stream_tuned(reader, diff_id, Some(&mut file), tuning)
        .and_then(|d| file.sync_all().map(|()| d).map_err(EngineError::Write));
    if result.is_err() {
        drop(file);
        let _ = std::fs::remove_file(dest);
    }
    result
}

/// A stream's size is unknown, so read up to the pipeline threshold first: a blob that ends
/// within it is small and stays on this thread; otherwise the prefix and the rest go through
/// the pipeline. The prefix costs at most `pipeline_threshold` bytes of memory.
pub(crate) fn digest_stream_tuned(
    mut reader: impl Read + Send,
    diff_id: Option<Compression>,
    copy_to: Option<&mut (dyn Write + Send)>,
    tuning: Tuning,
) -> Result<BlobDigests, EngineError> {
    if tuning.pipeline_threshold == u64::MAX {
        return single::run(reader, diff_id, copy_to, tuning);
    }
    let mut prefix = Vec::new();
    (&mut reader)
        .take(tuning.pipeline_threshold)
        .read_to_end(&mut prefix)
        .map_err(EngineError::Read)?;
    if (prefix.len() as u64) < tuning.pipeline_threshold {
        single::run(&prefix[..], diff_id, copy_to, tuning)
    } else {
        pipeline::run(
            std::io::Cursor::new(prefix).chain(reader),
            diff_id,
            copy_to,
            tuning,
        )
    }
}

/// Entry points for `benches/engine.rs` only; not part of the API.
#[doc(hidden)]
pub mod bench_support {
    use super::*;

    /// [`digest_stream`] forced onto the calling thread, to measure what the pipeline buys.
    pub fn digest_stream_single_thread(
        reader: impl Read + Send,
        diff_id: Option<Compression>,
        copy_to: Option<&mut (dyn Write + Send)>,
    ) -> Result<BlobDigests, EngineError> {
        let tuning = Tuning {
            pipeline_threshold: u64::MAX,
            ..Tuning::DEFAULT
        };
        digest_stream_tuned(reader, diff_id, copy_to, tuning)
    }
}
