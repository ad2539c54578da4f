//! The indexed store over a directory: AES-GCM sealing (no plaintext at rest, tampering,
//! swapping and rollback detected), crash consistency of every commit step for both the
//! plaintext and the sealed store, and the installed-manifest listing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use common::*;
use teep_cose::{Algorithm, CryptoProvider, Curve, PrivateKey, TrustStore};
use teep_suit::builder;
use teep_suit::dir::{DirBackend, DirStorage, SealedDirStorage};
use teep_suit::model::Envelope;
use teep_suit::processor::{DeviceIdentity, Processor};
use teep_suit::storage::{Changes, InstalledManifest, MemoryStorage, Storage};
use teep_suit::store::{AesGcmSeal, Blob, BlobBackend, IndexedStore, NoSeal, Seal};
use teep_suit::trust::{SignerId, TrustAnchors};
use teep_suit::{ComponentId, SuitError};

const KEY: [u8; 32] = [0x42; 32];
/// Bytes that occur in the image and nowhere else.
const IMAGE: &[u8] = b"IMAGE-PLAINTEXT-7f3a9c1e-must-never-reach-the-disk";

fn seal() -> AesGcmSeal<'static> {
    AesGcmSeal::new(&PROVIDER, KEY)
}

fn sealed(dir: &Path) -> Result<SealedDirStorage<'static>, SuitError> {
    SealedDirStorage::open(dir, seal(), 0)
}

struct Tam {
    key: PrivateKey,
    trust: TrustAnchors,
    device: DeviceIdentity,
}

impl Tam {
    fn new() -> Self {
        let key = PrivateKey::generate(Curve::P256).unwrap();
        let mut store = TrustStore::new();
        store.add_key(key.public_key().clone());
        Self {
            key,
            trust: TrustAnchors::unscoped(store),
            device: teep_device(),
        }
    }

    fn processor(&self) -> Processor<'_> {
        Processor::new(&PROVIDER, &self.trust, &self.device)
    }

    fn tc(&self, name: &str, seq: u64, payload: &[u8]) -> Vec<u8> {
        let built = builder::build(&spec(name, seq, payload), &PROVIDER).unwrap();
        let signer = PROVIDER.signer(&self.key, Algorithm::Esp256).unwrap();
        builder::sign(&built.envelope, signer.as_ref(), &PROVIDER).unwrap()
    }

    fn install(&self, store: &mut dyn Storage, env: &[u8]) -> Result<(), SuitError> {
        self.processor()
            .install(store, env, None)
            .result
            .map(|_| ())
            .map_err(|f| f.error)
    }
}

/// Every file under `dir` with its contents.
fn files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            let bytes = std::fs::read(&path).unwrap();
            out.push((path, bytes));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("objects")).unwrap();
    for (path, bytes) in files(from) {
        std::fs::write(to.join(path.strip_prefix(from).unwrap()), bytes).unwrap();
    }
}

fn object_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn sealed_state_holds_no_plaintext_of_images_manifests_or_ids() {
    let tam = Tam::new();
    let env = tam.tc("a", 1, IMAGE);
    let manifest = Envelope::decode(&env).unwrap().manifest_bytes.to_vec();
    let needles: [&[u8]; 4] = [IMAGE, &manifest, b"SecureFS", b"https://tam.example/a.suit"];

    // The plaintext store has them all on disk: the search finds what is there.
    let plain = tempfile::tempdir().unwrap();
    tam.install(&mut DirStorage::open(plain.path()).unwrap(), &env)
        .unwrap();
    let on_disk = files(plain.path());
    for needle in needles {
        assert!(on_disk.iter().any(|(_, b)| contains(b, needle)));
    }

    let dir = tempfile::tempdir().unwrap();
    let mut store = sealed(dir.path()).unwrap();
    tam.install(&mut store, &env).unwrap();
    assert_eq!(store.read(&app("a")).unwrap().unwrap(), IMAGE);
    let on_disk = files(dir.path());
    assert_eq!(on_disk.len(), 3, "index and two objects");
    for (path, bytes) in &on_disk {
        for needle in needles {
            assert!(
                !contains(bytes, needle),
                "{} holds plaintext",
                path.display()
            );
        }
    }
}

#[test]
fn the_backend_is_readable_and_comes_back_with_the_seal() {
    let tam = Tam::new();
    let dir = tempfile::tempdir().unwrap();
    let mut store = sealed(dir.path()).unwrap();
    tam.install(&mut store, &tam.tc("a", 1, IMAGE)).unwrap();
    let before = store.snapshot().unwrap();
    let generation = store.generation();
    // The raw blobs, read through the store: the index is there, sealed.
    let raw_index = store.backend().read(Blob::Index).unwrap().unwrap();
    assert!(!contains(&raw_index, b"SecureFS"));
    assert_eq!(store.backend().objects().unwrap().len(), 2);
    // Backend and seal back: the same state reopens from them at its generation floor.
    let (backend, seal) = store.into_inner();
    let reopened = IndexedStore::open_expecting(backend, seal, generation).unwrap();
    assert_eq!(reopened.snapshot().unwrap(), before);
    assert_eq!(reopened.generation(), generation);
}

