//! What every subcommand shares: exit codes for usage errors, one-line errors that say each
//! cause once, and human output with hostile text escaped.

use std::fs;

use crate::util::*;

#[test]
fn a_bad_output_reference_is_a_usage_error() {
    let s = scenario();
    let err = fails_usage(&[
        "rebase",
        &s.oci("app"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        "oic:out:x",
    ]);
    assert!(
        err.contains("oic:out:x") && err.contains("unknown transport"),
        "{err}"
    );
}

#[test]
fn an_empty_images_from_list_is_a_usage_error() {
    let s = scenario();
    let list = s.path("images.txt");
    let rebase_list = |contents: &str| {
        fs::write(&list, contents).unwrap();
        fails_usage(&[
            "rebase",
            "--images-from",
            list.to_str().unwrap(),
            "--onto",
            &s.oci("base-v2"),
            "--from",
            &s.oci("base-v1"),
            "-o",
            "oci:out:{tag}",
        ])
    };
    let err = rebase_list("# nothing here\n\n");
    assert!(
        err.contains("images.txt") && err.contains("no image"),
        "{err}"
    );
    // A bad reference in the list is a usage error too, naming the line.
    let err = rebase_list(&format!("{}\noic:typo\n", s.oci("app")));
    assert!(
        err.contains("images.txt:2") && err.contains("oic:typo"),
        "{err}"
    );
}

#[test]
fn an_error_says_its_cause_once() {
    let s = scenario();
    let missing = s.path("patchh");
    let err = fails(&[
        "append",
        &s.oci("app"),
        "--layer",
        missing.to_str().unwrap(),
        "-o",
        &s.oci("out"),
    ]);
    assert_eq!(err.matches("no such file or directory").count(), 1, "{err}");
    assert!(err.contains("patchh"), "{err}");
}

#[test]
fn escape_sequences_from_an_image_do_not_reach_the_terminal() {
    let s = scenario();
    let img = Image::on(
        &s.base_v1,
        vec![Layer::files(&[("app/x", b"x")])],
        &["RUN \u{1b}]0;owned\u{7}\u{1b}[2Jecho hi\u{202e}"],
    );
    s.layout.add("hostile", &img);
    let out = ok(&["inspect", &s.oci("hostile")]);
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(!out.contains('\u{202e}'), "{out:?}");
    assert!(
        out.contains("RUN \\u{1b}]0;owned\\u{7}\\u{1b}[2Jecho hi"),
        "{out}"
    );
    // JSON output keeps the text, escaped by JSON itself.
    let json = ok(&["inspect", &s.oci("hostile"), "--json"]);
    assert!(
        !json.contains('\u{1b}') && json.contains("\\u001b]0;owned"),
        "{json}"
    );

    // Error messages that quote hostile input: ours, and clap's.
    let dir = s.path("x\u{1b}[31m");
    let err = fails(&["inspect", &format!("oci:{}:app", dir.display())]);
    assert!(
        !err.contains('\u{1b}') && err.contains("x\\u{1b}[31m"),
        "{err:?}"
    );
    let (code, _, err) = outcome(&["inspect", &format!("{}\u{1b}[31m", s.oci("app"))]);
    assert_eq!(code, 2, "{err}");
    assert!(
        !err.contains('\u{1b}') && err.contains("\\u{1b}[31m"),
        "{err:?}"
    );
}

// The first hour of a new user (issue 13): messages that say what to do, and the
// command-line extras (completions, man page).

#[test]
fn a_reference_without_transport_suggests_one() {
    let s = scenario();
    let dir = s.layout.dir.display().to_string();
    // clap rejects it as a usage error (exit 2), with our reason.
    let (code, _, err) = outcome(&["verify", &format!("{dir}:app")]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("did you mean oci:{dir}:app?")),
        "{err}"
    );
}

