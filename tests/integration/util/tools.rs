//! The programs the tests drive: required (a missing one FAILS the test, never skips it), and
//! an unpacked image's command run in a chroot.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{cmd, run, Run};

pub fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| {
            fs::metadata(p)
                .map(|m| m.is_file() && m.mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Fails the test with an actionable message unless every tool is on PATH and the test runs
/// as root (umoci unpack/repack without --rootless, files owned by uid 1000, chroot, mount).
#[track_caller]
pub fn require_tools(tools: &[&str]) {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| find_in_path(t).is_none())
        .collect();
    let mut packages: Vec<&str> = missing.iter().map(|t| package_of(t)).collect();
    packages.dedup();
    assert!(
        missing.is_empty(),
        "this test needs these tools on PATH, missing: {}.\n\
         Install them (Debian/Ubuntu, as root: apt-get install -y {}) or run scripts/test.sh, \
         which installs them when run as root.",
        missing.join(", "),
        packages.join(" ")
    );
    assert!(
        is_root(),
        "this test unpacks images with umoci (or mounts, or chroots) and must run as root"
    );
}

/// The Debian package of `tool` (the table of scripts/test.sh, for the tools whose package
/// has another name).
fn package_of(tool: &str) -> &str {
    match tool {
        "htpasswd" => "apache2-utils",
        "dpkg-query" => "dpkg",
        "rpmbuild" => "rpm",
        "setcap" | "getcap" => "libcap2-bin",
        "chroot" | "basenc" => "coreutils",
        "unshare" | "mountpoint" | "mount" => "util-linux",
        "readelf" => "binutils",
        "ldconfig" => "libc-bin",
        "sh" => "dash",
        other => other,
    }
}

/// Effective uid is 0 (read from /proc/self/status: `Uid: real effective saved fs`).
pub fn is_root() -> bool {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// Runs `argv` in a chroot of `rootfs` as the image's entrypoint would run: in a private mount
/// namespace (`unshare --mount`, so nothing stays mounted when it ends) with /proc and a small
/// private /dev (null, zero, full, random, urandom, tty), `PATH` of a Debian image, a clean
/// environment. Returns the run whatever its exit code.
pub fn chroot_run(rootfs: &Path, argv: &[&str]) -> Run {
    let r = rootfs.display().to_string();
    let script = r#"set -e
r=$1; shift
mount -t proc proc "$r/proc"
mount -t tmpfs -o mode=0755,size=4m ocipatch-dev "$r/dev"
mknod -m 666 "$r/dev/null" c 1 3
mknod -m 666 "$r/dev/zero" c 1 5
mknod -m 666 "$r/dev/full" c 1 7
mknod -m 666 "$r/dev/random" c 1 8
mknod -m 666 "$r/dev/urandom" c 1 9
mknod -m 666 "$r/dev/tty" c 5 0
exec chroot "$r" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C "$@""#;
    for dir in ["proc", "dev"] {
        fs::create_dir_all(rootfs.join(dir)).expect("mount point");
    }
    run(cmd("unshare")
        .args([
            "--mount",
            "--fork",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            &r,
        ])
        .args(argv))
}

/// The python of the venv scripts/test.sh makes for PyPI clients (`$OCIPATCH_VENV`, default
/// `/var/cache/ocipatch-test/venv`). A venv that is not there fails the test: run
/// scripts/test.sh's "python tools (venv)" section.
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("OCIPATCH_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/ocipatch-test/venv"));
    let python = venv.join("bin").join("python");
    assert!(
        python.is_file(),
        "{} is missing: run scripts/test.sh (section \"python tools (venv)\") to create the venv",
        python.display()
    );
    python
}
