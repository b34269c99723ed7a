//! Path lookup in the file tree of stacked layers, as the kernel does it inside a container:
//! every component is looked up in the merged tree (whiteouts and opaque directories already
//! applied by [`Tree`]), symbolic links are followed (an absolute target from the image root,
//! a relative one from the link's directory), `..` never climbs above the root, and at most
//! [`MAX_HOPS`] links are followed (Linux's limit is 40). Nothing here touches the host: a
//! link is only ever text in a header.
//!
//! Two differences from a kernel in a chroot, both on purpose: a target whose `..` would climb
//! above the root is reported ([`Lookup::Escapes`]) instead of being clamped, because no
//! honest image needs one and a lookup for a database or a library must never quietly land
//! somewhere else; and a directory that the layers never list but that holds listed entries
//! (a tar that omits parent entries) counts as a directory, as extraction creates it.

use super::{path, EntryInfo, EntryKind, Tree};

/// Most symbolic links followed in one lookup (the kernel's `MAXSYMLINKS`).
pub const MAX_HOPS: usize = 40;

/// A symbolic link a lookup followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The link's canonical path.
    pub path: String,
    /// Its target, as written.
    pub target: String,
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.path, self.target)
    }
}

/// Where a lookup ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The path names this entry (a regular file, directory, hard link, device; a symlink only
    /// when the last component was not to be followed).
    Found {
        /// The canonical path of what was found (`""`: the root directory).
        path: String,
        /// Its header; `None` for the root, or for a directory that only exists implicitly.
        entry: Option<&'a EntryInfo>,
        /// The symbolic links followed on the way, as `link -> target`, in order.
        links: Vec<Link>,
    },
    /// Nothing is at `path` (the first component that does not exist, with what came before
    /// it resolved).
    Missing {
        /// The canonical path that does not exist.
        path: String,
        /// The links followed on the way.
        links: Vec<Link>,
    },
    /// A component that must be a directory is something else.
    NotADirectory {
        /// The canonical path of that component.
        path: String,
        /// The links followed on the way.
        links: Vec<Link>,
    },
    /// More than [`MAX_HOPS`] links: a loop, or a chain no loader would follow.
    TooManyLinks {
        /// The link at which the lookup gave up.
        link: String,
    },
    /// A link whose target climbs above the image's root.
    Escapes {
        /// The link.
        link: String,
        /// Its target, as written.
        target: String,
    },
}

impl Lookup<'_> {
    /// The links followed, for every outcome that has them.
    pub fn links(&self) -> &[Link] {
        match self {
            Lookup::Found { links, .. }
            | Lookup::Missing { links, .. }
            | Lookup::NotADirectory { links, .. } => links,
            Lookup::TooManyLinks { .. } | Lookup::Escapes { .. } => &[],
        }
    }

    /// Why the lookup found nothing usable, for a finding; `None` when it found something.
    pub fn problem(&self, asked: &str) -> Option<String> {
        let via = |links: &[Link]| {
            if links.is_empty() {
                String::new()
            } else {
                let links: Vec<String> = links.iter().map(Link::to_string).collect();
                format!(" (via {})", links.join(", "))
            }
        };
        match self {
            Lookup::Found { .. } => None,
            Lookup::Missing { path, links } => Some(format!(
                "{asked} leads to {}, which does not exist{}",
                display(path),
                via(links)
            )),
            Lookup::NotADirectory { path, links } => Some(format!(
                "{asked} leads through {}, which is not a directory{}",
                display(path),
                via(links)
            )),
            Lookup::TooManyLinks { link } => Some(format!(
                "{asked}: more than {MAX_HOPS} symbolic links (a loop?) at {link}"
            )),
            Lookup::Escapes { link, target } => Some(format!(
                "{asked}: the link {link} -> {target} points above the image's root"
            )),
        }
    }
}

fn display(path: &str) -> &str {
    if path.is_empty() {
        "/"
    } else {
        path
    }
}

/// Looks up the canonical `path` in `tree`. With `follow_last`, a symlink at the last
/// component is followed too (what `open` does); without, it is returned (what `lstat` does).
pub fn resolve<'a>(tree: &'a Tree, path: &str, follow_last: bool) -> Lookup<'a> {
    // The components still to walk, last one first (so a link's target is pushed in front).
    let mut todo: Vec<String> = path
        .split('/')
        .rev()
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let mut current = String::new();
    let mut entry: Option<&EntryInfo> = None;
    let mut links = Vec::new();
    let mut hops = 0;
    while let Some(component) = todo.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                // Only link targets can hold `..` (paths from headers are canonical); the
                // caller below has already refused a target that climbs above the root.
                current = path::parent(&current).unwrap_or("").to_string();
                entry = tree.get(&current);
                continue;
            }
            _ => {}
        }
        let candidate = path::join(
            (!current.is_empty()).then_some(current.as_str()),
            &component,
        );
        let last = todo.is_empty();
        match tree.get(&candidate) {
            None if tree.below(&candidate).next().is_some() => {
                current = candidate;
                entry = None;
            }
            None => {
                return Lookup::Missing {
                    path: candidate,
                    links,
                }
            }
            Some(e) if e.kind == EntryKind::Symlink && (!last || follow_last) => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Lookup::TooManyLinks { link: candidate };
                }
                let target = e.link_target.clone().unwrap_or_default();
                let base = if target.starts_with('/') {
                    ""
                } else {
                    current.as_str()
                };
                if climbs_above_root(base, &target) {
                    return Lookup::Escapes {
                        link: candidate,
                        target,
                    };
                }
                links.push(Link {
                    path: candidate,
                    target: target.clone(),
                });
                if target.starts_with('/') {
                    current.clear();
                }
                entry = tree.get(&current);
                todo.extend(
                    target
                        .split('/')
                        .rev()
                        .filter(|c| !c.is_empty())
                        .map(str::to_string),
                );
            }
            Some(e) if !last && e.kind != EntryKind::Dir => {
                return Lookup::NotADirectory {
                    path: candidate,
                    links,
                }
            }
            Some(e) => {
                current = candidate;
                entry = Some(e);
            }
        }
    }
    Lookup::Found {
        path: current,
        entry,
        links,
    }
}

