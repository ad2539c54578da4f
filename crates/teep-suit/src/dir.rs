//! A directory as a [`BlobBackend`], and the directory store built on it: [`DirStorage`]
//! (plaintext, [`NoSeal`]) and [`SealedDirStorage`] (AES-256-GCM, [`AesGcmSeal`]), both
//! [`IndexedStore`]s (the commit protocol and index format are described there).
//!
//! Layout: `index` (the committed index), `index.tmp` (the next index while it is being
//! committed) and `objects/<name>`. A commit writes its new files without syncing them,
//! then makes them durable in one pass (every file `fdatasync`ed and both directories
//! fsynced at the same time, so that the kernel can flush them in one journal commit
//! instead of one each); only then is the index replaced by rename and the root
//! directory fsynced. With a TEE's counter update (`replace_index_alongside`) the rename
//! runs at the same time as the counter write, and once the counter has moved the
//! directory fsync is left to the background: the commit is already durable (a lost
//! rename is rolled forward from `index.tmp`, durable since the sync pass), and the
//! backend's next step waits for that fsync before anything else (no new `index.tmp` may
//! appear while the rename of the last one could still be lost). Dead objects are
//! unlinked in the background after the commit point too: the commit does not wait for
//! them, the backend's next step (or its drop) does.
//!
//! The overlapping flushes and the removals run on threads the backend keeps (spawned
//! when a pass needs more than it has, ended with the backend): spawning four or five
//! threads per commit cost about as much as the flushes they overlap on a small machine.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, PoisonError, mpsc};

use crate::error::SuitError;
use crate::store::{AesGcmSeal, Blob, BlobBackend, IndexedStore, NoSeal};

fn io(e: io::Error) -> SuitError {
    SuitError::Storage(e.to_string())
}

fn panicked() -> io::Error {
    io::Error::other("sync thread panicked")
}

/// SUIT state in a directory, in plaintext.
pub type DirStorage = IndexedStore<DirBackend, NoSeal>;

/// SUIT state in a directory, every file sealed with AES-256-GCM (a software TEE's
/// storage on a host it does not trust).
pub type SealedDirStorage<'a> = IndexedStore<DirBackend, AesGcmSeal<'a>>;

/// Blobs as files under a root directory.
#[derive(Debug)]
pub struct DirBackend {
    root: PathBuf,
    /// Files written since the last [`BlobBackend::sync`], still open to be synced.
    unsynced: Vec<fs::File>,
    workers: Workers,
    /// Background jobs not yet done: removals ([`BlobBackend::remove_later`]) and the
    /// directory fsync after a counted rename.
    background: Arc<Pending>,
    /// Set while the last rename of the index may not be durable (its directory fsync
    /// was left to the background, see [`BlobBackend::replace_index_alongside`]).
    rename_unsynced: Arc<AtomicBool>,
}

impl DirBackend {
    /// Uses (creating if needed) `root` and its `objects` directory.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, SuitError> {
        let root = root.into();
        fs::create_dir_all(root.join("objects")).map_err(io)?;
        Ok(Self {
            root,
            unsynced: Vec::new(),
            workers: Workers::new(),
            background: Arc::default(),
            rename_unsynced: Arc::default(),
        })
    }

    fn objects_dir(&self) -> PathBuf {
        self.root.join("objects")
    }

    fn path(&self, blob: Blob<'_>) -> PathBuf {
        match blob {
            Blob::Index => self.root.join("index"),
            Blob::NextIndex => self.root.join("index.tmp"),
            Blob::Object(name) => self.objects_dir().join(name),
        }
    }

    /// What every step but a read and a background removal starts with: the background
    /// jobs done, and the last rename of the index durable. A name can come back after a
    /// reopen (an abandoned commit's, collected by the open), so its removal must be done
    /// before it is written again; and a next index must never be created while the
    /// rename of the previous one may still be lost (a crash could then leave the old
    /// index beside a next index of another generation than the counter's: neither state
    /// would open). A directory fsync that failed in the background is retried here.
    fn settle(&self) -> io::Result<()> {
        self.background.wait();
        if self.rename_unsynced.load(Ordering::SeqCst) {
            sync_dir(&self.root)?;
            self.rename_unsynced.store(false, Ordering::SeqCst);
        }
        Ok(())
    }
}

