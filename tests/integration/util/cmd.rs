//! Running commands: the binary under test ([`ocipatch`]) and the tools the tests drive
//! ([`cmd`]), one way for both. Every run has a deadline (a hang fails the test instead of
//! blocking the suite), output goes to files (a grandchild that keeps a pipe open cannot wedge
//! the test), and a failure message shows the command line, its working directory, the
//! environment it was given, the exit status, stdout, stderr and a listing of the directories
//! named with [`Cmd::show_dir`].

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a run of the binary may take before it is killed and the test fails.
const OCIPATCH_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// The same for other programs (the Debian fixture scripts debootstrap on their first run).
const TOOL_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The binary under test (for a script that runs it; run it with [`ocipatch`]).
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ocipatch"))
}

/// The binary under test, in a clean environment: only `PATH` and `TMPDIR` pass through, and
/// `HOME` is a fresh empty directory, so no auth file, credential helper, proxy, package-cache
/// or `SOURCE_DATE_EPOCH` of the machine reaches it. `.env(…)` adds what a test wants.
pub fn ocipatch() -> Cmd {
    let mut c = Cmd::new(bin());
    c.clean = true;
    c.timeout = OCIPATCH_TIMEOUT;
    c
}

/// Another program (skopeo, umoci, a fixture script…), with the test's environment.
pub fn cmd(program: impl AsRef<OsStr>) -> Cmd {
    Cmd::new(program)
}

/// A command to run; built like [`std::process::Command`] (`arg`, `args`, `env`, …).
pub struct Cmd {
    program: OsString,
    args: Vec<OsString>,
    /// Set in order, after the clean environment if any.
    envs: Vec<(OsString, OsString)>,
    clean: bool,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    show: Vec<PathBuf>,
}

