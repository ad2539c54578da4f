//! [`SimTee`]: the software TEE's device side. A state directory where every file is
//! sealed (AES-256-GCM under a root key kept outside it), a monotonic-counter stand-in per
//! store so that putting back an older copy of the directory is detected, the device
//! identity (ueid, TEEP key, attestation key, TC decryption key) created on first start,
//! a sealed store per TA, and invocation of installed TAs in the [`Runtime`].
//!
//! Layout (threat model and mapping to real TEEs: `docs/tee-backends.md`):
//! * `<state>/suit/`: the SUIT state (teep-suit's [`IndexedStore`] over a directory,
//!   sealed): TCs, stored manifests, links, sequence numbers;
//! * `<state>/tee/`: the TEE's own state, the same kind of store under another key: the
//!   identity, the Agent's state blob, and every TA's key-value entries;
//! * `<state>.root-key` (mode 0600): the 32-byte root key, the stand-in for a
//!   hardware-fused key; each store seals under a key derived from it (HKDF-SHA-256, one
//!   label per store, so a blob of one store never opens in the other);
//! * `<state>.counters/{suit,tee}`: the last generation each store committed, the stand-in
//!   for a hardware monotonic counter; a store older than its counter is refused.
//!
//! A component is a TA when the last segment of its component ID is `ta` or ends in
//! `.wasm` ([`is_ta`]); its contents must pass [`Runtime::validate`] before a commit that
//! writes them is made ([`SuitError::ComponentRejected`] otherwise, nothing committed).

use alloc::borrow::Cow;
use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;
use teep_attest::EatClaims;
use teep_cose::encrypt::DecryptionKey;
use teep_cose::zeroize::Zeroizing;
use teep_cose::{Algorithm, CoseError, CryptoProvider, Curve, PrivateKey, PublicKey, Signer};
use teep_suit::dir::DirBackend;
use teep_suit::processor::{Fetcher, KeyDecryptor, NoFetcher};
use teep_suit::storage::{Changes, Storage};
use teep_suit::store::{AesGcmSeal, Blob, BlobBackend, IndexedStore};
use teep_suit::trust::SignerId;
use teep_suit::{ComponentId, SuitError};

use super::runtime::{Invocation, Limits, Perso, Runtime, RuntimeError};
use super::store::{StoreError, TaStore};
use crate::tee::{Tee, TeeError, UpdateParts};

/// Why the software TEE could not open or do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A file outside the stores (root key, counter) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The root key file may be read by others than its owner: a key anyone may read
    /// protects nothing, so the TEE refuses to start with it.
    #[error("root key {path} has mode {mode:o}; it must be readable by its owner only (0600)")]
    RootKeyExposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The root key file is not 32 bytes.
    #[error("root key {0} is not a 32-byte key")]
    RootKeyInvalid(PathBuf),
    /// A counter is missing or damaged while the root key exists: without it a rolled-back
    /// state could not be told from the real one.
    #[error("monotonic counter {0} is missing or damaged")]
    Counter(PathBuf),
    /// A store failed: damaged or tampered with ([`SuitError::StateTampered`]), older than
    /// its counter ([`SuitError::StateRolledBack`]), or an I/O failure.
    #[error(transparent)]
    Store(#[from] SuitError),
    /// The sealed identity does not decode (it opened, so this is a bug or a format
    /// change, not tampering).
    #[error("device identity: {0}")]
    Identity(String),
    /// Key generation or a signer failed.
    #[error(transparent)]
    Crypto(#[from] CoseError),
    /// Only TAs ([`is_ta`]) are invoked.
    #[error("{0} is not a TA component")]
    NotATa(ComponentId),
    /// No TA is installed under that component ID.
    #[error("TA {0} is not installed")]
    NotInstalled(ComponentId),
    /// The TA failed to validate or to run.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Where a [`SimTee`] keeps its files; [`SimConfig::new`] puts the root key and the
/// counters beside the state directory.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The sealed state directory (created if missing).
    pub state_dir: PathBuf,
    /// The root key file (created mode 0600 on first start).
    pub root_key: PathBuf,
    /// The directory of the counter stand-ins.
    pub counters: PathBuf,
    /// Limits TAs run under.
    pub limits: Limits,
    /// What the device claims about itself in Evidence besides its `ueid` (which is always
    /// the identity's): `oemid`, `hwmodel`, `hwversion`, `manifests`, ... A real TEE reads
    /// these from its hardware; the software TEE is told them (the Verifier's reference
    /// values must match).
    pub claims: EatClaims,
    /// The algorithm the TEEP key signs with: ESP256 (default), or ES256 (-7) for older
    /// TAMs that offer only `[[18, -7]]` (the same P-256 key, so the identity and its
    /// thumbprint do not change).
    pub teep_algorithm: Algorithm,
}

impl SimConfig {
    /// `state_dir` with `<state_dir>.root-key` and `<state_dir>.counters` beside it.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        let state_dir = state_dir.into();
        let beside = |suffix: &str| {
            let mut name = state_dir
                .file_name()
                .map_or_else(|| OsString::from("tee"), OsString::from);
            name.push(suffix);
            state_dir.with_file_name(name)
        };
        Self {
            root_key: beside(".root-key"),
            counters: beside(".counters"),
            state_dir,
            limits: Limits::default(),
            claims: EatClaims::default(),
            teep_algorithm: Algorithm::Esp256,
        }
    }
}