/// A sealed state directory with one TC installed, and its logical state.
fn installed_sealed() -> (tempfile::TempDir, MemoryStorage) {
    let tam = Tam::new();
    let dir = tempfile::tempdir().unwrap();
    let mut store = sealed(dir.path()).unwrap();
    tam.install(&mut store, &tam.tc("a", 1, IMAGE)).unwrap();
    let snapshot = store.snapshot().unwrap();
    (dir, snapshot)
}

#[test]
fn every_flipped_bit_of_a_sealed_file_is_detected() {
    let (dir, _) = installed_sealed();
    let mut tried = 0;
    for (path, bytes) in files(dir.path()) {
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let is_index = name == "index";
        for i in 0..bytes.len() {
            let copy = tempfile::tempdir().unwrap();
            copy_dir(dir.path(), copy.path());
            let mut bad = bytes.clone();
            bad[i] ^= 0x01 << (i % 8);
            std::fs::write(
                copy.path().join(path.strip_prefix(dir.path()).unwrap()),
                bad,
            )
            .unwrap();
            tried += 1;
            if is_index {
                assert_eq!(
                    sealed(copy.path()).unwrap_err(),
                    SuitError::StateTampered("index".into())
                );
                continue;
            }
            let store = sealed(copy.path()).unwrap();
            assert_eq!(
                store.snapshot().unwrap_err(),
                SuitError::StateTampered(name.clone())
            );
            // Exactly the component kept in that object fails; nothing of it is returned.
            let failing: Vec<_> = store
                .components()
                .filter(|id| store.read(id).is_err())
                .collect();
            assert_eq!(failing.len(), 1);
            assert_eq!(
                store.read(failing[0]).unwrap_err(),
                SuitError::StateTampered(name.clone())
            );
        }
    }
    assert!(tried > 300);
}

#[test]
fn swapped_or_misplaced_sealed_blobs_are_detected() {
    let (dir, snapshot) = installed_sealed();
    let names = object_names(dir.path());
    assert_eq!(names.len(), 2);
    let objects = dir.path().join("objects");
    let (a, b) = (objects.join(&names[0]), objects.join(&names[1]));
    let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // Swapped contents: each name now holds the other's ciphertext.
    std::fs::write(&a, &bytes_b).unwrap();
    std::fs::write(&b, &bytes_a).unwrap();
    let store = sealed(dir.path()).unwrap();
    for id in store.components() {
        assert!(matches!(
            store.read(id).unwrap_err(),
            SuitError::StateTampered(n) if names.contains(&n)
        ));
    }
    drop(store);

    // An object put in place of the index, and the index in place of an object.
    let index = std::fs::read(dir.path().join("index")).unwrap();
    std::fs::write(dir.path().join("index"), &bytes_a).unwrap();
    assert_eq!(
        sealed(dir.path()).unwrap_err(),
        SuitError::StateTampered("index".into())
    );
    std::fs::write(dir.path().join("index"), &index).unwrap();
    std::fs::write(&a, &index).unwrap();
    std::fs::write(&b, &bytes_b).unwrap();
    let store = sealed(dir.path()).unwrap();
    assert_eq!(
        store.snapshot().unwrap_err(),
        SuitError::StateTampered(names[0].clone())
    );
    drop(store);

    // Put back, everything opens again; under another key nothing does.
    std::fs::write(&a, &bytes_a).unwrap();
    assert_eq!(sealed(dir.path()).unwrap().snapshot().unwrap(), snapshot);
    let other = AesGcmSeal::new(&PROVIDER, [0x43; 32]);
    assert_eq!(
        IndexedStore::open_with(DirBackend::new(dir.path()).unwrap(), other).unwrap_err(),
        SuitError::StateTampered("index".into())
    );
    // A missing object is reported the same way.
    std::fs::remove_file(&b).unwrap();
    let store = sealed(dir.path()).unwrap();
    assert_eq!(
        store.snapshot().unwrap_err(),
        SuitError::StateTampered(names[1].clone())
    );
}

