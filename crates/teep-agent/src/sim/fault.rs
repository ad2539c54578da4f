//! Fault injection for the sealed state: a [`BlobBackend`] wrapper that fails at the Nth
//! durable step (write, fsync, rename, the directory fsync after it, remove, the hand-over
//! of a dead object's removal after a commit), to show that a failure or a crash at any
//! point of an install, update or delete leaves the old state or the new one, never a mix.
//!
//! Every wrapper made from one [`Faults`] shares its step count, so "the Nth step" counts
//! across all the stores of a [`super::SimTee`] (its SUIT store and its own store).

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use teep_suit::SuitError;
use teep_suit::store::{Blob, BlobBackend};

/// What happens at the chosen step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultMode {
    /// That step fails (a write leaves half its bytes); later steps succeed again (an I/O
    /// error the process survives).
    Fail,
    /// Power is lost at that step: it fails as with `Fail` and so does every later one (the
    /// process is dead; the test reopens the directory as the next boot would).
    Crash,
}

#[derive(Debug)]
struct State {
    fail_at: usize,
    mode: FaultMode,
    steps: AtomicUsize,
    tripped: AtomicBool,
}

/// A fault plan shared by the backends it wraps.
#[derive(Clone, Debug)]
pub struct Faults(Arc<State>);

impl Faults {
    /// Fails the `fail_at`th step (counting from 1) in `mode`; 0 never fails.
    pub fn new(fail_at: usize, mode: FaultMode) -> Self {
        Self(Arc::new(State {
            fail_at,
            mode,
            steps: AtomicUsize::new(0),
            tripped: AtomicBool::new(false),
        }))
    }

    /// Steps taken so far (those that failed included): an operation is fully covered
    /// once it completes in fewer than `fail_at` steps.
    pub fn steps(&self) -> usize {
        self.0.steps.load(Ordering::SeqCst)
    }

    /// Whether the planned fault has happened.
    pub fn tripped(&self) -> bool {
        self.0.tripped.load(Ordering::SeqCst)
    }

    /// `inner` with this plan's faults.
    pub fn wrap(&self, inner: Box<dyn BlobBackend + Send + Sync>) -> FaultyBackend {
        FaultyBackend {
            inner,
            faults: self.clone(),
        }
    }

    /// Counts one step; `false` when it must fail.
    fn step(&self) -> bool {
        let s = &self.0;
        let n = s.steps.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        if s.mode == FaultMode::Crash && s.tripped.load(Ordering::SeqCst) {
            return false;
        }
        if n == s.fail_at {
            s.tripped.store(true, Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// A backend that fails where its [`Faults`] say.
pub struct FaultyBackend {
    inner: Box<dyn BlobBackend + Send + Sync>,
    faults: Faults,
}

impl core::fmt::Debug for FaultyBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FaultyBackend")
            .field("faults", &self.faults)
            .finish_non_exhaustive()
    }
}

fn injected() -> SuitError {
    SuitError::Storage(String::from("injected fault"))
}

impl FaultyBackend {
    fn guarded(
        &mut self,
        op: impl FnOnce(&mut dyn BlobBackend) -> Result<(), SuitError>,
    ) -> Result<(), SuitError> {
        if self.faults.step() {
            op(&mut *self.inner)
        } else {
            Err(injected())
        }
    }
}

impl BlobBackend for FaultyBackend {
    fn read(&self, blob: Blob<'_>) -> Result<Option<Vec<u8>>, SuitError> {
        self.inner.read(blob)
    }

    fn write(&mut self, blob: Blob<'_>, bytes: &[u8]) -> Result<(), SuitError> {
        if self.faults.step() {
            self.inner.write(blob, bytes)
        } else {
            // A torn write: part of the bytes reached the disk.
            let half = bytes.get(..bytes.len() / 2).unwrap_or_default();
            let _ = self.inner.write(blob, half);
            Err(injected())
        }
    }

    fn sync(&mut self) -> Result<(), SuitError> {
        self.guarded(|b| b.sync())
    }

    /// Two steps: the rename, then the directory fsync after it (a failure there leaves
    /// the index replaced: the commit point has passed, durability is what failed).
    fn replace_index(&mut self) -> Result<(), SuitError> {
        self.guarded(|b| b.replace_index())?;
        self.guarded(|_| Ok(()))
    }

    /// The same two steps through the inner backend's own replacement (whose directory
    /// fsync may be left to the background once the counter moved); `alongside` runs
    /// whatever the first step does, as it does beside a real rename.
    fn replace_index_alongside(
        &mut self,
        alongside: &mut dyn FnMut() -> bool,
    ) -> Result<(), SuitError> {
        if !self.faults.step() {
            alongside();
            return Err(injected());
        }
        self.inner.replace_index_alongside(alongside)?;
        self.guarded(|_| Ok(()))
    }

    fn remove(&mut self, object: &str) -> Result<(), SuitError> {
        self.guarded(|b| b.remove(object))
    }

    /// One step when handed over (a crash after it may still lose the removal: the
    /// inner backend may not have done it yet; the next open collects the object).
    fn remove_later(&mut self, object: &str) -> Result<(), SuitError> {
        self.guarded(|b| b.remove_later(object))
    }

    fn discard_next_index(&mut self) -> Result<(), SuitError> {
        self.guarded(|b| b.discard_next_index())
    }

    fn objects(&self) -> Result<Vec<String>, SuitError> {
        self.inner.objects()
    }
}