/// Whether the component `id` is a TA: its last segment is `ta` (the TEEP examples'
/// `.../<app>/ta`) or ends in `.wasm`.
pub fn is_ta(id: &ComponentId) -> bool {
    id.0.last()
        .is_some_and(|last| last.as_slice() == b"ta" || last.ends_with(b".wasm"))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SimError + '_ {
    move |source| SimError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one: a fresh
/// file beside it, fsynced, renamed over it, the directory fsynced.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SimError> {
    let err = io_error(path);
    let mut tmp = OsString::from(path.as_os_str());
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
        .and_then(|()| fs::rename(&tmp, path));
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    written
        .and_then(|()| dir.map_or(Ok(()), |d| fs::File::open(d).and_then(|d| d.sync_all())))
        .map_err(err)
}

/// The stand-in for one hardware monotonic counter: the last generation its store
/// committed, in a file outside the state directory.
#[derive(Debug)]
struct Counter {
    path: PathBuf,
    value: u64,
}

impl Counter {
    fn load(path: PathBuf) -> Result<Self, SimError> {
        let bytes = fs::read(&path).map_err(|_| SimError::Counter(path.clone()))?;
        let value = <[u8; 8]>::try_from(bytes.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| SimError::Counter(path.clone()))?;
        Ok(Self { path, value })
    }

    fn reset(path: PathBuf) -> Result<Self, SimError> {
        write_atomic(&path, &0u64.to_be_bytes(), 0o600)?;
        Ok(Self { path, value: 0 })
    }

    /// Raises the counter to `generation` (never lowers it): 8 bytes written in place and
    /// synced, one sector write as a hardware counter increment is one operation (a
    /// rename would cost two more syncs on every commit).
    fn raise(&mut self, generation: u64) -> Result<(), SimError> {
        if generation > self.value {
            fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|mut f| {
                    f.write_all(&generation.to_be_bytes())
                        .and_then(|()| f.sync_data())
                })
                .map_err(io_error(&self.path))?;
            self.value = generation;
        }
        Ok(())
    }
}

/// Any blob backend behind one type (the directory, or the directory with injected
/// faults in tests).
struct Backend(Box<dyn BlobBackend + Send + Sync>);

impl core::fmt::Debug for Backend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Backend")
    }
}

impl BlobBackend for Backend {
    fn read(&self, blob: Blob<'_>) -> Result<Option<Vec<u8>>, SuitError> {
        self.0.read(blob)
    }
    fn write(&mut self, blob: Blob<'_>, bytes: &[u8]) -> Result<(), SuitError> {
        self.0.write(blob, bytes)
    }
    fn sync(&mut self) -> Result<(), SuitError> {
        self.0.sync()
    }
    fn replace_index(&mut self) -> Result<(), SuitError> {
        self.0.replace_index()
    }
    fn replace_index_alongside(
        &mut self,
        alongside: &mut dyn FnMut() -> bool,
    ) -> Result<(), SuitError> {
        self.0.replace_index_alongside(alongside)
    }
    fn remove(&mut self, object: &str) -> Result<(), SuitError> {
        self.0.remove(object)
    }
    fn remove_later(&mut self, object: &str) -> Result<(), SuitError> {
        self.0.remove_later(object)
    }
    fn discard_next_index(&mut self) -> Result<(), SuitError> {
        self.0.discard_next_index()
    }
    fn objects(&self) -> Result<Vec<String>, SuitError> {
        self.0.objects()
    }
}