#[test]
fn restoring_an_older_copy_of_the_state_is_refused_by_generation() {
    let tam = Tam::new();
    let dir = tempfile::tempdir().unwrap();
    let mut store = sealed(dir.path()).unwrap();
    assert_eq!(store.generation(), 0);
    tam.install(&mut store, &tam.tc("a", 1, b"one")).unwrap();
    assert_eq!(store.generation(), 1);
    let old = tempfile::tempdir().unwrap();
    copy_dir(dir.path(), old.path());
    tam.install(&mut store, &tam.tc("a", 2, b"two")).unwrap();
    // The TEE's monotonic counter follows every commit.
    let counter = store.generation();
    assert_eq!(counter, 2);
    drop(store);

    // The host puts the old directory back: version 1 would install again.
    let _ = std::fs::remove_dir_all(dir.path());
    copy_dir(old.path(), dir.path());
    let before = files(dir.path());
    assert_eq!(
        SealedDirStorage::open(dir.path(), seal(), counter).unwrap_err(),
        SuitError::StateRolledBack {
            found: 1,
            expected: 2
        }
    );
    // Refused before anything was collected or changed.
    assert_eq!(files(dir.path()), before);
    // Without the counter the old state opens (and the rollback would succeed).
    let mut rolled = sealed(dir.path()).unwrap();
    assert_eq!(rolled.sequence_number(&app_manifest("a")).unwrap(), Some(1));
    drop(rolled.snapshot().unwrap());
    rolled = sealed(dir.path()).unwrap();
    assert_eq!(rolled.generation(), 1);

    // A deleted state directory is generation 0, also older than the counter.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        IndexedStore::open_expecting(DirBackend::new(empty.path()).unwrap(), seal(), counter)
            .unwrap_err(),
        SuitError::StateRolledBack {
            found: 0,
            expected: 2
        }
    );
    // The current state opens at its own generation (and a newer one than the counter).
    let current = tempfile::tempdir().unwrap();
    let mut store = sealed(current.path()).unwrap();
    tam.install(&mut store, &tam.tc("a", 1, b"one")).unwrap();
    tam.install(&mut store, &tam.tc("a", 2, b"two")).unwrap();
    tam.install(&mut store, &tam.tc("a", 3, b"three")).unwrap();
    drop(store);
    let store =
        IndexedStore::open_expecting(DirBackend::new(current.path()).unwrap(), seal(), counter)
            .unwrap();
    assert_eq!(store.generation(), 3);
}

#[test]
fn staged_changes_publish_only_onto_the_state_they_were_staged_from() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = DirStorage::open(dir.path()).unwrap();
    let change = |byte: u8| {
        let mut c = Changes::default();
        c.data
            .insert(ComponentId::from_strs(&["x"]), Some(vec![byte]));
        c
    };
    let first = store.stage(change(1)).unwrap();
    let second = store.stage(change(2)).unwrap();
    assert_eq!((first.generation(), second.generation()), (1, 1));
    // Publishing the first: its own contents, not the second's written meanwhile.
    store.publish(first).unwrap();
    let x = ComponentId::from_strs(&["x"]);
    assert_eq!(*store.read(&x).unwrap().unwrap(), [1]);
    let before = store.snapshot().unwrap();
    assert!(matches!(
        store.publish(second).unwrap_err(),
        SuitError::Storage(_)
    ));
    assert_eq!(store.snapshot().unwrap(), before);
    drop(store);
    let store = DirStorage::open(dir.path()).unwrap();
    assert_eq!(store.snapshot().unwrap(), before);
    assert_eq!(object_names(dir.path()).len(), 1);
    assert_eq!(store.generation(), 1);
}

#[test]
fn an_index_naming_a_path_outside_the_objects_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), b"not state").unwrap();
    for name in ["../secret", "", "a/b", "UPPER", &"1".repeat(65)] {
        // Format 2 by hand: [2, 1, [[["x"], name]], [], [], []].
        let mut index = vec![0x86, 0x02, 0x01, 0x81, 0x82, 0x81, 0x41, b'x'];
        let mut e = minicbor::Encoder::new(&mut index);
        e.str(name).unwrap();
        index.extend_from_slice(&[0x80, 0x80, 0x80]);
        std::fs::write(dir.path().join("index"), &index).unwrap();
        assert_eq!(
            DirStorage::open(dir.path()).unwrap_err(),
            SuitError::Malformed {
                what: "invalid object name",
                offset: 8
            },
            "{name:?}"
        );
    }
}

/// A backend that fails from its `n`th mutating step on, as if power were lost there: a
/// failed write leaves half its bytes behind, later steps never reach the disk. With
/// `recover`, only that step fails (a full disk, then space again).
struct Crash {
    inner: DirBackend,
    left: usize,
    steps: Rc<Cell<usize>>,
    recover: bool,
}

