//! History splicing: the old base's history entries are replaced by the new base's.

use oci_spec::image::History;
use serde_json::Value;

use super::PlanError;

/// Number of leading entries of `image_history` that belong to the base, checked against the
/// old base's own history (same `created_by`/`comment`/`empty_layer`, the timestamps are not
/// compared: builders re-serialise them) and its layer count.
pub fn base_prefix_len(
    image_history: &[History],
    old_history: &[History],
    old_layers: usize,
) -> Result<usize, PlanError> {
    if image_history.is_empty() {
        return Ok(0);
    }
    if old_history.is_empty() {
        // The old base recorded no history: the base part is the shortest prefix that covers
        // its layers (regclient refuses these; a base built without history is still a base).
        let mut layers = 0;
        for (i, h) in image_history.iter().enumerate() {
            if layers == old_layers {
                return Ok(i);
            }
            if !h.empty_layer().unwrap_or(false) {
                layers += 1;
            }
        }
        return if layers == old_layers {
            Ok(image_history.len())
        } else {
            Err(PlanError::HistoryMismatch {
                index: image_history.len(),
                detail: format!(
                    "the image's history describes {layers} layers, fewer than the old base's {old_layers}"
                ),
            })
        };
    }
    if old_history.len() > image_history.len() {
        return Err(PlanError::HistoryMismatch {
            index: image_history.len(),
            detail: format!(
                "the old base has {} history entries, the image only {}",
                old_history.len(),
                image_history.len()
            ),
        });
    }
    for (i, (mine, base)) in image_history.iter().zip(old_history).enumerate() {
        if mine.created_by() != base.created_by()
            || mine.comment() != base.comment()
            || mine.empty_layer().unwrap_or(false) != base.empty_layer().unwrap_or(false)
        {
            return Err(PlanError::HistoryMismatch {
                index: i,
                detail: format!(
                    "image has {:?}, old base has {:?}",
                    mine.created_by().as_deref().unwrap_or(""),
                    base.created_by().as_deref().unwrap_or("")
                ),
            });
        }
    }
    let counted = non_empty(old_history);
    if counted != old_layers {
        return Err(PlanError::HistoryMismatch {
            index: old_history.len(),
            detail: format!(
                "the old base's history has {counted} non-empty entries for {old_layers} layers"
            ),
        });
    }
    Ok(old_history.len())
}

/// The number of entries that made a layer (those without `empty_layer: true`).
pub fn non_empty(history: &[History]) -> usize {
    history
        .iter()
        .filter(|h| !h.empty_layer().unwrap_or(false))
        .count()
}

/// The new history: the new base's entries (its raw JSON, so unknown fields survive), then the
/// image's own entries after the base prefix (raw JSON too). When the new base recorded no history
/// but the image did, one entry per new base layer keeps the non-empty count equal to the layer
/// count, as the image-spec requires.
pub fn splice(
    image_raw: &[Value],
    base_prefix: usize,
    new_raw: &[Value],
    new_layers: usize,
    new_base_name: &str,
) -> Vec<Value> {
    if image_raw.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<Value> = if new_raw.is_empty() {
        (0..new_layers)
            .map(|i| {
                serde_json::json!({
                    "created_by": format!("ocipatch rebase: layer {} of base {new_base_name}", i + 1)
                })
            })
            .collect()
    } else {
        new_raw.to_vec()
    };
    out.extend_from_slice(&image_raw[base_prefix.min(image_raw.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::HistoryBuilder;

    fn h(by: &str, empty: bool) -> History {
        let b = HistoryBuilder::default().created_by(by.to_string());
        if empty { b.empty_layer(true) } else { b }.build().unwrap()
    }

    #[test]
    fn prefix_matches_entries_and_counts_layers() {
        let base = vec![h("ADD rootfs", false), h("CMD sh", true)];
        let image = vec![
            h("ADD rootfs", false),
            h("CMD sh", true),
            h("COPY app", false),
        ];
        assert_eq!(base_prefix_len(&image, &base, 1).unwrap(), 2);
    }

    #[test]
    fn a_different_entry_names_its_index() {
        let base = vec![h("ADD rootfs", false), h("RUN apt", false)];
        let image = vec![
            h("ADD rootfs", false),
            h("RUN yum", false),
            h("COPY", false),
        ];
        match base_prefix_len(&image, &base, 2) {
            Err(PlanError::HistoryMismatch { index, .. }) => assert_eq!(index, 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inconsistent_layer_count_is_refused() {
        let base = vec![h("ADD rootfs", false)];
        let image = vec![h("ADD rootfs", false), h("COPY", false)];
        assert!(base_prefix_len(&image, &base, 2).is_err());
    }

    #[test]
    fn a_base_without_history_covers_its_layers() {
        let image = vec![
            h("a", false),
            h("ENV", true),
            h("b", false),
            h("app", false),
        ];
        assert_eq!(base_prefix_len(&image, &[], 2).unwrap(), 3);
        assert!(base_prefix_len(&image, &[], 5).is_err());
    }

    #[test]
    fn splice_replaces_the_base_part() {
        let v = |s: &str| serde_json::json!({ "created_by": s });
        let out = splice(&[v("old1"), v("app")], 1, &[v("new1"), v("new2")], 2, "b");
        assert_eq!(out, vec![v("new1"), v("new2"), v("app")]);
        let synthesized = splice(&[v("old1"), v("app")], 1, &[], 1, "oci:b");
        assert_eq!(
            synthesized[0]["created_by"],
            "ocipatch rebase: layer 1 of base oci:b"
        );
        assert!(splice(&[], 0, &[v("x")], 1, "b").is_empty());
    }
}
