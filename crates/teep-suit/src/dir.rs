//! A directory as a [`BlobBackend`], and the directory store built on it: [`DirStorage`]
//! (plaintext, [`NoSeal`]) and [`SealedDirStorage`] (AES-256-GCM, [`AesGcmSeal`]), both
//! [`IndexedStore`]s (the commit protocol and index format are described there).
//!
//! Layout: `index` (the committed index), `index.tmp` (the next index while it is being
//! committed) and `objects/<name>`. Files are written new and fsynced; the index is
//! replaced by rename, then the directory is fsynced.

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
}

impl DirBackend {
    /// Uses (creating if needed) `root` and its `objects` directory.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, SuitError> {
        let root = root.into();
        fs::create_dir_all(root.join("objects")).map_err(io)?;
        Ok(Self { root })
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
        f.sync_all().map_err(io)
    }

    fn sync(&mut self) -> Result<(), SuitError> {
        sync_dir(&self.objects_dir())
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