impl Drop for DirBackend {
    /// Waits for the background jobs (a process that exits after a commit leaves no
    /// garbage, and its last rename durable); the threads end once the backend is gone.
    fn drop(&mut self) {
        let _ = self.settle();
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    fs::File::open(path).and_then(|d| d.sync_all())
}

/// The commit point: the rename, then the directory fsync that makes it durable.
fn replace(next: &Path, index: &Path, root: &Path) -> io::Result<()> {
    fs::rename(next, index)?;
    sync_dir(root)
}

fn remove_file(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

type Job = Box<dyn FnOnce() + Send>;
type Task = Box<dyn FnOnce() -> io::Result<()> + Send>;

/// The most threads a backend keeps: a pass with more flushes queues the rest.
const MAX_WORKERS: usize = 16;

/// Threads kept for a backend's flushes and removals, taking jobs from one queue; each
/// ends when the backend (the queue's sender) is gone.
#[derive(Debug)]
struct Workers {
    jobs: mpsc::Sender<Job>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    threads: usize,
}

impl Workers {
    fn new() -> Self {
        let (jobs, queue) = mpsc::channel();
        Self {
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            threads: 0,
        }
    }

    /// Makes sure `n` threads (at most [`MAX_WORKERS`]) exist: between passes all are idle.
    fn ensure(&mut self, n: usize) -> io::Result<()> {
        while self.threads < n.min(MAX_WORKERS) {
            let queue = Arc::clone(&self.queue);
            std::thread::Builder::new()
                .name(String::from("teep-suit-sync"))
                .spawn(move || work(&queue))?;
            self.threads += 1;
        }
        Ok(())
    }

    /// Hands `job` to a thread, or gives it back when there is none to take it.
    fn hand_off(&mut self, job: Job) -> Result<(), Job> {
        match self.ensure(1) {
            Ok(()) => self.jobs.send(job).map_err(|mpsc::SendError(job)| job),
            Err(_) => Err(job),
        }
    }

    /// Runs `tasks` on the threads and `own` on the calling thread, all at the same time,
    /// and waits for every one: `own`'s result and the first error of the tasks. Tasks no
    /// thread can take (one could not be spawned) run on the calling thread after `own`.
    fn run_all<R>(&mut self, tasks: Vec<Task>, own: impl FnOnce() -> R) -> (R, io::Result<()>) {
        let n = tasks.len();
        let spawned = self.ensure(n).is_ok();
        let (done, results) = mpsc::channel();
        let mut inline = Vec::new();
        for task in tasks {
            let done = done.clone();
            let job: Job = Box::new(move || {
                let _ = done.send(task());
            });
            if !spawned {
                inline.push(job);
            } else if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
                inline.push(job);
            }
        }
        drop(done);
        let own = own();
        inline.into_iter().for_each(|job| job());
        // A task that panicked drops its sender unsent: `recv` fails once the rest are in.
        let mut outcome = Ok(());
        for _ in 0..n {
            let result = results.recv().unwrap_or_else(|_| Err(panicked()));
            outcome = outcome.and(result);
        }
        (own, outcome)
    }
}

fn work(queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for one job.
        let job = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        // The backend is gone.
        let Ok(job) = job else { return };
        // A job that panics loses its result (its caller reports that), not the thread.
        let _ = std::panic::catch_unwind(core::panic::AssertUnwindSafe(job));
    }
}

/// A count of unfinished background jobs, and a way to wait until there are none.
#[derive(Debug, Default)]
struct Pending {
    count: Mutex<usize>,
    done: Condvar,
}

impl Pending {
    fn start(self: &Arc<Self>) -> Finished {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        Finished(Arc::clone(self))
    }

