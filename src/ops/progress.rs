//! How long-running operations report progress without printing: the CLI passes an
//! implementation (a progress bar on a terminal), the library only counts bytes.

/// Receives progress from long operations. Every method has a no-op default; implementations must
/// be `Sync` because blobs are processed in parallel.
pub trait Progress: Sync {
    /// The work ahead, in bytes.
    fn start(&self, _total_bytes: u64) {}
    /// `bytes` more are done.
    fn advance(&self, _bytes: u64) {}
    /// The work is over.
    fn finish(&self) {}
    /// Something the user may not expect is about to happen (`check` contacting the registry
    /// an annotation names); the CLI prints it before it happens.
    fn note(&self, _text: &str) {}
}

/// Reports nothing.
pub struct Silent;

impl Progress for Silent {}

/// A reader that reports what passes through it.
pub struct Counting<'a, R> {
    /// The reader being counted.
    pub inner: R,
    /// Where each read's byte count goes ([`Progress::advance`]).
    pub progress: &'a dyn Progress,
}

impl<R: std::io::Read> std::io::Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}
