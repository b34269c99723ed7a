//! Path lookup through links in stacked layers (layer::resolve): any set of layers (entries,
//! symlinks with any target, hard links, whiteouts, opaque markers) and any path give an answer
//! within the hop limit, never a panic; a found path is canonical and is in the tree (or an
//! implicit directory), and a lookup never climbs above the root.
//!
//! Input: lines `L KIND PATH [TARGET]` (L: layer number 0-3; KIND: f d s h w o), then a line
//! `? PATH` per lookup.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ocipatch::layer::{path, resolve, EntryInfo, EntryKind, Lookup, Tree, MAX_HOPS};

fn entry(path: String, kind: EntryKind, target: Option<String>) -> EntryInfo {
    EntryInfo {
        path,
        kind,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: 0,
        mtime: 0,
        link_target: target,
        content: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut layers: Vec<Vec<EntryInfo>> = vec![Vec::new(); 4];
    let mut lookups = Vec::new();
    for line in text.lines().take(512) {
        let mut parts = line.splitn(3, ' ');
        let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
            continue;
        };
        if a == "?" {
            lookups.push(b.to_string());
            continue;
        }
        let Ok(layer) = a.parse::<usize>() else {
            continue;
        };
        let kind_s = b;
        let rest = parts.next().unwrap_or_default();
        let (p, target) = match rest.split_once(' ') {
            Some((p, t)) => (p.to_string(), Some(t.to_string())),
            None => (rest.to_string(), None),
        };
        let Ok(Some(p)) = path::normalize(&p) else {
            continue;
        };
        let kind = match kind_s {
            "f" => EntryKind::File,
            "d" => EntryKind::Dir,
            "s" => EntryKind::Symlink,
            "h" => EntryKind::HardLink,
            "w" => EntryKind::Whiteout,
            "o" => EntryKind::OpaqueDir,
            _ => continue,
        };
        if let Some(l) = layers.get_mut(layer) {
            l.push(entry(p, kind, target));
        }
    }
    let tree: Tree = layers.into_iter().collect();
    for asked in lookups {
        let Ok(Some(asked)) = path::normalize(&asked) else {
            continue;
        };
        for follow in [true, false] {
            match resolve(&tree, &asked, follow) {
                Lookup::Found { path, entry, links } => {
                    assert!(links.len() <= MAX_HOPS);
                    if !path.is_empty() {
                        assert_eq!(path::normalize(&path).ok().flatten().as_deref(), Some(path.as_str()));
                        assert!(entry.is_some() || tree.below(&path).next().is_some(), "{path}");
                    }
                }
                Lookup::Missing { links, .. } | Lookup::NotADirectory { links, .. } => {
                    assert!(links.len() <= MAX_HOPS)
                }
                Lookup::TooManyLinks { .. } | Lookup::Escapes { .. } => {}
            }
        }
    }
});
