//! The rules every fleet operation (rebase, check) shares: which images a shard takes, how
//! many run at once, and what a run reports per image and in total.
//!
//! Registry work is network-bound: a fleet that touches a registry runs its images on a pool
//! of `jobs` threads of its own (default 32, enough to fill a 20–50 ms round trip on a small machine), so the
//! number of requests in flight is sized to the network, not to the cores. A fleet of local
//! images only (layouts, archives) is CPU-bound (hashing, decompression) and stays on the
//! shared CPU pool.

use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::load::Loaded;
use crate::error::{Result, UsageError};
use crate::model::{Reference, Shard};

/// An image graph a run reads once and its images share (a base), behind a lock of its own:
/// the first image to need it reads it while the others wait; a failed read is not kept.
pub(crate) type SharedLoad = Arc<Mutex<Option<Arc<Loaded>>>>;

/// Images in flight at once when a registry is involved (`--jobs`).
pub const DEFAULT_JOBS: usize = 32;

/// Keeps the items of `shard` (all of them without one), in their order.
pub fn select<T>(
    items: Vec<T>,
    shard: Option<Shard>,
    reference: impl Fn(&T) -> &Reference,
) -> Vec<T> {
    match shard {
        None => items,
        Some(s) => items
            .into_iter()
            .filter(|i| s.holds(reference(i)))
            .collect(),
    }
}

/// Runs `work` on every item and returns the results in the items' order: on a pool of `jobs`
/// threads when `network` (registry work), else on the shared CPU pool. One item's failure is
/// its own result; it never stops the others.
pub fn run<T, R, W>(items: &[T], network: bool, jobs: usize, work: W) -> Vec<R>
where
    T: Sync,
    R: Send,
    W: Fn(&T) -> R + Sync + Send,
{
    use rayon::prelude::*;
    let all = || items.par_iter().map(&work).collect();
    if !network {
        return all();
    }
    // With one thread per image in flight, nested parallel work (an image's blob copies and
    // mounts) runs on the same bounded pool instead of queueing behind the cores.
    match rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1).min(items.len().max(1)))
        .thread_name(|i| format!("ocipatch-fleet-{i}"))
        .build()
    {
        Ok(pool) => pool.install(all),
        // No threads to be had: the CPU pool still does the work, only less of it at once.
        Err(_) => all(),
    }
}

/// Request counts of a fleet run (registries only; 0 elsewhere).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Requests {
    /// Every request of the run.
    pub total: u64,
    /// Requests for the shared bases (read once per run).
    pub bases: u64,
    /// `total` divided by the number of images, bases included.
    pub per_image: f64,
}

impl Requests {
    /// Counts for a run of `images` images; `per_image` is rounded to two decimals (0 for no image).
    pub fn new(total: u64, bases: u64, images: usize) -> Requests {
        Requests {
            total,
            bases,
            per_image: if images == 0 {
                0.0
            } else {
                (total as f64 / images as f64 * 100.0).round() / 100.0
            },
        }
    }
}

/// One image of a fleet and where its result goes.
#[derive(Clone, Debug)]
pub struct Job {
    /// The image.
    pub image: Reference,
    /// Its destination (the `-o` pattern, expanded for this image).
    pub dest: Reference,
}

/// The jobs of a rebase fleet: each image with its destination (`pattern` expanded; `{index}`
/// is the position in the whole list, so a shard writes where one run would), the shard's share
/// kept, and the destinations checked once ([`check_destinations`]).
pub fn jobs(images: &[Reference], pattern: &str, shard: Option<Shard>) -> Result<Vec<Job>> {
    let all = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let dest = Reference::expand(pattern, image, i + 1)
                .map_err(|source| UsageError::Pattern { source })?;
            Ok(Job {
                image: image.clone(),
                dest,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let jobs = select(all, shard, |j| &j.image);
    check_destinations(&jobs)?;
    Ok(jobs)
}

/// What became of one image of a fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Written (or, with --dry-run, planned).
    Rebased,
    /// The destination already held exactly the planned image; nothing written.
    Unchanged,
    /// It failed (the others went on).
    Failed,
}

/// One image of a rebase fleet's report.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    /// The image, as given.
    pub image: String,
    /// Its destination.
    pub destination: String,
    /// What became of it.
    pub status: Status,
    /// Registry requests this image sent.
    pub requests: u64,
    /// Its report, when it did not fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<super::RebaseReport>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The failure's [`crate::Error::kind`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<&'static str>,
}