/// Makes the backend of a store from its directory.
pub type WrapBackend<'w> = &'w dyn Fn(DirBackend) -> Box<dyn BlobBackend + Send + Sync>;

/// A sealed store and its counter: every commit raises the counter to the new generation.
#[derive(Debug)]
struct CountedStore {
    name: &'static str,
    store: IndexedStore<Backend, AesGcmSeal<'static>>,
    counter: Counter,
}

impl CountedStore {
    fn open(
        name: &'static str,
        config: &SimConfig,
        provider: &'static dyn CryptoProvider,
        root: &[u8; 32],
        counter: Counter,
        wrap: WrapBackend<'_>,
    ) -> Result<Self, SimError> {
        let mut key = Zeroizing::new([0u8; 32]);
        let label = ["teep-sim store v1: ", name].concat();
        provider.hkdf_sha256(root, b"", label.as_bytes(), &mut *key)?;
        let backend = Backend(wrap(DirBackend::new(config.state_dir.join(name))?));
        let store =
            IndexedStore::open_expecting(backend, AesGcmSeal::new(provider, *key), counter.value)?;
        let mut opened = Self {
            name,
            store,
            counter,
        };
        // A crash between a commit and its counter update leaves the store one ahead.
        opened.counter.raise(opened.store.generation())?;
        Ok(opened)
    }

    /// Commits with the counter raised at the same time as the index replacement, once
    /// the objects and the next index are durable: one flush after the sync pass
    /// instead of two in a row (`IndexedStore::publish_recorded`).
    fn commit(&mut self, changes: Changes) -> Result<(), SuitError> {
        let staged = self.store.stage(changes)?;
        let generation = staged.generation();
        let counter = &mut self.counter;
        let lagging = self
            .store
            .publish_recorded(staged, move |g| counter.raise(g))
            .inspect_err(|e| {
                tracing::warn!(store = self.name, generation, error = %e, "commit failed");
            })?;
        // The commit happened: a counter that could not follow is caught up at the next
        // open (a newer store is accepted), so this is not the commit's failure.
        if let Some(e) = lagging {
            tracing::warn!(store = self.name, generation, error = %e, "counter not raised");
        }
        tracing::debug!(store = self.name, generation, "sealed state committed");
        Ok(())
    }

    fn read(&self, id: &ComponentId) -> Result<Option<Vec<u8>>, SuitError> {
        self.store.read(id).map(|v| v.map(Cow::into_owned))
    }
}

/// The SUIT [`Storage`] of a [`SimTee`]: the sealed SUIT store, refusing TA images that
/// do not validate.
#[derive(Debug)]
pub struct SimStorage {
    inner: CountedStore,
    runtime: Runtime,
}

impl Storage for SimStorage {
    fn read(&self, id: &ComponentId) -> Result<Option<Cow<'_, [u8]>>, SuitError> {
        self.inner.store.read(id)
    }
    fn owners(&self, id: &ComponentId) -> Result<BTreeSet<ComponentId>, SuitError> {
        self.inner.store.owners(id)
    }
    fn linked_by(&self, owner: &ComponentId) -> Result<Vec<ComponentId>, SuitError> {
        self.inner.store.linked_by(owner)
    }
    fn sequence_number(&self, manifest: &ComponentId) -> Result<Option<u64>, SuitError> {
        self.inner.store.sequence_number(manifest)
    }
    fn signer(&self, manifest: &ComponentId) -> Result<Option<SignerId>, SuitError> {
        self.inner.store.signer(manifest)
    }
    fn manifest_ids(&self) -> Result<Vec<ComponentId>, SuitError> {
        self.inner.store.manifest_ids()
    }

    /// Validates every TA image written, then commits sealed (all or nothing).
    fn commit(&mut self, changes: Changes) -> Result<(), SuitError> {
        for (id, bytes) in &changes.data {
            if let Some(bytes) = bytes.as_deref().filter(|_| is_ta(id)) {
                self.runtime
                    .validate(bytes)
                    .map_err(|e| SuitError::ComponentRejected {
                        component: id.clone(),
                        reason: e.to_string(),
                    })?;
            }
        }
        self.inner.commit(changes)
    }
}

