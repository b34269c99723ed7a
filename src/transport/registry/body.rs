//! Reading what a registry answers, bounded twice: in bytes (at most what the descriptor says,
//! plus one byte to notice a body that goes on) and in time (the request's deadline, which ureq
//! enforces across the whole body; here it only becomes a message that names the blob).
//!
//! A registry is untrusted input: a body that never ends, or that arrives one byte at a time,
//! must fail the run with an error naming the blob and the registry, not hold it forever.

use std::io::{self, Read};
use std::time::Duration;

/// A response body read to at most `limit` bytes; byte `limit + 1` is an error.
pub struct Limited<R> {
    inner: R,
    limit: u64,
    seen: u64,
    /// "blob sha256:… from registry HOST": what every error names.
    what: String,
    /// The request's deadline, for the message when it passes.
    deadline: Duration,
}

impl<R: Read> Limited<R> {
    /// Wraps `inner`; `what` names the blob and registry in errors, `deadline` is the request's time
    /// budget (for the message only).
    pub fn new(inner: R, limit: u64, what: String, deadline: Duration) -> Limited<R> {
        Limited {
            inner,
            limit,
            seen: 0,
            what,
            deadline,
        }
    }

    fn too_long(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: the registry sent more than the {} bytes expected; refusing the rest",
                self.what, self.limit
            ),
        )
    }
}

/// Whether an I/O error is ureq's report that a request's time ran out.
pub fn is_timeout(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::TimedOut
        || e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>())
            .is_some_and(|u| matches!(u, ureq::Error::Timeout(_)))
}

/// The message for a request whose deadline passed.
pub fn deadline_message(deadline: Duration) -> String {
    format!(
        "no complete answer within the deadline of {} s (see --timeout and --min-transfer-rate)",
        deadline.as_secs_f64().ceil() as u64
    )
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.seen > self.limit {
            return Err(self.too_long());
        }
        // Never ask for more than one byte past the limit: that byte is the proof.
        let room = (self.limit - self.seen + 1).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room]).map_err(|e| {
            if is_timeout(&e) {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{}: {}", self.what, deadline_message(self.deadline)),
                )
            } else {
                io::Error::new(e.kind(), format!("{}: {e}", self.what))
            }
        })?;
        self.seen += n as u64;
        if self.seen > self.limit {
            return Err(self.too_long());
        }
        Ok(n)
    }
}

/// Reads a whole body of at most `limit` bytes; more is an error.
pub fn read_limited(
    resp: ureq::http::Response<ureq::Body>,
    limit: u64,
    what: String,
    deadline: Duration,
) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    Limited::new(resp.into_body().into_reader(), limit, what, deadline).read_to_end(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited(bytes: &[u8], limit: u64) -> Limited<io::Cursor<Vec<u8>>> {
        Limited::new(
            io::Cursor::new(bytes.to_vec()),
            limit,
            "blob sha256:ab from registry r.test".into(),
            Duration::from_secs(3),
        )
    }

    #[test]
    fn exactly_the_limit_is_read_whole() {
        let mut out = Vec::new();
        limited(b"hello", 5).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
    }

    #[test]
    fn one_byte_more_is_refused_naming_the_blob_and_registry() {
        let mut out = Vec::new();
        let err = limited(b"hello!", 5).read_to_end(&mut out).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("sha256:ab") && msg.contains("r.test") && msg.contains("5 bytes"),
            "{msg}"
        );
        assert!(out.len() <= 6);
    }

    #[test]
    fn an_endless_body_is_read_to_the_limit_plus_one_byte_only() {
        struct Endless(u64);
        impl Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.0 += buf.len() as u64;
                buf.fill(0);
                Ok(buf.len())
            }
        }
        let mut r = Limited::new(Endless(0), 104, "blob".into(), Duration::from_secs(1));
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
        assert_eq!(
            r.inner.0, 105,
            "asked the stream for one byte past the limit"
        );
    }

    #[test]
    fn ureq_timeouts_become_a_deadline_message() {
        struct Slow;
        impl Read for Slow {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other(ureq::Error::Timeout(
                    ureq::Timeout::Global,
                )))
            }
        }
        let mut r = Limited::new(Slow, 10, "manifest m".into(), Duration::from_millis(2500));
        let err = r.read(&mut [0u8; 4]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("deadline of 3 s"), "{err}");
    }
}
