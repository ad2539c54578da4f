//! A directory-backed [`Storage`] whose commits are atomic: new component contents go to
//! fresh object files (write, fsync), then one index file is replaced by rename (the
//! commit point), then unreferenced objects are removed. A crash before the rename leaves
//! the old index, hence the old state; leftovers are collected on the next open.
//!
//! Layout: `index` (CBOR: contents, links, sequence numbers, signers) and
//! `objects/<gen>-<n>`. Index format 2 is `[2, generation, data, links, sequence numbers,
//! signers]`; format 1 (`[generation, data, links, sequence numbers]`, no signers) is still
//! read, and the next commit writes format 2.

use alloc::borrow::Cow;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use minicbor::Encoder;

use crate::cbor::Reader;
use crate::error::{SuitError, malformed};
use crate::model::ComponentId;
use crate::storage::{Changes, Maps, Storage, apply};
use crate::trust::SignerId;

/// The index format this code writes.
const INDEX_VERSION: u64 = 2;

fn io(e: std::io::Error) -> SuitError {
    SuitError::Storage(e.to_string())
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Index {
    generation: u64,
    /// Component -> object file name.
    data: BTreeMap<ComponentId, String>,
    owners: BTreeMap<ComponentId, BTreeSet<ComponentId>>,
    sequence_numbers: BTreeMap<ComponentId, u64>,
    signers: BTreeMap<ComponentId, SignerId>,
}

impl Index {
    fn maps(&mut self) -> Maps<'_, String> {
        Maps {
            data: &mut self.data,
            owners: &mut self.owners,
            seqs: &mut self.sequence_numbers,
            signers: &mut self.signers,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out);
        let _ = e
            .array(6)
            .and_then(|e| e.u64(INDEX_VERSION))
            .and_then(|e| e.u64(self.generation));
        let _ = e.array(self.data.len() as u64);
        for (id, name) in &self.data {
            let _ = e.array(2);
            id.encode(&mut e);
            let _ = e.str(name);
        }
        let _ = e.array(self.owners.len() as u64);
        for (id, set) in &self.owners {
            let _ = e.array(2);
            id.encode(&mut e);
            let _ = e.array(set.len() as u64);
            for o in set {
                o.encode(&mut e);
            }
        }
        let _ = e.array(self.sequence_numbers.len() as u64);
        for (id, seq) in &self.sequence_numbers {
            let _ = e.array(2);
            id.encode(&mut e);
            let _ = e.u64(*seq);
        }
        let _ = e.array(self.signers.len() as u64);
        for (id, signer) in &self.signers {
            let _ = e.array(2);
            id.encode(&mut e);
            let _ = match signer {
                SignerId::Anchor(name) => e.str(name),
                SignerId::Mac => e.null(),
            };
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, SuitError> {
        let mut r = Reader::new(bytes);
        let mut index = Self::default();
        // Format 1 has four members and no version; format 2 six, led by its version.
        let version = match r.array("index")? {
            4 => 1,
            6 if r.u64("index version")? == INDEX_VERSION => INDEX_VERSION,
            _ => return Err(malformed("unknown index format", 0)),
        };
        index.generation = r.u64("generation")?;
        for _ in 0..r.array("index data")? {
            r.array("index entry")?;
            let id = ComponentId::decode(&mut r)?;
            index.data.insert(id, String::from(r.str("object name")?));
        }
        for _ in 0..r.array("index links")? {
            r.array("index entry")?;
            let id = ComponentId::decode(&mut r)?;
            let mut set = BTreeSet::new();
            for _ in 0..r.array("owners")? {
                set.insert(ComponentId::decode(&mut r)?);
            }
            index.owners.insert(id, set);
        }
        for _ in 0..r.array("index sequence numbers")? {
            r.array("index entry")?;
            let id = ComponentId::decode(&mut r)?;
            index.sequence_numbers.insert(id, r.u64("sequence number")?);
        }
        if version == INDEX_VERSION {
            for _ in 0..r.array("index signers")? {
                r.array("index entry")?;
                let id = ComponentId::decode(&mut r)?;
                let signer = if r.datatype()? == minicbor::data::Type::Null {
                    r.null("signer")?;
                    SignerId::Mac
                } else {
                    SignerId::Anchor(String::from(r.str("signer")?))
                };
                index.signers.insert(id, signer);
            }
        }
        r.finish("trailing bytes in index")?;
        Ok(index)
    }
}

/// SUIT state in a directory.
#[derive(Debug)]
pub struct DirStorage {
    root: PathBuf,
    index: Index,
}

/// Changes written to disk but not yet visible (see [`DirStorage::stage`]).
#[derive(Debug)]
pub struct Staged {
    index: Index,
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), SuitError> {
    let mut f = fs::File::create(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

fn sync_dir(path: &Path) -> Result<(), SuitError> {
    fs::File::open(path).and_then(|d| d.sync_all()).map_err(io)
}

impl DirStorage {
    /// Opens (creating if needed) a state directory and removes objects that no index
    /// refers to (left by an interrupted commit).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, SuitError> {
        let root = root.into();
        fs::create_dir_all(root.join("objects")).map_err(io)?;
        let index = match fs::read(root.join("index")) {
            Ok(bytes) => Index::decode(&bytes)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Index::default(),
            Err(e) => return Err(io(e)),
        };
        let store = Self { root, index };
        store.collect_garbage()?;
        Ok(store)
    }

    fn object(&self, name: &str) -> PathBuf {
        self.root.join("objects").join(name)
    }

    fn collect_garbage(&self) -> Result<(), SuitError> {
        let live: BTreeSet<&String> = self.index.data.values().collect();
        for entry in fs::read_dir(self.root.join("objects")).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !live.contains(&name) {
                fs::remove_file(entry.path()).map_err(io)?;
            }
        }
        Ok(())
    }

    /// First half of a commit: writes every new content to its own object file and
    /// syncs it. Nothing is visible until [`DirStorage::publish`]; dropping the result
    /// (or crashing) leaves the state as it was.
    pub fn stage(&self, changes: Changes) -> Result<Staged, SuitError> {
        let mut index = self.index.clone();
        index.generation += 1;
        let generation = index.generation;
        let mut n = 0u64;
        let mut failed = None;
        apply(changes, index.maps(), |bytes| {
            n += 1;
            let name = format!("{generation}-{n}");
            if failed.is_none() {
                failed = write_synced(&self.object(&name), &bytes).err();
            }
            name
        });
        if let Some(e) = failed {
            return Err(e);
        }
        sync_dir(&self.root.join("objects"))?;
        Ok(Staged { index })
    }

    /// Second half: replaces the index by rename (atomic), then drops dead objects.
    pub fn publish(&mut self, staged: Staged) -> Result<(), SuitError> {
        let tmp = self.root.join("index.tmp");
        write_synced(&tmp, &staged.index.encode())?;
        fs::rename(&tmp, self.root.join("index")).map_err(io)?;
        sync_dir(&self.root)?;
        self.index = staged.index;
        self.collect_garbage()
    }

    /// Component IDs with stored contents.
    pub fn components(&self) -> impl Iterator<Item = &ComponentId> {
        self.index.data.keys()
    }
}

impl Storage for DirStorage {
    fn read(&self, id: &ComponentId) -> Result<Option<Cow<'_, [u8]>>, SuitError> {
        match self.index.data.get(id) {
            None => Ok(None),
            Some(name) => fs::read(self.object(name))
                .map(|b| Some(Cow::Owned(b)))
                .map_err(io),
        }
    }

    fn owners(&self, id: &ComponentId) -> Result<BTreeSet<ComponentId>, SuitError> {
        Ok(self.index.owners.get(id).cloned().unwrap_or_default())
    }

    fn linked_by(&self, owner: &ComponentId) -> Result<Vec<ComponentId>, SuitError> {
        Ok(crate::storage::linked_by(&self.index.owners, owner))
    }

    fn sequence_number(&self, manifest: &ComponentId) -> Result<Option<u64>, SuitError> {
        Ok(self.index.sequence_numbers.get(manifest).copied())
    }

    fn signer(&self, manifest: &ComponentId) -> Result<Option<SignerId>, SuitError> {
        Ok(self.index.signers.get(manifest).cloned())
    }

    fn commit(&mut self, changes: Changes) -> Result<(), SuitError> {
        let staged = self.stage(changes)?;
        self.publish(staged)
    }
}