/// Where the TEE's own entries live in its store: one-segment IDs for the TEE, three
/// segments `kv / <TA component> / <key>` for TA entries, so neither can name the other.
const IDENTITY: &[u8] = b"identity";
const AGENT_STATE: &[u8] = b"agent-state";
const KV: &[u8] = b"kv";

fn kv_id(component: &[u8], key: &[u8]) -> ComponentId {
    ComponentId(vec![KV.to_vec(), component.to_vec(), key.to_vec()])
}

fn tee_id(name: &[u8]) -> ComponentId {
    ComponentId(vec![name.to_vec()])
}

/// The TEE's own sealed store, and through it each TA's [`TaStore`].
#[derive(Debug)]
struct TeeStore(CountedStore);

fn backend_error(e: SuitError) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl TaStore for TeeStore {
    fn get(&self, component: &[u8], key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.read(&kv_id(component, key)).map_err(backend_error)
    }

    fn put_all(
        &mut self,
        component: &[u8],
        writes: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let mut changes = Changes::default();
        for (key, value) in writes {
            changes
                .data
                .insert(kv_id(component, key), Some(value.clone()));
        }
        self.0.commit(changes).map_err(backend_error)
    }
}

/// The device's secrets, sealed in the TEE's store as CBOR
/// `[1, ueid, teep key, attestation key, decryption key]` (keys as COSE_Key with `d`).
#[derive(Clone)]
struct Identity {
    ueid: Vec<u8>,
    teep: PrivateKey,
    attestation: PrivateKey,
    decryption: PrivateKey,
}

/// RFC 9711 §4.2.1.1: a random UEID is type byte 0x01 and 16, 24 or 32 random bytes.
const UEID_RAND: u8 = 0x01;
const IDENTITY_VERSION: u64 = 1;

impl Identity {
    fn generate(provider: &dyn CryptoProvider) -> Result<Self, SimError> {
        let mut ueid = vec![0u8; 33];
        provider.fill_random(ueid.get_mut(1..).unwrap_or_default())?;
        if let Some(t) = ueid.first_mut() {
            *t = UEID_RAND;
        }
        Ok(Self {
            ueid,
            teep: PrivateKey::generate(Curve::P256)?,
            attestation: PrivateKey::generate(Curve::P256)?,
            decryption: PrivateKey::generate(Curve::P256)?,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut e = minicbor::Encoder::new(&mut out);
        let _ = e.array(5).and_then(|e| e.u64(IDENTITY_VERSION));
        let _ = e.bytes(&self.ueid);
        for key in [&self.teep, &self.attestation, &self.decryption] {
            let _ = e.bytes(&key.to_cose_key_bytes());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, SimError> {
        let bad = |what: &str| SimError::Identity(what.to_string());
        let mut d = minicbor::Decoder::new(bytes);
        if d.array().ok().flatten() != Some(5) || d.u64().ok() != Some(IDENTITY_VERSION) {
            return Err(bad("unknown format"));
        }
        let ueid = d.bytes().map_err(|_| bad("ueid"))?.to_vec();
        let mut key = || {
            d.bytes()
                .map_err(|_| bad("key"))
                .and_then(|k| PrivateKey::from_cose_key_bytes(k).map_err(SimError::from))
        };
        Ok(Self {
            ueid,
            teep: key()?,
            attestation: key()?,
            decryption: key()?,
        })
    }
}

/// One public key, in the forms the TAM operator and a Verifier import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublicKeyView {
    /// The COSE_Key (CBOR), hex.
    pub cose_key: String,
    /// SubjectPublicKeyInfo PEM.
    pub pem: String,
    /// RFC 9679 COSE_Key thumbprint (SHA-256), hex: the `kid` the key signs with.
    pub thumbprint: String,
}

impl PublicKeyView {
    fn of(key: &PublicKey) -> Self {
        Self {
            cose_key: hex::encode(key.to_cose_key_bytes()),
            pem: key.to_pem(),
            thumbprint: hex::encode(key.thumbprint()),
        }
    }
}

/// The device identity's public half: what enrolment gives the TAM (TEEP key, decryption
/// key) and the Verifier's endorsements (ueid, attestation key). Serializes to JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublicIdentity {
    /// The UEID (RFC 9711, random type), hex.
    pub ueid: String,
    /// Signs TEEP messages (ESP256).
    pub teep_key: PublicKeyView,
    /// Signs Evidence (ESP256).
    pub attestation_key: PublicKeyView,
    /// TCs are encrypted to it (ECDH-ES+A128KW on P-256).
    pub decryption_key: PublicKeyView,
}

/// A personalization data TC: its name and contents.
type NamedData = (Vec<u8>, Vec<u8>);

/// The software TEE (see the module documentation).
pub struct SimTee {
    provider: &'static dyn CryptoProvider,
    suit: SimStorage,
    tee: TeeStore,
    identity: Identity,
    teep_signer: Box<dyn Signer>,
    attestation_signer: Box<dyn Signer>,
    /// [`SimConfig::claims`] with the identity's ueid.
    claims: EatClaims,
    /// The decryption key as the SUIT processor uses it (lent out by [`Tee::update_parts`]).
    decryptor: KeyDecryptor<'static>,
    /// What resolves payload URIs ([`SimTee::set_fetcher`]; none by default).
    fetcher: Box<dyn Fetcher>,
}

impl core::fmt::Debug for SimTee {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SimTee")
            .field("ueid", &hex::encode(&self.identity.ueid))
            .finish_non_exhaustive()
    }
}

/// The root key, created on first start. `None` from [`read_root_key`] means a fresh
/// device: counters are reset first, then the key is written (a crash in between leaves
/// no key, so the next start is a first start again).
fn read_root_key(path: &Path) -> Result<Option<Zeroizing<[u8; 32]>>, SimError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SimError::RootKeyExposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    let bytes = Zeroizing::new(fs::read(path).map_err(io_error(path))?);
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(|k| Some(Zeroizing::new(k)))
        .map_err(|_| SimError::RootKeyInvalid(path.to_path_buf()))
}