impl Crash {
    fn new(dir: &Path, left: usize, recover: bool) -> (Self, Rc<Cell<usize>>) {
        let steps = Rc::new(Cell::new(0));
        let crash = Self {
            inner: DirBackend::new(dir).unwrap(),
            left,
            steps: steps.clone(),
            recover,
        };
        (crash, steps)
    }

    fn step(&mut self) -> bool {
        self.steps.set(self.steps.get() + 1);
        if self.left == 0 {
            if self.recover {
                self.left = usize::MAX;
            }
            return false;
        }
        self.left -= 1;
        true
    }
}

fn lost() -> SuitError {
    SuitError::Storage("power lost".into())
}

impl BlobBackend for Crash {
    fn read(&self, blob: Blob<'_>) -> Result<Option<Vec<u8>>, SuitError> {
        self.inner.read(blob)
    }
    fn write(&mut self, blob: Blob<'_>, bytes: &[u8]) -> Result<(), SuitError> {
        if self.step() {
            self.inner.write(blob, bytes)
        } else {
            self.inner.write(blob, &bytes[..bytes.len() / 2])?;
            Err(lost())
        }
    }
    fn sync(&mut self) -> Result<(), SuitError> {
        if self.step() {
            self.inner.sync()
        } else {
            Err(lost())
        }
    }
    /// Two steps: the rename, then the directory fsync after it (power lost there: the
    /// index is already replaced).
    fn replace_index(&mut self) -> Result<(), SuitError> {
        if !self.step() {
            return Err(lost());
        }
        self.inner.replace_index()?;
        if self.step() { Ok(()) } else { Err(lost()) }
    }
    fn remove(&mut self, object: &str) -> Result<(), SuitError> {
        if self.step() {
            self.inner.remove(object)
        } else {
            Err(lost())
        }
    }
    fn objects(&self) -> Result<Vec<String>, SuitError> {
        self.inner.objects()
    }
}

/// Logical state and generation of a state directory, opened afresh.
fn state_of<S: Seal>(dir: &Path, seal: S) -> (MemoryStorage, u64) {
    let store = IndexedStore::open_with(DirBackend::new(dir).unwrap(), seal).unwrap();
    // No object is left that the index does not name.
    assert_eq!(object_names(dir).len(), store.components().count());
    (store.snapshot().unwrap(), store.generation())
}

type Op<'a> = &'a dyn Fn(&mut dyn Storage) -> Result<(), SuitError>;

/// Runs `op` on a copy of `start` with power lost at its `n`th step; returns the result,
/// the state found on reopening, and how many steps were tried.
fn run_crashing<S: Seal>(
    start: &Path,
    seal: S,
    reseal: S,
    op: Op<'_>,
    n: usize,
) -> (Result<(), SuitError>, (MemoryStorage, u64), usize) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(start, dir.path());
    let (backend, steps) = Crash::new(dir.path(), n, false);
    let mut store = IndexedStore::open_with(backend, seal).unwrap();
    let result = op(&mut store);
    drop(store);
    (result, state_of(dir.path(), reseal), steps.get())
}

/// Power lost at every step of `op` in turn leaves the state before or after it: never
/// anything else, and the old state only with a failure reported. The new state survives
/// exactly the crashes after the commit point: the directory fsync after the rename (a
/// failure is reported: durability unknown) and the `removals` steps.
fn crash_at_every_step<S: Seal>(
    start: &Path,
    make_seal: &dyn Fn() -> S,
    op: Op<'_>,
    removals: usize,
) {
    let before = state_of(start, make_seal());
    let (ok, after, total) = run_crashing(start, make_seal(), make_seal(), op, usize::MAX);
    ok.unwrap();
    assert_eq!(after.1, before.1 + 1);
    assert_ne!(after.0, before.0);
    let (mut saw_old, mut saw_new) = (0, 0);
    for n in 0..total {
        let (result, state, _) = run_crashing(start, make_seal(), make_seal(), op, n);
        if state == before {
            assert_eq!(result, Err(lost()), "power lost at step {n}");
            saw_old += 1;
        } else {
            assert_eq!(state, after, "power lost at step {n}");
            saw_new += 1;
        }
    }
    // New objects, the next index, their sync and the rename fail old; the directory
    // fsync after the rename and the removals new.
    assert_eq!((saw_old, saw_new), (total - removals - 1, removals + 1));
    assert!(saw_old >= 3);
}

