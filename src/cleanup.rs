//! What this process must undo if it is interrupted.
//!
//! A failed run cleans up after itself through destructors and `Sink::abort`. A run stopped by
//! SIGINT or SIGTERM runs no destructor, so every writer also registers here how to remove
//! what it creates (a temp file, a staging directory, a destination layout it made); the CLI's
//! signal handler calls [`run_all`] and exits. The library installs no handler: it only keeps
//! the list.
//!
//! Creating a thing and registering its removal happen under one lock ([`create`]), so an
//! interruption sees either neither or both. Once [`run_all`] has started, [`create`] fails
//! without making anything: nothing made after the clean-up survives it while the process is
//! on its way out. Nothing waits on the registry once the clean-up has started (a writer
//! holding a layout's lock may drop a registration while the clean-up waits for that lock).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

type Action = Box<dyn FnOnce() + Send>;

struct Registry {
    next: u64,
    actions: BTreeMap<u64, Action>,
    interrupted: bool,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next: 0,
    actions: BTreeMap::new(),
    interrupted: false,
});

/// Set when the clean-up starts, before it takes the registry.
static INTERRUPTING: AtomicBool = AtomicBool::new(false);

fn registry() -> MutexGuard<'static, Registry> {
    // An action that panicked leaves nothing half-updated in the map itself.
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The registry, unless the clean-up has started (then `None`, at once: its holder may be
/// waiting for a lock our caller holds). Other holders only hold it for a syscall or two.
fn registry_unless_interrupted() -> Option<MutexGuard<'static, Registry>> {
    loop {
        if INTERRUPTING.load(Ordering::SeqCst) {
            return None;
        }
        match REGISTRY.try_lock() {
            Ok(g) => return Some(g),
            Err(TryLockError::Poisoned(e)) => return Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => std::thread::yield_now(),
        }
    }
}

/// Whether the process is being cleaned up after a signal.
pub fn interrupted() -> bool {
    INTERRUPTING.load(Ordering::SeqCst)
}

/// A registered clean-up action. Dropping it forgets the action without running it: the
/// thing was removed, or kept on purpose (a committed result), by its owner.
#[must_use = "dropping the registration at once forgets the clean-up"]
#[derive(Debug)]
pub struct Registration(u64);

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(mut reg) = registry_unless_interrupted() {
            reg.actions.remove(&self.0);
        }
    }
}

/// Makes something and registers how to remove it, as one step.
///
/// `make` runs under the registry lock, so it must be quick (a syscall or two) and must not
/// itself register anything or wait for anything. Once the clean-up has started, nothing is
/// made and this fails.
pub fn create<T>(
    make: impl FnOnce() -> io::Result<T>,
    remove: impl FnOnce(&T) -> Box<dyn FnOnce() + Send>,
) -> io::Result<(T, Registration)> {
    let interrupted = || {
        io::Error::new(
            io::ErrorKind::Interrupted,
            "interrupted: the run is being cleaned up",
        )
    };
    let mut reg = registry_unless_interrupted().ok_or_else(interrupted)?;
    if reg.interrupted {
        return Err(interrupted());
    }
    let made = make()?;
    let action = remove(&made);
    let id = reg.next;
    reg.next += 1;
    reg.actions.insert(id, action);
    Ok((made, Registration(id)))
}

/// Registers an action for something that already exists (and is removed safely even if it
/// was already gone). Once the clean-up has started, the action runs at once.
pub fn register(action: impl FnOnce() + Send + 'static) -> Registration {
    let mut action = Some(action);
    match create(|| Ok(()), |()| Box::new(action.take().expect("once"))) {
        Ok(((), r)) => r,
        Err(_) => {
            if let Some(a) = action {
                a();
            }
            Registration(u64::MAX)
        }
    }
}

/// Runs every registered action, newest first (a temp file before the directory holding it),
/// and marks the process as interrupted. Called by the CLI's signal handler before it exits.
pub fn run_all() {
    INTERRUPTING.store(true, Ordering::SeqCst);
    let mut reg = registry();
    reg.interrupted = true;
    let actions = std::mem::take(&mut reg.actions);
    for (_, action) in actions.into_iter().rev() {
        action();
    }
}

/// Called by the CLI when the run is over, before it exits: an interruption whose clean-up
/// has started finishes it (and exits with the signal's code); one that comes later finds
/// nothing to do (what the run made is finished or removed) and must not race the exit.
pub fn settle() {
    if interrupted() {
        loop {
            std::thread::park();
        }
    }
    std::mem::forget(registry());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    // `run_all` marks the whole process as interrupted, so only the registration side is
    // unit-tested here; the signal path is tested end to end (tests/integration).
    #[test]
    fn a_dropped_registration_forgets_its_action() {
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let ((), reg) = create(
            || Ok(()),
            move |()| {
                Box::new(move || {
                    r.fetch_add(1, Ordering::SeqCst);
                })
            },
        )
        .unwrap();
        let id = reg.0;
        assert!(registry().actions.contains_key(&id));
        drop(reg);
        assert!(!registry().actions.contains_key(&id));
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_failed_creation_returns_its_error() {
        let e = create::<()>(|| Err(io::Error::other("no")), |()| Box::new(|| ())).unwrap_err();
        assert_eq!(e.to_string(), "no");
    }
}
