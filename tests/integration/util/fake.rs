//! A tiny fake HTTP server on loopback for what a real registry will not do on request: send
//! bytes that do not match their digest, fail transiently, redirect, ask for Bearer tokens.
//! One connection at a time, `Connection: close`; it stops when dropped (or after 60 s).
//! A reply may also be hostile in time or length: a body that never ends, or one dribbled a
//! byte at a time.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body, read whole (`Content-Length` bodies only: what our client sends).
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub pace: Pace,
}

/// How the body is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// At once, with its `Content-Length`.
    Whole,
    /// No `Content-Length`, then zeros until the client hangs up (or `cap` bytes are sent).
    Endless { cap: u64 },
    /// With its `Content-Length`, one byte every `every`, until done or the client hangs up.
    Dribble { every: Duration },
}

impl Reply {
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
            pace: Pace::Whole,
        }
    }

    /// A body of zeros that does not end (up to `cap` bytes).
    pub fn endless(status: u16, cap: u64) -> Reply {
        Reply {
            pace: Pace::Endless { cap },
            ..Reply::new(status, Vec::new())
        }
    }

    /// Sends the body one byte every `every`.
    pub fn dribble(mut self, every: Duration) -> Reply {
        self.pace = Pace::Dribble { every };
        self
    }

    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

pub struct FakeServer {
    pub port: u16,
    /// Body bytes the server managed to hand to the kernel for endless or dribbled replies.
    pub streamed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        307 => "Temporary Redirect",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

impl FakeServer {
    /// `handler` answers each request; `None` drops the connection (e.g. a TLS hello).
    pub fn start(handler: impl Fn(&Request) -> Option<Reply> + Send + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let streamed = Arc::new(AtomicU64::new(0));
        let counter = streamed.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                while !raw.windows(4).any(|w| w == b"\r\n\r\n") && raw.len() < 64 << 10 {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => raw.extend_from_slice(&buf[..n]),
                    }
                    // A TLS ClientHello (record type 22): not for us, and it will not end in a
                    // blank line; drop it at once so the client falls back to plain HTTP.
                    if raw.first() == Some(&0x16) {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&raw).into_owned();
                let mut lines = text.split("\r\n");
                let mut first = lines.next().unwrap_or("").split(' ');
                let (Some(method), Some(path), Some(version)) =
                    (first.next(), first.next(), first.next())
                else {
                    continue;
                };
                if !version.starts_with("HTTP/") {
                    continue;
                }
                let headers: Vec<(String, String)> = lines
                    .take_while(|l| !l.is_empty())
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .collect();
                let length = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .and_then(|(_, v)| v.parse::<usize>().ok())
                    .unwrap_or(0);
                let start = raw
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(raw.len(), |p| p + 4);
                let mut body = raw[start..].to_vec();
                while body.len() < length {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => body.extend_from_slice(&buf[..n]),
                    }
                }
                let req = Request {
                    method: method.to_string(),
                    path: path.to_string(),
                    headers,
                    body,
                };
                let Some(reply) = handler(&req) else {
                    continue;
                };
                let mut head = format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
                for (k, v) in &reply.headers {
                    head.push_str(&format!("{k}: {v}\r\n"));
                }
                if !matches!(reply.pace, Pace::Endless { .. }) {
                    head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
                }
                head.push_str("Connection: close\r\n\r\n");
                let _ = conn.write_all(head.as_bytes());
                if req.method == "HEAD" {
                    continue;
                }
                let live = || !flag.load(Ordering::Relaxed) && Instant::now() < deadline;
                match reply.pace {
                    Pace::Whole => {
                        let _ = conn.write_all(&reply.body);
                    }
                    Pace::Endless { cap } => {
                        let zeros = vec![0u8; 64 << 10];
                        while live() && counter.load(Ordering::Relaxed) < cap {
                            match conn.write(&zeros) {
                                Ok(n) if n > 0 => {
                                    counter.fetch_add(n as u64, Ordering::Relaxed);
                                }
                                _ => break,
                            }
                        }
                    }
                    Pace::Dribble { every } => {
                        for byte in &reply.body {
                            if !live() || conn.write_all(&[*byte]).is_err() {
                                break;
                            }
                            counter.fetch_add(1, Ordering::Relaxed);
                            std::thread::sleep(every);
                        }
                    }
                }
            }
        });
        FakeServer {
            port,
            streamed,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