/// Decrypts TC payloads with the identity's decryption key (ECDH-ES+A128KW).
fn key_decryptor(
    provider: &'static dyn CryptoProvider,
    identity: &Identity,
) -> KeyDecryptor<'static> {
    KeyDecryptor {
        provider,
        keys: vec![DecryptionKey::EcdhEs(identity.decryption.clone())],
    }
}

const STORES: [&str; 2] = ["suit", "tee"];

/// The counters of both stores, in [`STORES`] order.
fn counters(
    mut f: impl FnMut(&str) -> Result<Counter, SimError>,
) -> Result<[Counter; 2], SimError> {
    let [a, b] = STORES;
    Ok([f(a)?, f(b)?])
}

impl SimTee {
    /// Opens the software TEE described by `config`, creating the root key, the counters
    /// and the device identity on first start.
    ///
    /// # Errors
    /// [`SimError::RootKeyExposed`] / [`SimError::RootKeyInvalid`] / [`SimError::Counter`];
    /// a store that does not open with the root key ([`SuitError::StateTampered`]) or is
    /// older than its counter ([`SuitError::StateRolledBack`]); I/O failures.
    pub fn open(config: &SimConfig) -> Result<Self, SimError> {
        Self::open_with_backend(config, &|dir| Box::new(dir))
    }

