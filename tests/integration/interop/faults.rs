//! Faults only root can stage: a destination on a full file system (a tiny tmpfs).
//! The error must name the destination (not the source image), say its cause once, exit 1,
//! and leave no half-written image.

use std::path::Path;

use crate::util::*;

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        require_tools(&["mount", "umount"]);
        run_ok(
            cmd("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir),
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Not `run`: a panic here, while a failing test unwinds, would abort the whole binary.
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Bytes that do not compress: a layer that cannot fit in a 1 MiB file system.
fn noise(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut x: u64 = 0x9e3779b97f4a7c15;
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out
}

#[test]
fn a_full_destination_is_named_and_left_clean() {
    let s = scenario();
    let big = noise(3 << 20);
    let app = Image::on(
        &s.base_v1,
        vec![Layer::files(&[("app/blob.bin", &big)])],
        &["COPY blob.bin /app/"],
    );
    s.layout.add("big", &app);
    let full = s.path("full");
    let _fs = Tmpfs::mount(&full, "1m");
    for dest in [
        format!("oci:{}/out:x", full.display()),
        format!("oci-archive:{}/out.tar:x", full.display()),
    ] {
        let (code, out, err) = run(ocipatch()
            .args([
                "rebase",
                &s.oci("big"),
                "--from",
                &s.oci("base-v1"),
                "--onto",
                &s.oci("base-v2"),
                "-o",
                &dest,
            ])
            .show_dir(&full))
        .parts();
        assert_eq!(code, 1, "{dest}: {out}{err}");
        assert!(
            err.starts_with(&format!("ocipatch: error: {dest}: writing blob")),
            "{err}"
        );
        assert_eq!(err.matches("No space left on device").count(), 1, "{err}");
        let left: Vec<_> = std::fs::read_dir(&full)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{dest}: left behind {left:?}");
    }
}
