//! A [`Storage`] kept as an index plus content blobs, over any blob backend and sealing
//! layer: [`IndexedStore<B, S>`]. The index, the commit protocol and garbage collection
//! are written once here; a backend only stores named blobs ([`BlobBackend`]:
//! `dir::DirBackend` is files in a directory), a seal only protects them ([`Seal`]:
//! [`NoSeal`] keeps plaintext, [`AesGcmSeal`] encrypts and authenticates every blob).
//! The directory store is `IndexedStore<DirBackend, NoSeal>`; a software TEE's sealed
//! storage is `IndexedStore<DirBackend, AesGcmSeal>`.
//!
//! Commit: new contents go to fresh objects (sealed and written), then the next index is
//! written, all of them are synced in one pass, and the next index replaces the index in
//! one atomic step (the commit point), then objects no index refers to are removed (the
//! commit does not wait for that: [`BlobBackend::remove_later`]). A
//! crash before the commit point leaves the old index, hence the old state; leftovers are
//! collected on the next open. With a monotonic counter
//! ([`IndexedStore::publish_recorded`]) the counter is raised at the same time as the
//! replacement, and either one commits: an open that finds the counter one ahead of the
//! index rolls the next index (of the counter's generation) forward.
//!
//! Index: CBOR format 2, `[2, generation, data, links, sequence numbers, signers]` (data
//! maps each component to its object's name); format 1 (`[generation, data, links,
//! sequence numbers]`, no signers) is still read, and the next commit writes format 2.
//! The generation goes up by one with every commit and is sealed with the index.
//!
//! Rollback: sealing stops a hostile host from reading or changing the state, but not from
//! putting back an older copy of all of it (with older sequence numbers). A TEE with a
//! monotonic counter stores [`IndexedStore::generation`] in it with every commit
//! ([`IndexedStore::publish_recorded`]) and opens with [`IndexedStore::open_expecting`],
//! which refuses an older index ([`SuitError::StateRolledBack`]) unless the next index
//! left beside it has exactly the counter's generation (the commit whose replacement a
//! crash lost; it is rolled forward). A newer index than the counter is accepted (a crash
//! before the counter update); the caller then raises the counter. A
//! commit that wrote its next index but failed before the commit point deletes it (and an
//! open deletes one a crash left), so no sealed index of a commit that never happened
//! stays behind; a host that copied it while it existed could still put it in place of
//! the real commit of that generation (AES-GCM cannot tell them apart).

use alloc::borrow::Cow;
use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use teep_cbor::write::{ArrayEncoder, ArrayKind, EncodeError, VecEncoder, encode_vec};
use teep_cose::CryptoProvider;
use zeroize::Zeroizing;

use crate::cbor::{Reader, SuitRead, appended};
use crate::error::{SuitError, malformed};
use crate::model::ComponentId;
use crate::storage::{Changes, State, Storage};
use crate::trust::SignerId;

/// The index format this code writes.
const INDEX_VERSION: u64 = 2;

/// Which blob of a store: the committed index, the next index being committed, or a
/// content object (by the name the index gives it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blob<'a> {
    /// The committed index.
    Index,
    /// The index being written by a commit, before it replaces the committed one.
    NextIndex,
    /// A content object, by the name the index gives it.
    Object(&'a str),
}