impl Cmd {
    fn new(program: impl AsRef<OsStr>) -> Cmd {
        Cmd {
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            clean: false,
            cwd: None,
            stdin: None,
            timeout: TOOL_TIMEOUT,
            show: Vec::new(),
        }
    }

    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Cmd {
        self.envs
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Bytes to feed on stdin (otherwise stdin is `/dev/null`).
    pub fn stdin(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// The deadline, instead of the default (10 minutes for the binary, an hour for tools).
    pub fn timeout(&mut self, limit: Duration) -> &mut Cmd {
        self.timeout = limit;
        self
    }

    /// A directory whose listing a failure message shows (the working directory always is).
    pub fn show_dir(&mut self, dir: impl AsRef<Path>) -> &mut Cmd {
        self.show.push(dir.as_ref().to_owned());
        self
    }

    /// The command line, quoted for a shell.
    fn cmdline(&self) -> String {
        std::iter::once(&self.program)
            .chain(&self.args)
            .map(|a| quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn described(&self) -> Described {
        let mut shown = self.show.clone();
        if let Some(cwd) = &self.cwd {
            shown.insert(0, cwd.clone());
        }
        Described {
            cmdline: self.cmdline(),
            cwd: self.cwd.clone(),
            env: self
                .envs
                .iter()
                .map(|(k, v)| format!("{}={}", k.to_string_lossy(), quote(v)))
                .collect(),
            clean: self.clean,
            shown,
        }
    }

    /// Starts the command; [`Running::finish`] waits for it (up to the deadline).
    pub fn spawn(&mut self) -> Running {
        self.spawn_as(Command::new(&self.program))
    }

    /// Starts the command stopped (SIGSTOP) before it runs: a shell stops itself, then `exec`s
    /// the command under the same PID, so a test knows the PID and can prepare first; resume
    /// it with `signal("CONT")`.
    pub fn spawn_stopped(&mut self) -> Running {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(r#"kill -STOP $$; exec "$0" "$@""#)
            .arg(&self.program);
        let running = self.spawn_as(sh);
        let pid = running.pid;
        wait_for(&format!("process {pid} to stop"), || {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit(") ").next().is_some_and(|s| s.starts_with('T'))
        });
        running
    }

    /// Starts `c` (the program, or what runs it) with this command's arguments and environment.
    fn spawn_as(&self, mut c: Command) -> Running {
        let described = self.described();
        c.args(&self.args);
        let home = if self.clean {
            let home = tempfile::Builder::new()
                .prefix("ocipatch-test-home.")
                .tempdir()
                .expect("a temp HOME");
            c.env_clear().env("HOME", home.path());
            for k in ["PATH", "TMPDIR"] {
                if let Some(v) = std::env::var_os(k) {
                    c.env(k, v);
                }
            }
            Some(home)
        } else {
            None
        };
        c.envs(self.envs.iter().map(|(k, v)| (k, v)));
        if let Some(cwd) = &self.cwd {
            c.current_dir(cwd);
        }
        let stdin = match &self.stdin {
            Some(bytes) => {
                let mut f = tempfile::tempfile().expect("a stdin file");
                f.write_all(bytes).expect("write stdin");
                f.rewind().expect("rewind stdin");
                Stdio::from(f)
            }
            None => Stdio::null(),
        };
        let stdout = tempfile::tempfile().expect("a stdout file");
        let stderr = tempfile::tempfile().expect("a stderr file");
        c.stdin(stdin)
            .stdout(stdout.try_clone().expect("dup stdout"))
            .stderr(stderr.try_clone().expect("dup stderr"));
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}`: {e}", described.cmdline));
        Running {
            pid: child.id(),
            child,
            described,
            stdout,
            stderr,
            deadline: Instant::now() + self.timeout,
            timeout: self.timeout,
            _home: home,
        }
    }
}

/// `arg` as a shell would need it.
fn quote(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-+=:,./@%^".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What a failure message says about the command.
struct Described {
    cmdline: String,
    cwd: Option<PathBuf>,
    env: Vec<String>,
    clean: bool,
    shown: Vec<PathBuf>,
}

impl fmt::Display for Described {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.cmdline)?;
        if let Some(cwd) = &self.cwd {
            writeln!(f, "--- cwd: {}", cwd.display())?;
        }
        let base = if self.clean {
            "clean (PATH, TMPDIR, an empty HOME)"
        } else {
            "inherited"
        };
        match (self.clean, self.env.is_empty()) {
            (false, true) => Ok(()),
            (_, true) => writeln!(f, "--- env: {base}"),
            (_, false) => writeln!(f, "--- env: {base} + {}", self.env.join(" ")),
        }
    }
}

/// A started command.
pub struct Running {
    child: Child,
    pub pid: u32,
    described: Described,
    stdout: fs::File,
    stderr: fs::File,
    deadline: Instant,
    timeout: Duration,
    _home: Option<tempfile::TempDir>,
}

impl Running {
    /// Sends signal `name` (`INT`, `CONT`, …) to the process.
    pub fn signal(&self, name: &str) {
        let st = Command::new("kill")
            .args([&format!("-{name}"), &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(st.success(), "kill -{name} {}", self.pid);
    }

    /// Waits for the exit; past the deadline the process is killed and the test fails.
    pub fn finish(mut self) -> Run {
        let (done, wait) = mpsc::channel::<()>();
        let pid = self.pid.to_string();
        let left = self.deadline.saturating_duration_since(Instant::now());
        let watchdog = std::thread::spawn(move || {
            let late = wait.recv_timeout(left) == Err(mpsc::RecvTimeoutError::Timeout);
            if late {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
            late
        });
        let status = self.child.wait().expect("wait for the command");
        let _ = done.send(());
        let killed = watchdog.join().expect("watchdog");
        let run = self.into_run(status);
        assert!(
            !killed,
            "still running after {:?}, killed:\n{run}",
            run.timeout
        );
        run
    }

    fn into_run(mut self, status: ExitStatus) -> Run {
        let read = |f: &mut fs::File| {
            let mut v = Vec::new();
            f.rewind().expect("rewind output");
            f.read_to_end(&mut v).expect("read output");
            v
        };
        Run {
            stdout: read(&mut self.stdout),
            stderr: read(&mut self.stderr),
            status,
            timeout: self.timeout,
            described: self.described,
        }
    }
}

/// A finished command.
pub struct Run {
    described: Described,
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    timeout: Duration,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code; a death by signal is 128 + the signal, as a shell reports it.
    pub fn code(&self) -> i32 {
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    /// (exit code, stdout, stderr)
    pub fn parts(&self) -> (i32, String, String) {
        (self.code(), self.stdout(), self.stderr())
    }

    /// The last non-empty line of stdout, trimmed.
    pub fn last_line(&self) -> String {
        last_line(&self.stdout()).trim().to_string()
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.described)?;
        writeln!(f, "--- exit: {}", self.status)?;
        writeln!(f, "--- stdout:\n{}", self.stdout())?;
        write!(f, "--- stderr:\n{}", self.stderr())?;
        for dir in &self.described.shown {
            write!(f, "\n--- {}:\n{}", dir.display(), listing(dir))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Every path below `dir` (two levels deep at most), one a line, for failure messages.
fn listing(dir: &Path) -> String {
    fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            out.push(format!("(cannot read {})", dir.display()));
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let rel = p.strip_prefix(root).unwrap_or(&p).display().to_string();
            let is_dir = fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
            out.push(if is_dir { format!("{rel}/") } else { rel });
            if is_dir && depth < 2 {
                walk(root, &p, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, 1, &mut out);
    if out.is_empty() {
        "(empty)".into()
    } else {
        out.join("\n")
    }
}

/// Runs to the end, whatever the exit code.
#[track_caller]
pub fn run(c: &mut Cmd) -> Run {
    c.spawn().finish()
}

/// Runs and fails the test, showing the run, unless it exits 0.
#[track_caller]
pub fn run_ok(c: &mut Cmd) -> Run {
    let r = run(c);
    assert!(r.success(), "command failed:\n{r}");
    r
}

/// Runs and fails the test, showing the run, unless it exits non-zero.
#[track_caller]
pub fn run_fail(c: &mut Cmd) -> Run {
    let r = run(c);
    assert!(!r.success(), "command unexpectedly succeeded:\n{r}");
    r
}

/// `ocipatch ARGS` to the end: (exit code, stdout, stderr).
#[track_caller]
pub fn outcome(args: &[&str]) -> (i32, String, String) {
    run(ocipatch().args(args)).parts()
}

/// `ocipatch ARGS`, which must succeed; its stdout.
#[track_caller]
pub fn ok(args: &[&str]) -> String {
    run_ok(ocipatch().args(args)).stdout()
}

/// `ocipatch ARGS`, which must fail with exit 1 and a one-line error; its stderr.
#[track_caller]
pub fn fails(args: &[&str]) -> String {
    one_line_error(ocipatch().args(args), 1)
}

/// `ocipatch ARGS`, which must be a usage error: exit 2 and a one-line error; its stderr.
#[track_caller]
pub fn fails_usage(args: &[&str]) -> String {
    one_line_error(ocipatch().args(args), 2)
}

/// Runs `c`, which must exit `code` with one `ocipatch: error: ` line on stderr; that stderr.
#[track_caller]
pub fn one_line_error(c: &mut Cmd, code: i32) -> String {
    let r = run(c);
    assert_eq!(r.code(), code, "exit {code} expected:\n{r}");
    let err = r.stderr();
    assert!(err.starts_with("ocipatch: error: "), "{r}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line expected:\n{r}");
    err
}

/// `&str`s of owned arguments, for [`ok`], [`fails`] and [`outcome`].
pub fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The last line of `s` once trailing white space is gone (`""` when there is none).
pub fn last_line(s: &str) -> &str {
    s.trim_end().lines().last().unwrap_or("")
}

/// Polls until `cond` holds. The deadline only turns a hang into a failure; nothing passes or
/// fails by how fast it is.
#[track_caller]
pub fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_command_past_its_deadline_is_killed_and_reported() {
    let start = Instant::now();
    let failed = std::panic::catch_unwind(|| {
        run(cmd("sleep").arg("60").timeout(Duration::from_millis(300)));
    })
    .expect_err("the run must fail");
    let message = failed.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(start.elapsed() < Duration::from_secs(30), "not killed");
    assert!(
        message.contains("still running after 300ms, killed") && message.contains("$ sleep 60"),
        "{message}"
    );
}

#[test]
fn the_binary_runs_in_a_clean_environment() {
    let mut c = cmd("env");
    c.clean = true;
    let r = run_ok(c.env("EXTRA", "x y"));
    let mut names: Vec<String> = r
        .stdout()
        .lines()
        .map(|l| l.split('=').next().unwrap_or("").to_string())
        .collect();
    names.sort();
    let mut want = vec!["EXTRA", "HOME", "PATH"];
    if std::env::var_os("TMPDIR").is_some() {
        want.push("TMPDIR");
    }
    assert_eq!(names, want, "{r}");
    let home = r
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("HOME=").map(PathBuf::from));
    let home = home.expect("HOME is set");
    assert_ne!(
        Some(home.clone()),
        std::env::var_os("HOME").map(PathBuf::from)
    );
    assert!(!home.exists(), "the private HOME goes with the run");
    assert!(format!("{r}").contains("--- env: clean (PATH, TMPDIR, an empty HOME) + EXTRA='x y'"));
}