fn every_step_of_install_update_and_delete<S: Seal>(make_seal: &dyn Fn() -> S) {
    let tam = Tam::new();
    let v1 = tam.tc("a", 1, b"one");
    let v2 = tam.tc("a", 2, b"two");
    let empty = tempfile::tempdir().unwrap();
    let installed = tempfile::tempdir().unwrap();
    let mut store =
        IndexedStore::open_with(DirBackend::new(installed.path()).unwrap(), make_seal()).unwrap();
    tam.install(&mut store, &v1).unwrap();
    drop(store);

    // Install: two objects (image, manifest); update: two new, two old removed; delete:
    // no new object, two removed.
    crash_at_every_step(empty.path(), make_seal, &|s| tam.install(s, &v1), 0);
    crash_at_every_step(installed.path(), make_seal, &|s| tam.install(s, &v2), 2);
    let delete: Op<'_> = &|s| {
        tam.processor()
            .uninstall(s, &app_manifest("a"), None)
            .result
            .map(|_| ())
            .map_err(|f| f.error)
    };
    crash_at_every_step(installed.path(), make_seal, delete, 2);
}

#[test]
fn a_crash_at_any_step_leaves_the_old_or_the_new_plaintext_state() {
    every_step_of_install_update_and_delete(&|| NoSeal);
}

#[test]
fn a_crash_at_any_step_leaves_the_old_or_the_new_sealed_state() {
    every_step_of_install_update_and_delete(&seal);
}

#[test]
fn a_failed_commit_leaves_the_open_store_as_it_was_and_no_objects_behind() {
    let tam = Tam::new();
    let v2 = tam.tc("a", 2, b"two");
    let start = tempfile::tempdir().unwrap();
    let mut store = sealed(start.path()).unwrap();
    tam.install(&mut store, &tam.tc("a", 1, b"one")).unwrap();
    let before = (store.snapshot().unwrap(), store.generation());
    drop(store);
    // Steps before the commit point of the update: two objects, next index, sync, rename.
    for n in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(start.path(), dir.path());
        let (backend, _) = Crash::new(dir.path(), n, true);
        let mut store = IndexedStore::open_with(backend, seal()).unwrap();
        assert_eq!(tam.install(&mut store, &v2), Err(lost()), "step {n}");
        // Without reopening: the old state, and only its objects on disk.
        assert_eq!((store.snapshot().unwrap(), store.generation()), before);
        assert_eq!(object_names(dir.path()).len(), 2, "step {n}");
        // The same store then commits the update.
        tam.install(&mut store, &v2).unwrap();
        assert_eq!(*store.read(&app("a")).unwrap().unwrap(), *b"two");
        drop(store);
        assert_eq!(state_of(dir.path(), seal()).1, before.1 + 1);
    }
}

/// The rename made the new index the state; if the directory fsync after it fails, the
/// commit must not delete what that index names (it did: the next open then found its
/// objects gone, StateTampered). The failure is reported, the state is the new one, in
/// the process and after reopening.
#[test]
fn a_failed_directory_fsync_after_the_rename_keeps_the_new_state() {
    let tam = Tam::new();
    let start = tempfile::tempdir().unwrap();
    let mut store = sealed(start.path()).unwrap();
    tam.install(&mut store, &tam.tc("a", 1, b"one")).unwrap();
    let generation = store.generation();
    drop(store);
    // Update steps: two objects, next index, sync, rename (0..=4), then the fsync (5).
    let (backend, steps) = Crash::new(start.path(), 5, true);
    let mut store = IndexedStore::open_with(backend, seal()).unwrap();
    let err = tam
        .install(&mut store, &tam.tc("a", 2, b"two"))
        .unwrap_err();
    assert_eq!(steps.get(), 6, "the failure is the fsync after the rename");
    assert!(
        matches!(&err, SuitError::Storage(m) if m.contains("not known to be durable")),
        "{err:?}"
    );
    assert_eq!(*store.read(&app("a")).unwrap().unwrap(), *b"two");
    assert_eq!(store.generation(), generation + 1);
    drop(store);
    let reopened = sealed(start.path()).unwrap();
    assert_eq!(reopened.generation(), generation + 1);
    assert_eq!(*reopened.read(&app("a")).unwrap().unwrap(), *b"two");
    reopened.snapshot().unwrap();
    // Only the new state's objects are left once the open has collected the old ones.
    assert_eq!(object_names(start.path()).len(), 2);
}