#[test]
fn check_says_it_contacts_the_base_name_registry_and_hints_base() {
    let s = scenario();
    // The base.name annotation names a registry nobody listens on (loopback port 1).
    ok(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "--base-name",
        "docker://127.0.0.1:1/lib/base:2",
        "-o",
        &s.oci("rebased"),
        "-q",
    ]);
    let (code, out, err) = outcome(&["check", &s.oci("rebased"), "--timeout", "5"]);
    assert_eq!(code, 1, "{out}\n{err}");
    let mut lines = err.lines();
    let note = lines.next().unwrap();
    assert!(
        note.starts_with(
            "ocipatch: note: no --base given: comparing with docker://127.0.0.1:1/lib/base:2"
        ) && note.contains("contacts that registry"),
        "{err}"
    );
    let error = lines.next().unwrap();
    assert!(error.starts_with("ocipatch: error: "), "{err}");
    assert!(error.contains("pass --base REF"), "{err}");

    // With --base there is no note, and the local base answers.
    let (code, out, err) = outcome(&["check", &s.oci("rebased"), "--base", &s.oci("base-v2")]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!err.contains("note:"), "{err}");
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    let bash = ok(&["completions", "bash"]);
    assert!(bash.contains("_ocipatch()"), "{bash}");
    assert!(bash.contains("--base-name"), "{bash}");
    // The script loads into a real bash and registers the completion.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("ocipatch.bash");
    std::fs::write(&file, &bash).unwrap();
    let out = run_ok(
        cmd("bash")
            .arg("-c")
            .arg(format!("source {} && complete -p ocipatch", file.display())),
    );
    assert!(out.stdout().contains("_ocipatch"), "{out}");

    let zsh = ok(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef ocipatch"), "{zsh}");
    let fish = ok(&["completions", "fish"]);
    assert!(fish.contains("complete -c ocipatch"), "{fish}");
    assert!(fish.contains("-l onto"), "{fish}");

    let (code, _, err) = outcome(&["completions", "tcsh"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_man_page_renders_with_man() {
    let page = ok(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH ocipatch 1"),
        "{page}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("ocipatch.1");
    std::fs::write(&file, &page).unwrap();
    // `man -l` is man-db's (scripts/test.sh installs it); a missing man fails this test.
    let out = run_ok(
        cmd("man")
            .arg("-l")
            .arg(&file)
            .env("MANWIDTH", "200")
            .env("MANPAGER", "cat")
            .env("PAGER", "cat"),
    );
    let (text, warnings) = (out.stdout(), out.stderr());
    assert!(warnings.trim().is_empty(), "groff warnings: {warnings}");
    // groff justifies lines: compare with single spaces.
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    for want in [
        "NAME",
        "ocipatch - Daemonless OCI image patcher",
        "OCIPATCH REBASE",
        "--base-name",
        "OCIPATCH CHECK",
        "OCIPATCH COMPLETIONS",
        // issue 19: value names in each synopsis, and the exit codes scripts depend on
        "--onto NEW_BASE",
        "-o|--output DEST",
        "--layer PATH",
        "--shard I/N",
        "EXIT STATUS",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

fn rebase_stderr(s: &Scenario, onto: &str, extra: &[&str]) -> (String, String) {
    let (app, from, dest) = (
        s.oci("app"),
        s.oci("base-v1"),
        s.oci(&format!("out-{onto}")),
    );
    let mut args = vec!["rebase", &app, "--from", &from, "-o", &dest];
    let onto = s.oci(onto);
    args.extend(["--onto", &onto]);
    args.extend(extra);
    let (code, out, err) = outcome(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    (out, err)
}

#[test]
fn a_rebase_onto_an_application_image_warns() {
    let s = scenario();
    // --onto names the application itself: its layers would be in the result twice.
    let (_, err) = rebase_stderr(&s, "app", &[]);
    let warning = err
        .lines()
        .find(|l| l.starts_with("ocipatch: warning: "))
        .unwrap_or_else(|| panic!("no warning in:\n{err}"));
    assert!(
        warning.contains("already contains 2 of the application's 2 layer(s)")
            && warning.contains("Is --onto an application image"),
        "{err}"
    );
    // --json carries it too; --quiet silences stderr, not the report.
    let (out, err) = rebase_stderr(&s, "app", &["--json", "-q"]);
    assert!(!err.contains("warning"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["warnings"].as_array().unwrap().len(), 1, "{out}");
}

#[test]
fn a_rebase_onto_an_unrelated_base_warns_and_a_right_one_does_not() {
    let s = scenario();
    let (_, err) = rebase_stderr(&s, "base-v2-fresh", &[]);
    assert!(
        err.contains("ocipatch: warning: linux/amd64: the new base")
            && err.contains("shares no layer with the old base"),
        "{err}"
    );
    let (out, err) = rebase_stderr(&s, "base-v2", &["--json"]);
    assert!(!err.contains("warning"), "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(report.get("warnings").is_none(), "{out}");
}

#[test]
fn a_docker_archive_rebase_names_the_digest_tools_agree_on() {
    let s = scenario();
    let dest = format!(
        "docker-archive:{}:example/app:2",
        s.path("app.tar").display()
    );
    let (app, from, onto) = (s.oci("app"), s.oci("base-v1"), s.oci("base-v2"));
    let (code, out, err) = outcome(&[
        "rebase", &app, "--from", &from, "--onto", &onto, "-o", &dest,
    ]);
    assert_eq!(code, 0, "{err}");
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", &dest, "--json"])).unwrap();
    let config = inspect["platforms"][0]["config"].as_str().unwrap();
    assert!(
        err.contains(&format!(
            "image ID (config digest) {config}: what docker load"
        )),
        "{err}"
    );
    assert!(
        last_line(&out).starts_with("sha256:"),
        "stdout still ends with the digest: {out}"
    );
}

/// Text from a hostile layout (its tags) and from a registry (an error body) reaches the
/// terminal escaped, through `check` as through every command (all lines go through
/// cli::text; clippy's disallowed-macros keeps it that way).
#[test]
fn check_escapes_a_hostile_tag_list_and_a_registry_error_body() {
    let s = scenario();
    // A tag with an escape sequence: `check` of a tag the layout lacks lists the tags it has.
    let index = s.layout.index();
    let mut hostile = index.clone();
    let entry = hostile["manifests"][0].clone();
    let mut evil = entry.clone();
    evil["annotations"]["org.opencontainers.image.ref.name"] = "v1\u{1b}]0;pwned\u{7}".into();
    hostile["manifests"].as_array_mut().unwrap().push(evil);
    std::fs::write(
        s.layout.dir.join("index.json"),
        serde_json::to_vec(&hostile).unwrap(),
    )
    .unwrap();
    let (code, out, err) = outcome(&["check", &s.oci("nope"), "--base", &s.oci("base-v2")]);
    assert_eq!(code, 1, "{err}");
    let all = format!("{out}{err}");
    assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "{all:?}");
    assert!(
        all.contains("v1\\u{1b}]0;pwned\\u{7}"),
        "the tag is named, escaped: {all}"
    );

    // A registry whose error body holds escape sequences.
    let server = crate::util::fake::FakeServer::start(|req| {
        if req.path == "/v2/" {
            return Some(crate::util::fake::Reply::new(200, "{}"));
        }
        let body = serde_json::json!({"errors": [{"code": "DENIED", "message": "go away \u{1b}[2J\u{1b}]0;owned\u{7}"}]});
        Some(crate::util::fake::Reply::new(403, body.to_string()))
    });
    let base = format!("docker://127.0.0.1:{}/lib/base:v2", server.port);
    let app = s.oci("app");
    for json in [false, true] {
        let mut args = vec!["check", &app, "--base", &base, "--tls-verify=false"];
        if json {
            args.push("--json");
        }
        let (code, out, err) = outcome(&args);
        assert_eq!(code, 1, "{err}");
        let all = format!("{out}{err}");
        assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "{all:?}");
        assert!(all.contains("go away"), "{all}");
    }
}

// The first hour, round two (issue 19): an error about a path of the command line names the
// flag or argument, the path as given and what is wrong in words, never a temporary name.

/// `rebase` of the scenario's app to `dest`, which must fail with exit 1; its one error line.
#[track_caller]
fn rebase_to(s: &Scenario, dest: &str) -> String {
    fails(&[
        "rebase",
        &s.oci("app"),
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        dest,
    ])
}

#[track_caller]
fn assert_words(err: &str, words: &[&str]) {
    for w in words {
        assert!(err.contains(w), "{w:?} missing from: {err}");
    }
    assert!(!err.contains("ocipatch-tmp"), "a temp name in: {err}");
    assert!(!err.contains("os error"), "a raw OS error in: {err}");
}

#[test]
fn a_destination_the_file_system_refuses_names_o_and_says_why() {
    let s = scenario();
    // /proc exists but takes no new entries: never "/proc does not exist".
    let err = rebase_to(&s, "oci:/proc/x:app");
    assert_words(&err, &["-o /proc/x: ", "cannot create here"]);
    assert!(!err.contains("does not exist"), "{err}");
    let err = rebase_to(&s, "oci-archive:/proc/x.tar:app");
    assert_words(&err, &["-o /proc/x.tar: ", "cannot create here"]);
    assert!(!err.contains("does not exist"), "{err}");
    let err = rebase_to(&s, "docker-archive:/proc/x.tar:app:1");
    assert_words(&err, &["-o /proc/x.tar: ", "cannot create here"]);
}

#[test]
fn a_fleet_entry_whose_destination_is_refused_names_o_too() {
    let s = scenario();
    let (code, out, _) = outcome(&[
        "rebase",
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        "oci-archive:/proc/{index}.tar:app",
        &s.oci("app"),
        &s.oci("app"),
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    for e in r["images"].as_array().unwrap() {
        let err = e["error"].as_str().unwrap();
        assert_words(err, &["-o /proc/", ".tar: cannot create here"]);
        assert_eq!(e["error_kind"], "io", "{e}");
    }
}

#[test]
fn a_destination_under_a_file_says_the_file_is_not_a_directory() {
    let s = scenario();
    let file = s.path("notes.txt");
    fs::write(&file, "x").unwrap();
    let f = file.display();
    let err = rebase_to(&s, &format!("oci:{f}/x:app"));
    assert_words(
        &err,
        &[&format!("-o {f}/x: {f} is a file, not a directory")],
    );
    let err = rebase_to(&s, &format!("oci-archive:{f}/x.tar:app"));
    assert_words(
        &err,
        &[&format!("-o {f}/x.tar: {f} is a file, not a directory")],
    );
}

#[test]
fn a_read_only_destination_says_read_only_or_permission_denied() {
    let s = scenario();
    let ro = s.path("ro");
    fs::create_dir(&ro).unwrap();
    let r = ro.display().to_string();
    // As root permissions do not apply: a read-only bind mount is what refuses the write.
    let mounted = is_root()
        && run(cmd("mount").args(["--bind", &r, &r])).success()
        && run(cmd("mount").args(["-o", "remount,ro,bind", &r])).success();
    if !mounted {
        assert!(
            !is_root(),
            "as root the read-only bind mount of {r} must work"
        );
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    }
    let layout = rebase_to(&s, &format!("oci:{r}/x:app"));
    let archive = rebase_to(&s, &format!("oci-archive:{r}/x.tar:app"));
    if mounted {
        run(cmd("umount").arg(&r));
    }
    let why = if mounted {
        "cannot create here: read-only file system"
    } else {
        "permission denied"
    };
    assert_words(&layout, &[&format!("-o {r}/x: {why}")]);
    assert_words(&archive, &[&format!("-o {r}/x.tar: {why}")]);
}

#[test]
fn a_missing_input_file_names_its_flag() {
    let s = scenario();
    let missing = s.path("nonexistent");
    let m = missing.display().to_string();
    let err = fails(&["append", &s.oci("app"), "--layer", &m, "-o", &s.oci("out")]);
    assert_words(&err, &[&format!("--layer {m}: no such file or directory")]);
    let err = fails(&[
        "rebase",
        "--from",
        &s.oci("base-v1"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &s.oci("fleet-{index}"),
        "--images-from",
        &m,
    ]);
    assert_words(
        &err,
        &[&format!("--images-from {m}: no such file or directory")],
    );
    let err = fails(&["check", "--images-from", &m]);
    assert_words(
        &err,
        &[&format!("--images-from {m}: no such file or directory")],
    );
    let err = fails(&["verify", "--authfile", &m, &s.oci("app")]);
    assert_words(
        &err,
        &[&format!("--authfile {m}: no such file or directory")],
    );
    let file = s.path("cache-file");
    fs::write(&file, "x").unwrap();
    let f = file.display();
    let err = fails(&[
        "rebase",
        &s.oci("app"),
        "--onto",
        &s.oci("base-v2"),
        "-o",
        &s.oci("out"),
        "--cache-dir",
        &f.to_string(),
    ]);
    assert_words(
        &err,
        &[&format!("--cache-dir {f}: {f} is a file, not a directory")],
    );
}

#[test]
fn usage_errors_have_the_same_prefix_and_the_transport_hint_first() {
    let s = scenario();
    let dir = s.layout.dir.display().to_string();
    let (code, _, err) = outcome(&["verify", &format!("{dir}:app")]);
    assert_eq!(code, 2, "{err}");
    let first = err.lines().next().unwrap_or_default();
    let hint = format!("did you mean oci:{dir}:app?");
    assert!(
        first.starts_with(&format!(
            "ocipatch: error: invalid value for '<IMAGE>': {hint}"
        )),
        "{first}"
    );
    assert!(
        first.len() <= hint.len() + 110,
        "{} chars: {first}",
        first.len()
    );
    let (code, _, err) = outcome(&["verify", "--no-such-flag", &s.oci("app")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.starts_with("ocipatch: error: "), "{err}");
    assert!(!err.lines().any(|l| l.starts_with("error:")), "{err}");
}

/// The README's synopsis (the code block after `<!-- synopsis`) names every flag each command's
/// `--help` lists, and no flag `--help` does not: the next flag added without its line fails
/// here, naming the flag and the command (issue 19).
#[test]
fn the_readme_synopsis_matches_every_commands_help() {
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme
        .find("<!-- synopsis")
        .expect("README.md has no <!-- synopsis --> marker before its Commands block");
    let block = &readme[start..];
    let block = &block[block.find("```\n").unwrap() + 4..];
    let block = &block[..block.find("```").unwrap()];
    // Flags written in a piece of text: `--long` and `-s`.
    fn flags(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for word in text.split(|c: char| c.is_whitespace() || "[]|()=,.".contains(c)) {
            let ok =
                |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '-');
            if let Some(long) = word.strip_prefix("--").filter(|w| ok(w)) {
                out.push(format!("--{long}"));
            } else if let Some(short) = word.strip_prefix('-').filter(|w| w.len() == 1 && ok(w)) {
                out.push(format!("-{short}"));
            }
        }
        out
    }
    let mut synopsis: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut common = Vec::new();
    let mut current: Option<String> = None;
    for line in block.lines() {
        if let Some(rest) = line.strip_prefix("ocipatch ") {
            let cmd = rest.split_whitespace().next().unwrap().to_string();
            synopsis.entry(cmd.clone()).or_default().extend(flags(rest));
            current = Some(cmd);
        } else if line.starts_with('#') {
            common.extend(flags(line));
            current = None;
        } else if let Some(cmd) = &current {
            synopsis.get_mut(cmd).unwrap().extend(flags(line));
        }
    }
    let mut problems = Vec::new();
    for cmd in ["rebase", "append", "verify", "inspect", "check"] {
        let written = synopsis.get(cmd).cloned().unwrap_or_default();
        let help = ok(&[cmd, "--help"]);
        // Option lines of --help: `  -o, --output <DEST>`, `      --json`.
        let mut known = Vec::new();
        for line in help
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
        {
            let head = line.split("  ").next().unwrap_or(line);
            let names: Vec<String> = flags(head.split('<').next().unwrap_or(head));
            if names.iter().any(|n| n == "--help" || n == "-h") {
                continue;
            }
            let covered = names
                .iter()
                .any(|n| written.contains(n) || common.contains(n));
            if !covered {
                problems.push(format!(
                    "README.md synopsis of `ocipatch {cmd}` lacks {} (listed by `ocipatch {cmd} --help`)",
                    names.join("/")
                ));
            }
            known.extend(names);
        }
        for f in written.iter().filter(|f| !known.contains(f)) {
            problems.push(format!(
                "README.md synopsis of `ocipatch {cmd}` names {f}, which `ocipatch {cmd} --help` does not list"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
