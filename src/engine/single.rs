//! The single-thread pass, for small blobs: one buffer in, one buffer out, no hand-offs.

use std::io::{Read, Write};

use sha2::{Digest as _, Sha256};

use super::decode::{check_end, decode_error, decoder};
use super::source::{read_full, TeeSource};
use super::{BlobDigests, Compression, EngineError, Tuning};
use crate::model::Digest;

pub(crate) fn run(
    reader: impl Read,
    diff_id: Option<Compression>,
    copy_to: Option<&mut (dyn Write + Send)>,
    tuning: Tuning,
) -> Result<BlobDigests, EngineError> {
    let mut src = TeeSource::new(reader, tuning.chunk, copy_to);
    let decoded = match diff_id {
        Some(c @ (Compression::Gzip | Compression::Zstd)) => {
            let mut hasher = Sha256::new();
            let mut buf = vec![0; tuning.chunk];
            let mut dec = decoder(c, &mut src)?;
            loop {
                let n = read_full(&mut dec, &mut buf).map_err(|e| decode_error(e, c))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
            }
            drop(dec);
            let size = src.size;
            check_end(&mut src, c, size)?;
            Some(hasher)
        }
        // Uncompressed: the diff ID is the digest, so hash once and copy it below.
        Some(Compression::None) | None => {
            src.drain()?;
            None
        }
    };
    let digest = Digest::from_sha256(src.hasher.finalize().into());
    let diff_id = match (diff_id, decoded) {
        (_, Some(h)) => Some(Digest::from_sha256(h.finalize().into())),
        (Some(Compression::None), None) => Some(digest.clone()),
        (_, None) => None,
    };
    Ok(BlobDigests {
        digest,
        size: src.size,
        diff_id,
    })
}