#[test]
fn stores_list_their_installed_manifests() {
    let tam = Tam::new();
    let (a, b) = (tam.tc("a", 3, b"one"), tam.tc("b", 7, b"two"));
    let digest = |env: &[u8]| Envelope::decode(env).unwrap().authentication.digest.clone();
    let signer = Some(SignerId::Anchor(hex::encode(
        tam.key.public_key().thumbprint(),
    )));
    let expected = vec![
        InstalledManifest {
            component_id: app_manifest("a"),
            sequence_number: 3,
            digest: digest(&a),
            signer: signer.clone(),
        },
        InstalledManifest {
            component_id: app_manifest("b"),
            sequence_number: 7,
            digest: digest(&b),
            signer,
        },
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut memory = MemoryStorage::new();
    let mut sealed_store = sealed(dir.path()).unwrap();
    for store in [&mut memory as &mut dyn Storage, &mut sealed_store] {
        assert_eq!(store.manifests().unwrap(), vec![]);
        tam.install(store, &a).unwrap();
        tam.install(store, &b).unwrap();
        assert_eq!(store.manifests().unwrap(), expected);
        // A deleted TC is no longer listed, though its sequence number is kept.
        tam.processor()
            .uninstall(store, &app_manifest("a"), None)
            .result
            .unwrap();
        assert_eq!(store.manifests().unwrap(), expected[1..]);
        assert_eq!(store.sequence_number(&app_manifest("a")).unwrap(), Some(3));
    }
    drop(sealed_store);
    assert_eq!(
        sealed(dir.path()).unwrap().manifests().unwrap(),
        expected[1..]
    );
}

mod garbage {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Any bytes as a plaintext index open or fail typed, never panic; as a sealed
        /// index they never open.
        #[test]
        fn garbage_indexes_never_panic(index in proptest::collection::vec(any::<u8>(), 0..120)) {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("objects")).unwrap();
            std::fs::write(dir.path().join("index"), &index).unwrap();
            if let Ok(store) = DirStorage::open(dir.path()) {
                // Whatever opened names only objects that do not exist.
                prop_assert!(store.components().all(|id| store.read(id).is_err()));
            }
            prop_assert_eq!(
                sealed(dir.path()).unwrap_err(),
                SuitError::StateTampered("index".into())
            );
        }
    }
}

/// The steps a commit asks of its backend, in order.
struct Recorder {
    inner: DirBackend,
    log: Rc<std::cell::RefCell<Vec<String>>>,
}

impl BlobBackend for Recorder {
    fn read(&self, blob: Blob<'_>) -> Result<Option<Vec<u8>>, SuitError> {
        self.inner.read(blob)
    }
    fn write(&mut self, blob: Blob<'_>, bytes: &[u8]) -> Result<(), SuitError> {
        let what = match blob {
            Blob::Object(_) => "write object",
            _ => "write index",
        };
        self.log.borrow_mut().push(what.into());
        self.inner.write(blob, bytes)
    }
    fn sync(&mut self) -> Result<(), SuitError> {
        self.log.borrow_mut().push("sync".into());
        self.inner.sync()
    }
    fn replace_index(&mut self) -> Result<(), SuitError> {
        self.log.borrow_mut().push("replace".into());
        self.inner.replace_index()
    }
    fn remove(&mut self, object: &str) -> Result<(), SuitError> {
        self.log.borrow_mut().push("remove".into());
        self.inner.remove(object)
    }
    fn remove_later(&mut self, object: &str) -> Result<(), SuitError> {
        self.log.borrow_mut().push("remove later".into());
        self.inner.remove_later(object)
    }
    fn objects(&self) -> Result<Vec<String>, SuitError> {
        self.inner.objects()
    }
}

/// Writes are no longer durable one by one, so the one sync must come after every write
/// of the commit and before the rename that makes them the state (a rename before it
/// could, after power loss, name objects that never reached the disk).
#[test]
fn a_commit_syncs_all_its_writes_once_before_the_commit_point() {
    let tam = Tam::new();
    let dir = tempfile::tempdir().unwrap();
    let log = Rc::new(std::cell::RefCell::new(Vec::new()));
    let backend = Recorder {
        inner: DirBackend::new(dir.path()).unwrap(),
        log: log.clone(),
    };
    let mut store = IndexedStore::open_with(backend, seal()).unwrap();
    tam.install(&mut store, &tam.tc("a", 1, b"one")).unwrap();
    log.borrow_mut().clear();
    tam.install(&mut store, &tam.tc("a", 2, b"two")).unwrap();
    let expected = [
        "write object",
        "write object",
        "write index",
        "sync",
        "replace",
        "remove later",
        "remove later",
    ];
    assert_eq!(*log.borrow(), expected.map(String::from));
    drop(store);
    assert_eq!(state_of(dir.path(), seal()).1, 2);
}