    fn wait(&self) {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *count > 0 {
            count = self
                .done
                .wait(count)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Marks one job of a [`Pending`] finished when dropped: after it ran, or if it never
/// runs or panics.
struct Finished(Arc<Pending>);

impl Drop for Finished {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(PoisonError::into_inner);
        *count = count.saturating_sub(1);
        self.0.done.notify_all();
    }
}

impl BlobBackend for DirBackend {
    fn read(&self, blob: Blob<'_>) -> Result<Option<Vec<u8>>, SuitError> {
        match fs::read(self.path(blob)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    fn write(&mut self, blob: Blob<'_>, bytes: &[u8]) -> Result<(), SuitError> {
        self.settle().map_err(io)?;
        let mut f = fs::File::create(self.path(blob)).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        // Not synced here: `sync` flushes all of a commit's files in one pass.
        self.unsynced.push(f);
        Ok(())
    }

    /// Syncs every file and both directories at the same time, on the backend's threads:
    /// the flushes overlap (ext4 and xfs join concurrent fsyncs into one journal commit),
    /// so the pass costs about one flush instead of one per file. The order among them
    /// does not matter: nothing refers to these files until the rename after the pass.
    fn sync(&mut self) -> Result<(), SuitError> {
        self.settle().map_err(io)?;
        // The objects directory holds the new objects' names, the root directory the
        // next index's: a commit whose counter moves at the same time as the rename
        // (`IndexedStore::publish_recorded`) may be rolled forward from `index.tmp`, so
        // its name must be durable before either.
        let objects = self.objects_dir();
        let root = &self.root;
        // `sync_data` (fdatasync) is enough for a file: it flushes the data and the
        // metadata needed to read it back (size, extents); its name is the directory's.
        let mut tasks: Vec<Task> = core::mem::take(&mut self.unsynced)
            .into_iter()
            .map(|f| Box::new(move || f.sync_data()) as Task)
            .collect();
        tasks.push(Box::new(move || sync_dir(&objects)));
        let (root, others) = self.workers.run_all(tasks, || sync_dir(root));
        root.and(others).map_err(io)
    }

    fn replace_index(&mut self) -> Result<(), SuitError> {
        self.settle().map_err(io)?;
        replace(
            &self.path(Blob::NextIndex),
            &self.path(Blob::Index),
            &self.root,
        )
        .map_err(io)
    }

    /// The rename on one of the backend's threads, `alongside` on the calling thread;
    /// then the directory fsync that makes the rename durable: at once if `alongside`
    /// did not record the generation, else in the background (the commit is durable
    /// through the counter and `index.tmp`, and the next step waits for it).
    fn replace_index_alongside(
        &mut self,
        alongside: &mut dyn FnMut() -> bool,
    ) -> Result<(), SuitError> {
        self.settle().map_err(io)?;
        let (next, index) = (self.path(Blob::NextIndex), self.path(Blob::Index));
        let task: Task = Box::new(move || fs::rename(&next, &index));
        let (recorded, renamed) = self.workers.run_all(vec![task], alongside);
        renamed.map_err(io)?;
        if !recorded {
            return sync_dir(&self.root).map_err(io);
        }
        self.rename_unsynced.store(true, Ordering::SeqCst);
        let (root, unsynced) = (self.root.clone(), Arc::clone(&self.rename_unsynced));
        let finished = self.background.start();
        let job: Job = Box::new(move || {
            // On failure the flag stays: the next step retries.
            if sync_dir(&root).is_ok() {
                unsynced.store(false, Ordering::SeqCst);
            }
            drop(finished);
        });
        // No thread to take it: the next step does it.
        let _ = self.workers.hand_off(job);
        Ok(())
    }

    fn remove(&mut self, object: &str) -> Result<(), SuitError> {
        self.settle().map_err(io)?;
        remove_file(&self.path(Blob::Object(object))).map_err(io)
    }

    /// Unlinks on one of the backend's threads; a failure leaves the object to the next
    /// open's collection.
    fn remove_later(&mut self, object: &str) -> Result<(), SuitError> {
        let path = self.path(Blob::Object(object));
        let finished = self.background.start();
        let job: Job = Box::new(move || {
            let _ = remove_file(&path);
            drop(finished);
        });
        // No thread to take it: removed now.
        if let Err(job) = self.workers.hand_off(job) {
            job();
        }
        Ok(())
    }

    fn discard_next_index(&mut self) -> Result<(), SuitError> {
        self.settle().map_err(io)?;
        remove_file(&self.path(Blob::NextIndex)).map_err(io)
    }

    fn objects(&self) -> Result<Vec<String>, SuitError> {
        self.settle().map_err(io)?;
        let mut names = Vec::new();
        for entry in fs::read_dir(self.objects_dir()).map_err(io)? {
            names.push(
                entry
                    .map_err(io)?
                    .file_name()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
        Ok(names)
    }
}

impl DirStorage {
    /// Opens (creating if needed) a plaintext state directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, SuitError> {
        Self::open_with(DirBackend::new(root)?, NoSeal)
    }
}

impl<'a> SealedDirStorage<'a> {
    /// Opens (creating if needed) a sealed state directory, refusing a state older than
    /// `generation` (the TEE's monotonic counter; 0 without one).
    pub fn open(
        root: impl Into<PathBuf>,
        seal: AesGcmSeal<'a>,
        generation: u64,
    ) -> Result<Self, SuitError> {
        Self::open_expecting(DirBackend::new(root)?, seal, generation)
    }
}