/// Whether `target`, read from the directory `base`, climbs above the root.
fn climbs_above_root(base: &str, target: &str) -> bool {
    let mut depth = if base.is_empty() {
        0
    } else {
        base.split('/').count()
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::tree::tests::{dir, entry, file};

    fn link(path: &str, target: &str) -> EntryInfo {
        EntryInfo {
            link_target: Some(target.into()),
            ..entry(path, EntryKind::Symlink)
        }
    }

    fn found(l: Lookup) -> (String, Vec<String>) {
        match l {
            Lookup::Found { path, links, .. } => {
                (path, links.iter().map(Link::to_string).collect())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn links_are_followed_inside_the_image() {
        let tree: Tree = [vec![
            dir("var"),
            dir("var/lib"),
            link("var/lib/dpkg", "/opt/db"),
            dir("opt"),
            dir("opt/db"),
            file("opt/db/status", 3),
            link("opt/db/current", "status"),
            link("usr/lib64", "lib"),
            dir("usr/lib"),
            link("usr/lib/libz.so.1", "../lib/x/libz.so.1.3"),
            file("usr/lib/x/libz.so.1.3", 9),
        ]]
        .into_iter()
        .collect();
        assert_eq!(
            found(resolve(&tree, "var/lib/dpkg/status", true)),
            (
                "opt/db/status".into(),
                vec!["var/lib/dpkg -> /opt/db".into()]
            )
        );
        // Relative from the link's directory, two links deep.
        assert_eq!(
            found(resolve(&tree, "var/lib/dpkg/current", true)).0,
            "opt/db/status"
        );
        assert_eq!(
            found(resolve(&tree, "usr/lib64/libz.so.1", true)).0,
            "usr/lib/x/libz.so.1.3"
        );
        // Without following the last component: the link itself.
        assert_eq!(
            found(resolve(&tree, "var/lib/dpkg", false)).0,
            "var/lib/dpkg"
        );
        // An implicit directory (no entry of its own, entries below it).
        assert_eq!(found(resolve(&tree, "usr/lib/x", true)).0, "usr/lib/x");
    }

    #[test]
    fn loops_escapes_and_dead_ends_are_named() {
        let tree: Tree = [vec![
            link("a", "b"),
            link("b", "a"),
            link("up", "../../etc/shadow"),
            link("etc/deep", "../../x"),
            file("f", 1),
            link("dangling", "/nowhere/status"),
        ]]
        .into_iter()
        .collect();
        assert!(matches!(
            resolve(&tree, "a/status", true),
            Lookup::TooManyLinks { .. }
        ));
        assert!(matches!(resolve(&tree, "up", true), Lookup::Escapes { .. }));
        assert!(matches!(
            resolve(&tree, "etc/deep", true),
            Lookup::Escapes { .. }
        ));
        assert!(matches!(
            resolve(&tree, "f/x", true),
            Lookup::NotADirectory { .. }
        ));
        let l = resolve(&tree, "dangling", true);
        assert_eq!(
            l,
            Lookup::Missing {
                path: "nowhere".into(),
                links: vec![Link {
                    path: "dangling".into(),
                    target: "/nowhere/status".into()
                }]
            }
        );
        assert!(l
            .problem("var/lib/dpkg/status")
            .unwrap()
            .contains("nowhere, which does not exist (via dangling -> /nowhere/status)"));
        // `..` inside the image is fine.
        let tree: Tree = [vec![
            dir("a"),
            dir("a/b"),
            link("a/b/up", "../c"),
            file("a/c", 1),
        ]]
        .into_iter()
        .collect();
        assert_eq!(found(resolve(&tree, "a/b/up", true)).0, "a/c");
    }

    #[test]
    fn whiteouts_in_upper_layers_hide_what_links_lead_to() {
        let tree: Tree = [
            vec![dir("opt"), file("opt/status", 1), link("s", "opt/status")],
            vec![entry("opt/status", EntryKind::Whiteout)],
        ]
        .into_iter()
        .collect();
        assert!(matches!(resolve(&tree, "s", true), Lookup::Missing { .. }));
        assert_eq!(tree.layer_of("s"), Some(0));
    }
}