/// Dead objects are unlinked in the background after the commit point: the commit does
/// not wait, the backend's next step does (a name that comes back, as an abandoned
/// commit's does after a reopen, is never unlinked under its new file), and so does its
/// drop (a process that exits after a commit leaves no garbage).
#[test]
fn background_removals_finish_before_the_next_step_and_the_drop() {
    let dir = tempfile::tempdir().unwrap();
    let mut backend = DirBackend::new(dir.path()).unwrap();
    backend.write(Blob::Object("1-1"), b"old").unwrap();
    backend.sync().unwrap();
    backend.remove_later("1-1").unwrap();
    backend.write(Blob::Object("1-1"), b"new").unwrap();
    backend.sync().unwrap();
    let read = backend.read(Blob::Object("1-1")).unwrap();
    assert_eq!(read.as_deref(), Some(&b"new"[..]));
    backend.remove_later("1-1").unwrap();
    assert_eq!(backend.objects().unwrap(), Vec::<String>::new());
    backend.write(Blob::Object("1-2"), b"two").unwrap();
    backend.sync().unwrap();
    backend.remove_later("1-2").unwrap();
    drop(backend);
    assert_eq!(object_names(dir.path()), Vec::<String>::new());
    // An object already gone (removed twice, or by another open) is not an error.
    let mut backend = DirBackend::new(dir.path()).unwrap();
    backend.remove("1-2").unwrap();
    backend.remove_later("1-2").unwrap();
}

/// A directory backend whose background removals are lost (power fails after the commit,
/// before they ran).
struct RemovalsLost(DirBackend);

impl BlobBackend for RemovalsLost {
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
    fn remove(&mut self, object: &str) -> Result<(), SuitError> {
        self.0.remove(object)
    }
    fn remove_later(&mut self, _: &str) -> Result<(), SuitError> {
        Ok(())
    }
    fn objects(&self) -> Result<Vec<String>, SuitError> {
        self.0.objects()
    }
}

/// The commit happened once the index is replaced: dead objects it did not wait for and
/// that a crash kept on disk are garbage the next open collects, with the new state.
#[test]
fn a_crash_before_the_background_removals_leaves_the_new_state_and_the_open_collects() {
    let tam = Tam::new();
    let dir = tempfile::tempdir().unwrap();
    let backend = RemovalsLost(DirBackend::new(dir.path()).unwrap());
    let mut store = IndexedStore::open_with(backend, seal()).unwrap();
    tam.install(&mut store, &tam.tc("a", 1, b"one")).unwrap();
    tam.install(&mut store, &tam.tc("a", 2, b"two")).unwrap();
    drop(store);
    assert_eq!(
        object_names(dir.path()).len(),
        4,
        "the old image and manifest"
    );
    let reopened = sealed(dir.path()).unwrap();
    assert_eq!(reopened.generation(), 2);
    assert_eq!(*reopened.read(&app("a")).unwrap().unwrap(), *b"two");
    assert_eq!(object_names(dir.path()).len(), 2);
}

fn put(id: &str, bytes: &[u8]) -> Changes {
    let mut changes = Changes::default();
    changes
        .data
        .insert(ComponentId::from_strs(&[id]), Some(bytes.to_vec()));
    changes
}

fn value_of(store: &impl Storage, id: &str) -> Vec<u8> {
    store
        .read(&ComponentId::from_strs(&[id]))
        .unwrap()
        .unwrap()
        .into_owned()
}

/// A sealed store at generation 1 holding `x = one`.
fn at_generation_one() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut store = sealed(dir.path()).unwrap();
    store.commit(put("x", b"one")).unwrap();
    assert_eq!(store.generation(), 1);
    dir
}

/// The counter moves at the same time as the rename: if the rename fails (or a crash
/// loses it) once the counter has the new generation, the commit stands, and the next open
/// rolls `index.tmp` forward; an open with the counter not moved finds the old state.
#[test]
fn a_counted_commit_whose_rename_fails_is_rolled_forward_by_the_counter() {
    let start = at_generation_one();
    for counter_moved in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(start.path(), dir.path());
        // Steps: object, next index, sync (0..=2), then the rename fails.
        let (backend, _) = Crash::new(dir.path(), 3, true);
        let mut store = IndexedStore::open_with(backend, seal()).unwrap();
        let staged = store.stage(put("x", b"two")).unwrap();
        let counter = std::sync::atomic::AtomicU64::new(1);
        let out = store.publish_recorded(staged, |g| {
            if counter_moved {
                counter.store(g, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            } else {
                Err("counter write failed")
            }
        });
        if counter_moved {
            assert_eq!(out, Ok(None));
            assert_eq!(value_of(&store, "x"), b"two");
        } else {
            assert_eq!(out, Err(lost()));
            assert_eq!(value_of(&store, "x"), b"one");
        }
        // Either way the outcome is the disk's now: no further commit in this process.
        assert!(store.commit(put("y", b"y")).is_err());
        assert!(
            dir.path().join("index.tmp").exists(),
            "kept for the roll-forward"
        );
        drop(store);
        let counter = counter.into_inner();
        let reopened = SealedDirStorage::open(dir.path(), seal(), counter).unwrap();
        let expected: &[u8] = if counter_moved { b"two" } else { b"one" };
        assert_eq!(value_of(&reopened, "x"), expected);
        assert_eq!(reopened.generation(), counter);
        drop(reopened);
        assert!(!dir.path().join("index.tmp").exists());
        assert_eq!(object_names(dir.path()).len(), 1);
        // The rolled-forward state is the committed one from now on.
        let again = SealedDirStorage::open(dir.path(), seal(), counter).unwrap();
        assert_eq!(value_of(&again, "x"), expected);
    }
}

