//! Feed a compressor in fixed-size blocks, so its call sequence (and so its output) depends only
//! on the bytes, not on how reads happened to split them. This is needed: flate2 (zlib-rs) gives
//! different gzip bytes for the same data written in different-sized pieces, and a file's reads
//! may be short on some filesystems. `CHUNK` is part of the output: changing it changes digests.

use std::io::{self, Write};

pub(crate) const CHUNK: usize = 128 * 1024;

pub(crate) struct FixedChunks<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> FixedChunks<W> {
    pub fn new(inner: W) -> Self {
        FixedChunks {
            inner,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    /// Write the last, short block and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        Ok(self.inner)
    }
}

impl<W: Write> Write for FixedChunks<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(n)
    }

    /// Deliberately does not pass the flush on: a compressor flush would change its output.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_blocks_do_not_depend_on_input_splits() {
        #[derive(Default)]
        struct Calls(Vec<usize>);
        impl Write for Calls {
            fn write(&mut self, b: &[u8]) -> io::Result<usize> {
                self.0.push(b.len());
                Ok(b.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let data = vec![7u8; CHUNK * 2 + 5];
        let mut whole = FixedChunks::new(Calls::default());
        whole.write_all(&data).unwrap();
        let mut split = FixedChunks::new(Calls::default());
        for piece in data.chunks(1000) {
            split.write_all(piece).unwrap();
        }
        let (whole, split) = (whole.finish().unwrap().0, split.finish().unwrap().0);
        assert_eq!(whole, [CHUNK, CHUNK, 5]);
        assert_eq!(whole, split);
    }
}
