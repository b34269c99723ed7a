//! A real registry for tests: Debian's `docker-registry` (distribution 2.x) on a free loopback
//! port, filesystem storage in a temp dir, optionally behind htpasswd auth. Its access log
//! (stdout/stderr) goes to a file the tests read to count requests. Stopped by its PID when
//! dropped, so a failing test never leaks a registry.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{cmd, require_tools, run_ok};

/// Tools these tests drive; a missing one fails the test (never a skip).
pub const REGISTRY_TOOLS: &[&str] = &["docker-registry", "skopeo", "htpasswd", "umoci", "openssl"];

pub struct Registry {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
    log: PathBuf,
}

pub struct Auth<'a> {
    pub user: &'a str,
    pub password: &'a str,
}

/// A port nothing listens on right now (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// A private CA and a server certificate it signed for 127.0.0.1, made with openssl.
pub struct TestCa {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TestCa {
    pub fn create(dir: &std::path::Path) -> TestCa {
        let run = |args: &[&str]| {
            run_ok(cmd("openssl").args(args).current_dir(dir));
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=ocipatch test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        TestCa {
            ca_cert: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
        }
    }
}

impl Registry {
    /// A registry serving HTTPS with a certificate from `ca`.
    pub fn start_tls(ca: &TestCa) -> Registry {
        Registry::start_with(None, Some(ca))
    }

    pub fn start(auth: Option<Auth<'_>>) -> Registry {
        Registry::start_with(auth, None)
    }

    fn start_with(auth: Option<Auth<'_>>, tls: Option<&TestCa>) -> Registry {
        require_tools(REGISTRY_TOOLS);
        let dir = tempfile::Builder::new()
            .prefix("ocipatch-registry.")
            .tempdir()
            .expect("tempdir");
        let port = free_port();
        let mut config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some(ca) = tls {
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                ca.server_cert.display(),
                ca.server_key.display()
            ));
        }
        if let Some(a) = auth {
            let out = run_ok(cmd("htpasswd").args(["-Bbn", a.user, a.password]));
            let file = dir.path().join("htpasswd");
            fs::write(&file, &out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: ocipatch-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_file = dir.path().join("config.yml");
        fs::write(&config_file, config).expect("write registry config");
        let log = dir.path().join("registry.log");
        let out = fs::File::create(&log).expect("create log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .spawn()
            .expect("start docker-registry");
        let reg = Registry {
            child,
            _dir: dir,
            port,
            log,
        };
        reg.wait_ready();
        reg
    }

    fn wait_ready(&self) {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "docker-registry did not listen on {addr} within 20 s; its log:\n{}",
            self.log_text()
        );
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `docker://127.0.0.1:PORT/REPO_AND_TAG`
    pub fn docker(&self, repo_and_tag: &str) -> String {
        format!("docker://{}/{repo_and_tag}", self.host())
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Where the log is now: pass it to `requests_since` to see what happened after.
    pub fn log_mark(&self) -> usize {
        fs::read(&self.log).map_or(0, |b| b.len())
    }

    /// Access-log requests (`"METHOD PATH HTTP/1.1"`) logged after `mark`, as `METHOD PATH`.
    pub fn requests_since(&self, mark: usize) -> Vec<String> {
        // The access log is written when a response completes; give the last one a moment.
        std::thread::sleep(Duration::from_millis(200));
        let bytes = fs::read(&self.log).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes[mark.min(bytes.len())..]).into_owned();
        text.lines()
            .filter_map(|l| {
                let start = l.find("\"GET ").or_else(|| {
                    ["\"HEAD ", "\"POST ", "\"PUT ", "\"PATCH ", "\"DELETE "]
                        .iter()
                        .find_map(|m| l.find(m))
                })?;
                let rest = &l[start + 1..];
                let end = rest.find(" HTTP/")?;
                Some(rest[..end].to_string())
            })
            .collect()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