/// Once the counter has moved, the directory backend leaves the rename's directory fsync
/// to the background (the commit is durable through the counter and `index.tmp`, synced
/// before the counter moved): the commit is visible at once, the next commit waits for
/// that fsync before it writes, and the state reopens at the counter's generation. Also
/// from the disk a crash before that fsync may leave: the rename lost, the dead objects'
/// removal not (the old index names an object that is gone), the counter moved.
#[test]
fn a_counted_commit_leaves_its_directory_fsync_to_the_background_and_is_durable_without_it() {
    let dir = at_generation_one();
    let mut store = sealed(dir.path()).unwrap();
    let counter = std::sync::atomic::AtomicU64::new(1);
    let raise = |g| {
        counter.store(g, std::sync::atomic::Ordering::SeqCst);
        Ok::<(), ()>(())
    };
    let staged = store.stage(put("x", b"two")).unwrap();
    assert_eq!(store.publish_recorded(staged, raise), Ok(None));
    assert!(!dir.path().join("index.tmp").exists());
    let index_2 = std::fs::read(dir.path().join("index")).unwrap();
    let staged = store.stage(put("x", b"three")).unwrap();
    assert_eq!(store.publish_recorded(staged, raise), Ok(None));
    assert_eq!(value_of(&store, "x"), b"three");
    drop(store);
    let index_3 = std::fs::read(dir.path().join("index")).unwrap();
    let counter = counter.into_inner();
    assert_eq!(counter, 3);
    let reopened = SealedDirStorage::open(dir.path(), seal(), counter).unwrap();
    assert_eq!(value_of(&reopened, "x"), b"three");
    drop(reopened);
    // The rename of generation 3 lost: generation 2's index, generation 3's beside it.
    std::fs::write(dir.path().join("index"), &index_2).unwrap();
    std::fs::write(dir.path().join("index.tmp"), &index_3).unwrap();
    assert_eq!(
        object_names(dir.path()).len(),
        1,
        "generation 2's object is gone"
    );
    let rolled = SealedDirStorage::open(dir.path(), seal(), counter).unwrap();
    assert_eq!(rolled.generation(), 3);
    assert_eq!(value_of(&rolled, "x"), b"three");
}

/// The roll-forward takes only a sealed next index of exactly the counter's generation:
/// an older state put back with anything else beside it as `index.tmp` (a copy of the
/// old index, an index between, a damaged one, garbage) is still refused as rolled back.
#[test]
fn an_old_state_with_another_next_index_beside_it_is_still_rolled_back() {
    let dir = at_generation_one();
    let old_index = std::fs::read(dir.path().join("index")).unwrap();
    let old_objects: Vec<_> = files(&dir.path().join("objects"));
    let mut store = sealed(dir.path()).unwrap();
    store.commit(put("x", b"two")).unwrap();
    let index_2 = std::fs::read(dir.path().join("index")).unwrap();
    store.commit(put("x", b"three")).unwrap();
    let index_3 = std::fs::read(dir.path().join("index")).unwrap();
    drop(store);
    // The host puts back generation 1 (the counter has 3) with a next index beside it.
    let put_back = |next: &[u8]| {
        std::fs::write(dir.path().join("index"), &old_index).unwrap();
        for (path, bytes) in &old_objects {
            std::fs::write(path, bytes).unwrap();
        }
        std::fs::write(dir.path().join("index.tmp"), next).unwrap();
    };
    let mut flipped = index_3.clone();
    *flipped.last_mut().unwrap() ^= 1;
    for (what, next) in [
        ("the old index again", old_index.clone()),
        ("an index between", index_2),
        ("a damaged index", flipped),
        ("garbage", vec![0x5a; 64]),
        ("nothing", vec![]),
    ] {
        put_back(&next);
        assert_eq!(
            SealedDirStorage::open(dir.path(), seal(), 3).unwrap_err(),
            SuitError::StateRolledBack {
                found: 1,
                expected: 3
            },
            "{what}"
        );
        // Refused before anything was removed.
        assert!(dir.path().join("index.tmp").exists(), "{what}");
    }
    // The counter's own generation as the next index is the newest state: rolled forward.
    put_back(&index_3);
    let store = SealedDirStorage::open(dir.path(), seal(), 3).unwrap();
    assert_eq!(value_of(&store, "x"), b"three");
}