    /// As [`SimTee::open`], with each store's directory backend passed through `wrap`
    /// (fault injection: [`super::fault::Faults::wrap`]).
    ///
    /// # Errors
    /// Those of [`SimTee::open`].
    pub fn open_with_backend(config: &SimConfig, wrap: WrapBackend<'_>) -> Result<Self, SimError> {
        let provider = teep_cose::default_provider();
        fs::create_dir_all(&config.state_dir).map_err(io_error(&config.state_dir))?;
        fs::create_dir_all(&config.counters).map_err(io_error(&config.counters))?;
        let counter_path = |name: &str| config.counters.join(name);
        let (root, [suit_counter, tee_counter]) = match read_root_key(&config.root_key)? {
            Some(root) => (root, counters(|n| Counter::load(counter_path(n)))?),
            None => {
                let counters = counters(|n| Counter::reset(counter_path(n)))?;
                let mut root = Zeroizing::new([0u8; 32]);
                provider.fill_random(&mut *root)?;
                write_atomic(&config.root_key, &*root, 0o600)?;
                tracing::info!(root_key = %config.root_key.display(), "created the root key");
                (root, counters)
            }
        };
        let [suit_name, tee_name] = STORES;
        let suit = CountedStore::open(suit_name, config, provider, &root, suit_counter, wrap)?;
        let mut tee = TeeStore(CountedStore::open(
            tee_name,
            config,
            provider,
            &root,
            tee_counter,
            wrap,
        )?);
        let identity = match tee.0.read(&tee_id(IDENTITY))? {
            Some(bytes) => Identity::decode(&bytes)?,
            None => {
                let identity = Identity::generate(provider)?;
                let mut changes = Changes::default();
                changes
                    .data
                    .insert(tee_id(IDENTITY), Some(identity.encode()));
                tee.0.commit(changes)?;
                tracing::info!(ueid = %hex::encode(&identity.ueid), "created the device identity");
                identity
            }
        };
        let teep_signer = provider.signer(&identity.teep, config.teep_algorithm)?;
        let attestation_signer = provider.signer(&identity.attestation, Algorithm::Esp256)?;
        tracing::info!(
            state = %config.state_dir.display(),
            ueid = %hex::encode(&identity.ueid),
            suit_generation = suit.store.generation(),
            tee_generation = tee.0.store.generation(),
            "software TEE opened"
        );
        let claims = EatClaims {
            ueid: Some(identity.ueid.clone()),
            ..config.claims.clone()
        };
        let decryptor = key_decryptor(provider, &identity);
        Ok(Self {
            provider,
            suit: SimStorage {
                inner: suit,
                runtime: Runtime::new(config.limits),
            },
            tee,
            identity,
            teep_signer,
            attestation_signer,
            claims,
            decryptor,
            fetcher: Box::new(NoFetcher),
        })
    }

    /// Lets Updates fetch payloads given by URI with `fetcher` (off by default: a manifest
    /// naming a URI then fails to install).
    pub fn set_fetcher(&mut self, fetcher: Box<dyn Fetcher>) {
        self.fetcher = fetcher;
    }

