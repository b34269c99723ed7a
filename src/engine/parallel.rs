//! Across blobs: all cores busy, biggest blobs first.
//!
//! Rayon's `par_iter` splits a list in halves, so one core can end up with the two biggest
//! blobs. Here each worker takes the next job from a list sorted by size, largest first
//! (longest-processing-time-first scheduling): the small jobs fill the gaps at the end and the
//! cores finish together.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{digest_file, BlobDigests, Compression, EngineError};

/// Digest many files in parallel, biggest first; results come back in the order of `jobs`.
pub fn digest_files_parallel(
    jobs: &[(PathBuf, Option<Compression>)],
) -> Vec<Result<BlobDigests, EngineError>> {
    // A file whose size cannot be read sorts last; opening it reports the error.
    map_biggest_first(
        jobs,
        |(path, _)| std::fs::metadata(path).map_or(0, |m| m.len()),
        |(path, diff_id)| digest_file(path, *diff_id),
    )
}

/// Run `work` on every item on the rayon pool, biggest `size` first, and return the results in
/// the items' order. For any per-blob job (copies included) whose size is known up front.
pub fn map_biggest_first<T, R, S, W>(items: &[T], size: S, work: W) -> Vec<R>
where
    T: Sync,
    R: Send,
    S: Fn(&T) -> u64,
    W: Fn(&T) -> R + Sync,
{
    let mut order: Vec<(u64, usize)> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (size(item), i))
        .collect();
    order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let workers = rayon::current_num_threads().min(items.len());
    rayon::scope(|s| {
        for _ in 0..workers {
            s.spawn(|_| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(_, i)) = order.get(k) else { break };
                let r = work(&items[i]);
                results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}