/// Where an [`IndexedStore`] keeps its blobs. Every method is one step of the commit
/// protocol; a crash between any two must leave what was written before it intact.
pub trait BlobBackend {
    /// Contents of a blob, `None` when it does not exist.
    fn read(&self, blob: Blob<'_>) -> Result<Option<Vec<u8>>, SuitError>;
    /// Creates (or truncates) the blob and writes `bytes`, durably only once
    /// [`BlobBackend::sync`] returns: a commit's writes are flushed together, not one by one.
    fn write(&mut self, blob: Blob<'_>, bytes: &[u8]) -> Result<(), SuitError>;
    /// Makes every blob written since the last sync durable as a set (the objects' names
    /// included): the barrier before the commit point.
    fn sync(&mut self) -> Result<(), SuitError>;
    /// Replaces the index by the next index atomically and durably: the commit point.
    /// After it, even across a crash, the index is either the old or the new one. On an
    /// error the next index must still be there unless the index was replaced (then the
    /// error is about durability only: [`IndexedStore::publish`] keeps the new state).
    fn replace_index(&mut self) -> Result<(), SuitError>;
    /// [`BlobBackend::replace_index`] while `alongside` runs on the calling thread (a TEE's
    /// counter update, see [`IndexedStore::publish_recorded`]): each runs whatever the
    /// other's outcome, so a backend may overlap them. `alongside` returns whether it
    /// recorded the new generation durably: then a lost replacement is rolled forward
    /// from the next index by the next open, and the backend may return before the
    /// replacement is durable, provided it is durable before any later step (a next
    /// index written again while it may still be lost could leave nothing that opens).
    /// The default runs one, then the other.
    fn replace_index_alongside(
        &mut self,
        alongside: &mut dyn FnMut() -> bool,
    ) -> Result<(), SuitError> {
        let replaced = self.replace_index();
        alongside();
        replaced
    }
    /// Deletes an object (garbage collection); one already gone is not an error.
    fn remove(&mut self, object: &str) -> Result<(), SuitError>;
    /// Deletes an object that no index names any more, after a commit: the commit does not
    /// wait for it. A backend may do it in the background, finished before its next step
    /// (or its drop); a crash first leaves the object for the next open to collect. The
    /// default removes it at once.
    fn remove_later(&mut self, object: &str) -> Result<(), SuitError> {
        self.remove(object)
    }
    /// Deletes the next index if one is left (a commit failed, or crashed, before the
    /// commit point): a sealed index of a commit that never happened must not linger for
    /// a host to put in place later. A backend whose next index cannot outlive a failed
    /// commit (nothing persistent) has nothing to do.
    fn discard_next_index(&mut self) -> Result<(), SuitError> {
        Ok(())
    }
    /// Names of all objects present.
    fn objects(&self) -> Result<Vec<String>, SuitError>;
}

/// How an [`IndexedStore`] protects its blobs at rest.
pub trait Seal {
    /// Protects `plain`, to be stored as `blob` (the next index is sealed as the index it
    /// becomes).
    fn seal(&self, blob: Blob<'_>, plain: &[u8]) -> Result<Vec<u8>, SuitError>;
    /// Checks and removes the protection; anything that was not sealed as this `blob`
    /// with this key fails with [`SuitError::StateTampered`].
    fn open(&self, blob: Blob<'_>, sealed: Vec<u8>) -> Result<Vec<u8>, SuitError>;
    /// The name of an object a commit of `generation` writes, `n` counting the objects
    /// the open store has named. Names never repeat within one generation; [`AesGcmSeal`]
    /// adds randomness so that they never repeat at all (an object of an abandoned commit
    /// cannot stand in for a later one).
    fn object_name(&self, generation: u64, n: u64) -> Result<String, SuitError> {
        Ok(format!("{generation}-{n}"))
    }
}

/// Plaintext blobs: the directory store as it always was (its on-disk format unchanged).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSeal;

impl Seal for NoSeal {
    fn seal(&self, _: Blob<'_>, plain: &[u8]) -> Result<Vec<u8>, SuitError> {
        Ok(plain.to_vec())
    }

    fn open(&self, _: Blob<'_>, sealed: Vec<u8>) -> Result<Vec<u8>, SuitError> {
        Ok(sealed)
    }
}

/// AES-256-GCM sealing with a device key: each blob is `nonce (12 random bytes) ||
/// ciphertext || tag`, its associated data binds what it is (index or object) and the
/// object's name, whose first part is the generation that wrote it. A blob moved under
/// another name, swapped with another or changed in any byte fails to open; the index
/// (with the generation inside) is authenticated like the contents.
pub struct AesGcmSeal<'a> {
    provider: &'a dyn CryptoProvider,
    key: Zeroizing<[u8; 32]>,
}

/// Domain of the associated data, so that sealed state is never taken for another use
/// of the same key.
const SEAL_CONTEXT: &[u8] = b"teep-suit sealed state v1\0";
const NONCE_LEN: usize = 12;

impl<'a> AesGcmSeal<'a> {
    /// Seals with `key` (a 256-bit device storage key); nonces come from `provider`'s RNG.
    pub fn new(provider: &'a dyn CryptoProvider, key: [u8; 32]) -> Self {
        Self {
            provider,
            key: Zeroizing::new(key),
        }
    }

    fn aad(blob: Blob<'_>) -> Vec<u8> {
        let (kind, name): (u8, &str) = match blob {
            Blob::Index | Blob::NextIndex => (0, ""),
            Blob::Object(name) => (1, name),
        };
        [SEAL_CONTEXT, &[kind], name.as_bytes()].concat()
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], SuitError> {
        let mut out = [0u8; N];
        self.provider
            .fill_random(&mut out)
            .map_err(|e| SuitError::Storage(e.to_string()))?;
        Ok(out)
    }
}

impl fmt::Debug for AesGcmSeal<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AesGcmSeal { .. }")
    }
}

fn blob_name(blob: Blob<'_>) -> String {
    match blob {
        Blob::Index | Blob::NextIndex => String::from("index"),
        Blob::Object(name) => String::from(name),
    }
}

impl Seal for AesGcmSeal<'_> {
    fn seal(&self, blob: Blob<'_>, plain: &[u8]) -> Result<Vec<u8>, SuitError> {
        let nonce: [u8; NONCE_LEN] = self.random()?;
        let sealed = self
            .provider
            .aes_gcm_seal(&*self.key, &nonce, &Self::aad(blob), plain)
            .map_err(|e| SuitError::Storage(e.to_string()))?;
        Ok([&nonce[..], &sealed].concat())
    }