/// A rebase fleet's report: counts, then one entry per job, in the jobs' order.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Images written (or planned).
    pub rebased: usize,
    /// Images whose destination already held the result.
    pub unchanged: usize,
    /// Images that failed.
    pub failed: usize,
    /// The shard this run took, `I/N`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// The run's registry request counts.
    pub requests: Requests,
    /// One entry per job.
    pub images: Vec<Entry>,
}

impl Report {
    /// The report of a run: one entry per job and its result.
    pub(crate) fn new(
        jobs: &[Job],
        results: Vec<(Result<super::RebaseReport>, u64)>,
        shard: Option<Shard>,
        requests: Requests,
    ) -> Report {
        let images: Vec<Entry> = jobs
            .iter()
            .zip(results)
            .map(|(job, (result, requests))| {
                let (status, report, error, error_kind) = match result {
                    Ok(r) if r.up_to_date => (Status::Unchanged, Some(r), None, None),
                    Ok(r) => (Status::Rebased, Some(r), None, None),
                    Err(e) => {
                        // A file-system failure at the destination names it as `-o` gave it.
                        let e = match job.dest.local_path() {
                            Some(dest) => e.at_argument("-o", dest, true),
                            None => e,
                        };
                        (Status::Failed, None, Some(e.to_string()), Some(e.kind()))
                    }
                };
                Entry {
                    image: job.image.to_string(),
                    destination: job.dest.to_string(),
                    status,
                    requests,
                    report,
                    error,
                    error_kind,
                }
            })
            .collect();
        let count = |s: Status| images.iter().filter(|e| e.status == s).count();
        Report {
            rebased: count(Status::Rebased),
            unchanged: count(Status::Unchanged),
            failed: count(Status::Failed),
            shard: shard.map(|s| s.to_string()),
            requests,
            images,
        }
    }
}

/// The rules a fleet's destinations must follow, checked before anything runs: no two images
/// written to one destination, and at most one image per archive (an archive is rewritten
/// whole by each writer, so two images into one would race). Usage errors: the `-o` pattern
/// is at fault.
pub fn check_destinations(jobs: &[Job]) -> Result<()> {
    let mut seen = std::collections::HashMap::new();
    let mut archives = std::collections::HashMap::new();
    for Job { image: img, dest } in jobs {
        // Compared as written: the shown form may hide a part that tells two apart.
        if let Some(other) = seen.insert(dest.as_written().to_string(), img.to_string()) {
            return Err(UsageError::SameDestination {
                first: other,
                second: img.to_string(),
                destination: dest.to_string(),
            }
            .into());
        }
        if dest.is_archive() {
            if let Some(other) = archives.insert(dest.place(), img.to_string()) {
                return Err(UsageError::SameArchive {
                    first: other,
                    second: img.to_string(),
                    archive: dest.place(),
                }
                .into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    #[test]
    fn shards_partition_the_list_whatever_its_order() {
        let refs: Vec<Reference> = (0..200)
            .map(|i| r(&format!("docker://reg.test/team/app-{i}:v1")))
            .collect();
        let mut reversed = refs.clone();
        reversed.reverse();
        let mut seen = std::collections::BTreeMap::new();
        for i in 0..4 {
            let shard: Shard = format!("{i}/4").parse().unwrap();
            let a: Vec<String> = select(refs.clone(), Some(shard), |r| r)
                .iter()
                .map(|r| r.to_string())
                .collect();
            let mut b: Vec<String> = select(reversed.clone(), Some(shard), |r| r)
                .iter()
                .map(|r| r.to_string())
                .collect();
            b.reverse();
            assert_eq!(a, b, "shard {i}/4 depends on the list order");
            assert!(!a.is_empty(), "shard {i}/4 is empty for 200 images");
            for x in a {
                assert!(seen.insert(x, i).is_none(), "an image in two shards");
            }
        }
        assert_eq!(seen.len(), 200);
        assert_eq!(select(refs.clone(), None, |r| r).len(), 200);
    }

    #[test]
    fn results_keep_the_items_order_on_either_pool() {
        let items: Vec<usize> = (0..50).collect();
        for network in [false, true] {
            let out = run(&items, network, 7, |i| i * 2);
            assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        }
        assert_eq!(Requests::new(700, 4, 100).per_image, 7.0);
        assert_eq!(Requests::new(0, 0, 0).per_image, 0.0);
    }
}
