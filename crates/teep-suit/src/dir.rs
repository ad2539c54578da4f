//! A directory as a [`BlobBackend`], and the directory store built on it: [`DirStorage`]
//! (plaintext, [`NoSeal`]) and [`SealedDirStorage`] (AES-256-GCM, [`AesGcmSeal`]), both
//! [`IndexedStore`]s (the commit protocol and index format are described there).
//!
//! Layout: `index` (the committed index), `index.tmp` (the next index while it is being
//! committed) and `objects/<name>`. A commit writes its new files without syncing them,
//! then makes them durable in one pass (every file `fdatasync`ed and both directories
//! fsynced at the same time, so that the kernel can flush them in one journal commit
//! instead of one each); only then is the index replaced by rename and the root
//! directory fsynced (at the same time as a TEE's counter update, if it has one).

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::SuitError;
use crate::store::{AesGcmSeal, Blob, BlobBackend, IndexedStore, NoSeal};

fn io(e: std::io::Error) -> SuitError {
    SuitError::Storage(e.to_string())
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
}

impl DirBackend {
    /// Uses (creating if needed) `root` and its `objects` directory.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, SuitError> {
        let root = root.into();
        fs::create_dir_all(root.join("objects")).map_err(io)?;
        Ok(Self {
            root,
            unsynced: Vec::new(),
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
}

fn sync_dir(path: &Path) -> Result<(), SuitError> {
    fs::File::open(path).and_then(|d| d.sync_all()).map_err(io)
}

/// Syncs every file and the directories at the same time, one thread each: the flushes
/// overlap (ext4 and xfs join concurrent fsyncs into one journal commit), so the pass
/// costs about one flush instead of one per file. The order among them does not matter:
/// nothing refers to these files until the rename that follows the whole pass.
fn sync_all_at_once(files: &[fs::File], dirs: [&Path; 2]) -> Result<(), SuitError> {
    std::thread::scope(|s| {
        // `sync_data` (fdatasync) is enough for a file: it flushes the data and the
        // metadata needed to read it back (size, extents); its name is the directory's.
        let pending: Vec<_> = files.iter().map(|f| s.spawn(|| f.sync_data())).collect();
        let [first, second] = dirs;
        let other = s.spawn(|| sync_dir(second));
        let synced_dir = sync_dir(first).and_then(|()| {
            other
                .join()
                .unwrap_or_else(|_| Err(SuitError::Storage("sync thread panicked".into())))
        });
        let files = pending.into_iter().try_for_each(|t| {
            t.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("sync thread panicked")))
        });
        synced_dir.and_then(|()| files.map_err(io))
    })
}

impl BlobBackend for DirBackend {
    fn read(&self, blob: Blob<'_>) -> Result<Option<Vec<u8>>, SuitError> {
        match fs::read(self.path(blob)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    fn write(&mut self, blob: Blob<'_>, bytes: &[u8]) -> Result<(), SuitError> {
        let mut f = fs::File::create(self.path(blob)).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        // Not synced here: `sync` flushes all of a commit's files in one pass.
        self.unsynced.push(f);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SuitError> {
        // The objects directory holds the new objects' names, the root directory the
        // next index's: a commit whose counter moves at the same time as the rename
        // (`IndexedStore::publish_recorded`) may be rolled forward from `index.tmp`, so
        // its name must be durable before either.
        let files = core::mem::take(&mut self.unsynced);
        sync_all_at_once(&files, [&self.objects_dir(), &self.root])
    }

    fn replace_index(&mut self) -> Result<(), SuitError> {
        fs::rename(self.path(Blob::NextIndex), self.path(Blob::Index)).map_err(io)?;
        sync_dir(&self.root)
    }

    fn remove(&mut self, object: &str) -> Result<(), SuitError> {
        fs::remove_file(self.path(Blob::Object(object))).map_err(io)
    }

    fn discard_next_index(&mut self) -> Result<(), SuitError> {
        match fs::remove_file(self.path(Blob::NextIndex)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }

    fn objects(&self) -> Result<Vec<String>, SuitError> {
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