    fn open(&self, blob: Blob<'_>, sealed: Vec<u8>) -> Result<Vec<u8>, SuitError> {
        let tampered = || SuitError::StateTampered(blob_name(blob));
        let (nonce, body) = sealed.split_at_checked(NONCE_LEN).ok_or_else(tampered)?;
        self.provider
            .aes_gcm_open(&*self.key, nonce, &Self::aad(blob), body)
            .map_err(|_| tampered())
    }

    fn object_name(&self, generation: u64, n: u64) -> Result<String, SuitError> {
        let salt: [u8; 8] = self.random()?;
        Ok(format!("{generation}-{n}-{}", hex::encode(salt)))
    }
}

/// Object names are short `[0-9a-z-]` words: an index naming anything else (`../x`) is
/// refused before a backend turns the name into a path.
fn valid_object_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase() || b == b'-')
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Index {
    generation: u64,
    /// Contents are object names.
    state: State<String>,
}

impl Index {
    fn encode(&self) -> Result<Vec<u8>, SuitError> {
        let s = &self.state;
        fn id(c: &ComponentId) -> impl FnOnce(&mut VecEncoder<'_>) -> Result<(), EncodeError> {
            appended(move |out| c.encode(out))
        }
        Ok(encode_vec(|e| {
            ArrayEncoder::write_to(e, |index| {
                index.item(INDEX_VERSION)?.item(self.generation)?;
                index.item_nested::<ArrayKind>(|list| {
                    for (c, name) in &s.data {
                        list.item_nested::<ArrayKind>(|pair| {
                            pair.item_with(id(c))?.item(name.as_str()).map(drop)
                        })?;
                    }
                    Ok(())
                })?;
                index.item_nested::<ArrayKind>(|list| {
                    for (c, set) in &s.owners {
                        list.item_nested::<ArrayKind>(|pair| {
                            pair.item_with(id(c))?.item_nested::<ArrayKind>(|owners| {
                                set.iter()
                                    .try_for_each(|o| owners.item_with(id(o)).map(drop))
                            })?;
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?;
                index.item_nested::<ArrayKind>(|list| {
                    for (c, seq) in &s.sequence_numbers {
                        list.item_nested::<ArrayKind>(|pair| {
                            pair.item_with(id(c))?.item(*seq).map(drop)
                        })?;
                    }
                    Ok(())
                })?;
                index.item_nested::<ArrayKind>(|list| {
                    for (c, signer) in &s.signers {
                        list.item_nested::<ArrayKind>(|pair| {
                            pair.item_with(id(c))?;
                            match signer {
                                SignerId::Anchor(name) => pair.item(name.as_str())?,
                                SignerId::Mac => pair.item(())?,
                            };
                            Ok(())
                        })?;
                    }
                    Ok(())
                })?;
                Ok(())
            })
        })?)
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
        let s = &mut index.state;
        for _ in 0..r.array("index data")? {
            r.array("index entry")?;
            let id = ComponentId::decode(&mut r)?;
            let at = r.position();
            let name = r.str("object name")?;
            if !valid_object_name(name) {
                return Err(malformed("invalid object name", at));
            }
            s.data.insert(id, String::from(name));
        }
        for _ in 0..r.array("index links")? {
            r.array("index entry")?;
            let id = ComponentId::decode(&mut r)?;
            let mut set = BTreeSet::new();
            for _ in 0..r.array("owners")? {
                set.insert(ComponentId::decode(&mut r)?);
            }
            s.owners.insert(id, set);
        }
        for _ in 0..r.array("index sequence numbers")? {
            r.array("index entry")?;
            let id = ComponentId::decode(&mut r)?;
            s.sequence_numbers.insert(id, r.u64("sequence number")?);
        }
        if version == INDEX_VERSION {
            for _ in 0..r.array("index signers")? {
                r.array("index entry")?;
                let id = ComponentId::decode(&mut r)?;
                let signer = if r.next_type()? == minicbor::data::Type::Null {
                    r.null("signer")?;
                    SignerId::Mac
                } else {
                    SignerId::Anchor(String::from(r.str("signer")?))
                };
                s.signers.insert(id, signer);
            }
        }
        r.expect_empty("trailing bytes in index")?;
        Ok(index)
    }
}

/// SUIT state as an index and content objects in a [`BlobBackend`], sealed by `S`.
#[derive(Debug)]
pub struct IndexedStore<B, S> {
    backend: B,
    seal: S,
    index: Index,
    /// Objects named since opening: names stay unique across stages not yet published.
    named: u64,
    /// Why commits are refused until the store is reopened: a commit whose outcome only
    /// the disk knows (see [`IndexedStore::publish_recorded`]).
    closed: Option<String>,
}

/// Changes written to the backend but not yet visible (see [`IndexedStore::stage`]).
#[derive(Debug)]
pub struct Staged {
    index: Index,
}

impl Staged {
    /// The generation the store will have once this is published.
    pub fn generation(&self) -> u64 {
        self.index.generation
    }
}

impl<B: BlobBackend, S: Seal> IndexedStore<B, S> {
    /// Opens the state in `backend` (empty when it holds no index) and removes objects
    /// that no index refers to (left by an interrupted commit).
    ///
    /// # Errors
    /// The index does not open with `seal` ([`SuitError::StateTampered`]) or is no index
    /// ([`SuitError::Malformed`]), or the backend fails.
    pub fn open_with(backend: B, seal: S) -> Result<Self, SuitError> {
        Self::open_expecting(backend, seal, 0)
    }

    /// As [`IndexedStore::open_with`], refusing (before anything is removed) an index
    /// whose generation is below `generation`, e.g. a TEE's monotonic counter: a missing
    /// index counts as generation 0.
    ///
    /// # Errors
    /// [`SuitError::StateRolledBack`], and those of `open_with`.
    pub fn open_expecting(mut backend: B, seal: S, generation: u64) -> Result<Self, SuitError> {
        let mut index = match backend.read(Blob::Index)? {
            Some(sealed) => Index::decode(&seal.open(Blob::Index, sealed)?)?,
            None => Index::default(),
        };
        if index.generation < generation {
            // A commit that raised the counter while its index replacement was lost (see
            // `publish_recorded`): its next index, of exactly the counter's generation,
            // was durable with its objects before the counter moved. Anything else is
            // an older state put back.
            let next = backend
                .read(Blob::NextIndex)?
                .and_then(|sealed| seal.open(Blob::Index, sealed).ok())
                .and_then(|plain| Index::decode(&plain).ok())
                .filter(|next| next.generation == generation);
            let Some(next) = next else {
                return Err(SuitError::StateRolledBack {
                    found: index.generation,
                    expected: generation,
                });
            };
            backend.replace_index()?;
            index = next;
        }
        backend.discard_next_index()?;
        let live: BTreeSet<&String> = index.state.data.values().collect();
        for name in backend.objects()? {
            if !live.contains(&name) {
                backend.remove(&name)?;
            }
        }
        Ok(Self {
            backend,
            seal,
            index,
            named: 0,
            closed: None,
        })
    }

    /// The number of commits this state has seen (sealed with the index).
    pub fn generation(&self) -> u64 {
        self.index.generation
    }

    /// The blob backend, for reading only (its free space, its raw sealed blobs in a
    /// test): writing to it directly would go around the index and its commit protocol.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend and the seal back, closing the store: to reopen the same state with
    /// another generation floor, or to hand the backend to its owner at shutdown.
    /// Nothing is lost: every commit is already durable in the backend.
    pub fn into_inner(self) -> (B, S) {
        (self.backend, self.seal)
    }

    /// Component IDs with stored contents.
    pub fn components(&self) -> impl Iterator<Item = &ComponentId> {
        self.index.state.data.keys()
    }

    /// The whole state read into memory (every object opened): to compare states, or to
    /// move them to another store.
    pub fn snapshot(&self) -> Result<State<Vec<u8>>, SuitError> {
        let s = &self.index.state;
        let mut data = BTreeMap::new();
        for (id, name) in &s.data {
            data.insert(id.clone(), self.object(name)?);
        }
        Ok(State {
            data,
            owners: s.owners.clone(),
            sequence_numbers: s.sequence_numbers.clone(),
            signers: s.signers.clone(),
        })
    }

    fn object(&self, name: &str) -> Result<Vec<u8>, SuitError> {
        let blob = Blob::Object(name);
        let sealed = self
            .backend
            .read(blob)?
            .ok_or_else(|| SuitError::StateTampered(String::from(name)))?;
        self.seal.open(blob, sealed)
    }

    /// First half of a commit: seals every new content into an object of its own and
    /// writes it (made durable by [`IndexedStore::publish`], with the index, in one sync).
    /// Nothing is visible until then; a failure, dropping the result or a crash leaves
    /// the state as it was.
    pub fn stage(&mut self, changes: Changes) -> Result<Staged, SuitError> {
        self.open_to_commits()?;
        let mut index = self.index.clone();
        index.generation = index
            .generation
            .checked_add(1)
            .ok_or_else(|| SuitError::Storage(String::from("generation exhausted")))?;
        let generation = index.generation;
        let (backend, seal, named) = (&mut self.backend, &self.seal, &mut self.named);
        let mut written = Vec::new();
        let applied = index.state.apply(changes, |_, bytes| {
            *named += 1;
            let name = seal.object_name(generation, *named)?;
            written.push(name.clone());
            let blob = Blob::Object(&name);
            backend.write(blob, &seal.seal(blob, &bytes)?)?;
            Ok::<_, SuitError>(name)
        });
        match applied {
            Ok(()) => Ok(Staged { index }),
            Err(e) => {
                self.discard(written);
                Err(e)
            }
        }
    }

    /// Best-effort removal of objects of a commit that failed (whatever is left is
    /// collected on the next open).
    fn discard(&mut self, objects: Vec<String>) {
        for name in objects {
            let _ = self.backend.remove(&name);
        }
    }

    /// Second half: writes the next index, syncs it with the staged objects, and makes it
    /// the index (the commit point), then hands dead objects to
    /// [`BlobBackend::remove_later`] without waiting for their removal. Removal failures
    /// after the commit point are not errors (the commit happened); the next open
    /// collects what is left. On failure before it, the staged objects are dropped.
    ///
    /// A [`BlobBackend::replace_index`] that fails after the index was replaced (its next
    /// index is gone: the rename happened, the directory fsync after it failed) has passed
    /// the commit point: the new index is authoritative and its objects are kept, and so
    /// are the old index's (a crash could still bring the old index back); the store
    /// moves to the new state, the error says that it may not be durable, and the store
    /// takes no further commit until it is reopened (the open settles what the disk has).
    ///
    /// # Errors
    /// `staged` was not staged from the current state, or the backend failed before the
    /// commit point (the state is unchanged); [`SuitError::Storage`] "not known to be
    /// durable" when the commit point passed but its durability failed (the state is the
    /// new one).
    pub fn publish(&mut self, staged: Staged) -> Result<(), SuitError> {
        self.prepare(&staged)?;
        let replaced = self.backend.replace_index();
        self.settle::<core::convert::Infallible>(staged, replaced, None)
            .map(drop)
    }

    /// [`IndexedStore::publish`] for a store whose generation is also recorded outside it
    /// (a TEE's monotonic counter, see [`IndexedStore::open_expecting`]): `record` runs
    /// on the calling thread at the same time as the index replacement
    /// ([`BlobBackend::replace_index_alongside`]; the directory backend renames on one of
    /// its threads), once the objects and the next index are durable, so the commit
    /// waits for one flush after that sync instead of two in a row. Either one is enough
    /// to commit: once the counter has the new generation an open that finds the old
    /// index rolls the next index forward (so, once `record` succeeded, the backend may
    /// leave the replacement's own flush to the background).
    ///
    /// Returns `record`'s error if it failed after the index was replaced (committed; the
    /// caller raises the counter later, an open accepts an index newer than its counter).
    /// A failure of either that leaves the outcome to the disk (replacement failed and
    /// the counter may or may not have its value, or the other way round) keeps every
    /// file a later open needs, moves the process to what is known, and closes the store
    /// to commits until it is reopened.
    ///
    /// # Errors
    /// As [`IndexedStore::publish`]; the replacement and `record` both failed: the state
    /// is the old one in the process, the next open finds the old or the new one.
    #[cfg(feature = "std")]
    pub fn publish_recorded<E>(
        &mut self,
        staged: Staged,
        record: impl FnOnce(u64) -> Result<(), E>,
    ) -> Result<Option<E>, SuitError> {
        self.prepare(&staged)?;
        let generation = staged.index.generation;
        let mut record = Some(record);
        // A panicking `record` is a counter that may or may not have moved.
        let mut recorded = Recorded::Failed(None);
        let replaced = self.backend.replace_index_alongside(&mut || {
            if let Some(record) = record.take() {
                let outcome =
                    std::panic::catch_unwind(core::panic::AssertUnwindSafe(|| record(generation)));
                recorded = match outcome {
                    Ok(Ok(())) => Recorded::Yes,
                    Ok(Err(e)) => Recorded::Failed(Some(e)),
                    Err(_) => Recorded::Failed(None),
                };
            }
            matches!(recorded, Recorded::Yes)
        });
        self.settle(staged, replaced, Some(recorded))
    }

    /// Writes the next index and syncs it with the staged objects: after this, a crash
    /// leaves files from which either state can be opened. On failure (the state is
    /// unchanged) the staged objects and the next index are dropped.
    fn prepare(&mut self, staged: &Staged) -> Result<(), SuitError> {
        if let Err(e) = self.open_to_commits() {
            // The next index on disk may be the one an open must roll forward: keep it.
            let unused = only_in(&staged.index.state.data, &self.index.state.data);
            self.discard(unused);
            return Err(e);
        }
        let prepared = if Some(staged.index.generation) == self.index.generation.checked_add(1) {
            staged.index.encode().and_then(|plain| {
                self.seal
                    .seal(Blob::Index, &plain)
                    .and_then(|sealed| self.backend.write(Blob::NextIndex, &sealed))
                    .and_then(|()| self.backend.sync())
            })
        } else {
            Err(SuitError::Storage(String::from(
                "staged changes are not based on the current state",
            )))
        };
        prepared.inspect_err(|_| self.abandon(&staged.index))
    }

    /// Refuses commits while an earlier one's outcome is left to the disk.
    fn open_to_commits(&self) -> Result<(), SuitError> {
        match &self.closed {
            None => Ok(()),
            Some(reason) => Err(SuitError::Storage(format!(
                "store closed to commits until reopened: {reason}"
            ))),
        }
    }

    /// Drops what a commit of `index` wrote: its objects and the next index.
    fn abandon(&mut self, index: &Index) {
        let unused = only_in(&index.state.data, &self.index.state.data);
        self.discard(unused);
        let _ = self.backend.discard_next_index();
    }

    /// After the replacement (and the record, if any): which state the process is in and
    /// what to delete.
    fn settle<E>(
        &mut self,
        staged: Staged,
        replaced: Result<(), SuitError>,
        recorded: Option<Recorded<E>>,
    ) -> Result<Option<E>, SuitError> {
        // The next index is gone once renamed into place: the commit point has passed.
        let renamed = replaced.is_ok() || matches!(self.backend.read(Blob::NextIndex), Ok(None));
        match (replaced, recorded) {
            (Ok(()), recorded) => {
                let dead = only_in(&self.index.state.data, &staged.index.state.data);
                self.index = staged.index;
                // Garbage now: the commit does not wait for its removal.
                for name in dead {
                    let _ = self.backend.remove_later(&name);
                }
                Ok(match recorded {
                    Some(Recorded::Failed(e)) => e,
                    _ => None,
                })
            }
            // Replaced or counted, but not known to be both: keep every object (the old
            // index may come back, or the next one be rolled forward) and the next index.
            (Err(e), Some(Recorded::Yes)) => {
                self.index = staged.index;
                self.closed = Some(e.to_string());
                Ok(None)
            }
            (Err(e), None | Some(Recorded::Failed(_))) if renamed => {
                self.index = staged.index;
                self.closed = Some(e.to_string());
                Err(SuitError::Storage(format!(
                    "committed, but not known to be durable: {e}"
                )))
            }
            (Err(e), None) => {
                self.abandon(&staged.index);
                Err(e)
            }
            (Err(e), Some(Recorded::Failed(_))) => {
                // The counter may have the new generation: the next index must stay for
                // the open to roll it forward; the process keeps the old state.
                self.closed = Some(e.to_string());
                Err(e)
            }
        }
    }
}

/// Whether a [`IndexedStore::publish_recorded`] record happened.
enum Recorded<E> {
    Yes,
    /// It failed (with its error; `None` when it panicked): it may or may not have.
    Failed(Option<E>),
}

/// Object names in `a` that `b` does not use.
fn only_in(a: &BTreeMap<ComponentId, String>, b: &BTreeMap<ComponentId, String>) -> Vec<String> {
    let keep: BTreeSet<&String> = b.values().collect();
    a.values().filter(|n| !keep.contains(n)).cloned().collect()
}

impl<B: BlobBackend, S: Seal> Storage for IndexedStore<B, S> {
    fn read(&self, id: &ComponentId) -> Result<Option<Cow<'_, [u8]>>, SuitError> {
        match self.index.state.data.get(id) {
            None => Ok(None),
            Some(name) => self.object(name).map(|b| Some(Cow::Owned(b))),
        }
    }

    fn owners(&self, id: &ComponentId) -> Result<BTreeSet<ComponentId>, SuitError> {
        Ok(self.index.state.owners_of(id))
    }

    fn linked_by(&self, owner: &ComponentId) -> Result<Vec<ComponentId>, SuitError> {
        Ok(self.index.state.links_held_by(owner))
    }

    fn sequence_number(&self, manifest: &ComponentId) -> Result<Option<u64>, SuitError> {
        Ok(self.index.state.sequence_numbers.get(manifest).copied())
    }

    fn signer(&self, manifest: &ComponentId) -> Result<Option<SignerId>, SuitError> {
        Ok(self.index.state.signers.get(manifest).cloned())
    }

    fn manifest_ids(&self) -> Result<Vec<ComponentId>, SuitError> {
        Ok(self.index.state.installed())
    }

    fn commit(&mut self, changes: Changes) -> Result<(), SuitError> {
        let staged = self.stage(changes)?;
        self.publish(staged)
    }
}