    /// The crypto provider the TEE uses.
    pub fn provider(&self) -> &'static dyn CryptoProvider {
        self.provider
    }

    /// The SUIT storage the manifest processor installs into.
    pub fn storage(&self) -> &SimStorage {
        &self.suit
    }

    /// The SUIT storage, for the processor to commit into.
    pub fn storage_mut(&mut self) -> &mut SimStorage {
        &mut self.suit
    }

    /// The device's UEID (33 bytes: 0x01 and 32 random bytes).
    pub fn ueid(&self) -> &[u8] {
        &self.identity.ueid
    }

    /// Signs TEEP messages ([`SimConfig::teep_algorithm`]).
    pub fn teep_signer(&self) -> &dyn Signer {
        &*self.teep_signer
    }

    /// Signs Evidence (ESP256).
    pub fn attestation_signer(&self) -> &dyn Signer {
        &*self.attestation_signer
    }

    /// The TEEP key's public half.
    pub fn teep_public_key(&self) -> &PublicKey {
        self.identity.teep.public_key()
    }

    /// The attestation key's public half.
    pub fn attestation_public_key(&self) -> &PublicKey {
        self.identity.attestation.public_key()
    }

    /// The public half of the key TCs are encrypted to.
    pub fn decryption_public_key(&self) -> &PublicKey {
        self.identity.decryption.public_key()
    }

    /// Decrypts TC payloads with the device's decryption key (ECDH-ES+A128KW).
    pub fn decryptor(&self) -> KeyDecryptor<'static> {
        key_decryptor(self.provider, &self.identity)
    }

    /// The identity's public half, for enrolment and endorsements.
    pub fn public_identity(&self) -> PublicIdentity {
        PublicIdentity {
            ueid: hex::encode(&self.identity.ueid),
            teep_key: PublicKeyView::of(self.teep_public_key()),
            attestation_key: PublicKeyView::of(self.attestation_public_key()),
            decryption_key: PublicKeyView::of(self.decryption_public_key()),
        }
    }

    /// The Agent's persisted state (opaque to the TEE), if it saved any.
    ///
    /// # Errors
    /// The sealed store fails.
    pub fn agent_state(&self) -> Result<Option<Vec<u8>>, SimError> {
        Ok(self.tee.0.read(&tee_id(AGENT_STATE))?)
    }

    /// Replaces the Agent's persisted state, sealed and atomically.
    ///
    /// # Errors
    /// The sealed store fails (the old state is kept).
    pub fn set_agent_state(&mut self, state: &[u8]) -> Result<(), SimError> {
        let mut changes = Changes::default();
        changes
            .data
            .insert(tee_id(AGENT_STATE), Some(state.to_vec()));
        Ok(self.tee.0.commit(changes)?)
    }

    /// The personalization data of the TA `component`: the non-manifest components linked
    /// by manifests that depend on a manifest linking the TA, each named by the last
    /// segment of its component ID.
    fn perso_of(&self, component: &ComponentId) -> Result<Vec<NamedData>, SimError> {
        let storage = &self.suit;
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for manifest in storage.owners(component)? {
            for dependent in storage.owners(&manifest)? {
                if dependent == manifest {
                    continue;
                }
                for id in storage.linked_by(&dependent)? {
                    let is_data = storage.sequence_number(&id)?.is_none() && !is_ta(&id);
                    if !is_data || !seen.insert(id.clone()) {
                        continue;
                    }
                    if let (Some(name), Some(data)) = (id.0.last(), storage.inner.read(&id)?) {
                        out.push((name.clone(), data));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Invokes the installed TA `component` on `input`: its module is read from sealed
    /// storage and run with its own store and the personalization data that depends on it.
    ///
    /// # Errors
    /// [`SimError::NotATa`], [`SimError::NotInstalled`], the runtime's errors (a failed
    /// invocation changes nothing in the TA's store), store failures.
    pub fn invoke(
        &mut self,
        component: &ComponentId,
        input: &[u8],
    ) -> Result<Invocation, SimError> {
        if !is_ta(component) {
            return Err(SimError::NotATa(component.clone()));
        }
        let module = self
            .suit
            .inner
            .read(component)?
            .ok_or_else(|| SimError::NotInstalled(component.clone()))?;
        let ta = self.suit.runtime.validate(&module)?;
        let perso_data = self.perso_of(component)?;
        let perso: Vec<Perso<'_>> = perso_data
            .iter()
            .map(|(name, data)| Perso { name, data })
            .collect();
        let invocation = ta.invoke(&mut self.tee, &component.to_cbor(), &perso, input)?;
        tracing::info!(ta = %component, fuel = invocation.fuel_used, "TA invoked");
        Ok(invocation)
    }

    /// Both stores' logical contents (SUIT state, TEE state): to compare states in tests.
    ///
    /// # Errors
    /// A sealed object fails to open.
    pub fn snapshot(&self) -> Result<[teep_suit::storage::State<Vec<u8>>; 2], SimError> {
        Ok([
            self.suit.inner.store.snapshot()?,
            self.tee.0.store.snapshot()?,
        ])
    }
}

/// The Agent engine over the software TEE: each call maps onto the inherent method of the
/// same purpose (the engine's state blob is the sealed `agent_state`).
impl Tee for SimTee {
    fn storage(&self) -> &dyn Storage {
        &self.suit
    }

    fn update_parts(&mut self) -> UpdateParts<'_> {
        UpdateParts {
            storage: &mut self.suit,
            decryptor: Some(&self.decryptor),
            fetcher: self.fetcher.as_ref(),
        }
    }

    fn teep_signer(&self) -> &dyn Signer {
        Self::teep_signer(self)
    }

    fn attestation_signer(&self) -> &dyn Signer {
        Self::attestation_signer(self)
    }

    fn device_claims(&self) -> EatClaims {
        self.claims.clone()
    }

    fn load_state(&self) -> Result<Option<Vec<u8>>, TeeError> {
        self.agent_state()
            .map_err(|e| TeeError::Storage(e.to_string()))
    }

    fn save_state(&mut self, state: &[u8]) -> Result<(), TeeError> {
        self.set_agent_state(state)
            .map_err(|e| TeeError::Storage(e.to_string()))
    }

    fn invoke(&mut self, component: &ComponentId, input: &[u8]) -> Result<Vec<u8>, TeeError> {
        Self::invoke(self, component, input)
            .map(|invocation| invocation.output)
            .map_err(|e| TeeError::Runtime(e.to_string()))
    }
}
