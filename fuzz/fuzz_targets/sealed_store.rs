//! The sealed SUIT state of a software TEE (`teep_suit::store::IndexedStore` with
//! `AesGcmSeal`) against a hostile host that owns the blobs. The store runs over an
//! in-memory blob backend the harness shares with the "host". The input (`arbitrary`) is a
//! sequence of operations: commits (changes to contents, links, sequence numbers and
//! signers, built from the input), host edits of the blobs (flip bits, truncate, delete,
//! swap two blobs, save a copy of everything, put back a saved copy of everything or of one
//! blob) and reopens. The TEE's monotonic counter holds the generation of the last commit,
//! and every reopen is `open_expecting` that counter.
//!
//! Asserts: no panic; every commit succeeds (the backend never fails) and raises the
//! generation by one; a reopen (and reading everything back) either gives exactly the last
//! committed state at the last committed generation, or fails with `StateTampered` or
//! `StateRolledBack`, and fails only when the host changed the blobs since they were last
//! known good. After a refused reopen the host's edits are undone (the state is restored
//! from that known-good copy), which must then reopen.
#![no_main]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::rc::Rc;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use teep_cose::AwsLcProvider;
use teep_suit::storage::{Changes, MemoryStorage, Storage};
use teep_suit::store::{AesGcmSeal, Blob, BlobBackend, IndexedStore};
use teep_suit::trust::SignerId;
use teep_suit::{ComponentId, SuitError};

static PROVIDER: AwsLcProvider = AwsLcProvider;
const KEY: [u8; 32] = [0x42; 32];

/// What the host sees and may change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Blobs {
    index: Option<Vec<u8>>,
    next: Option<Vec<u8>>,
    objects: BTreeMap<String, Vec<u8>>,
}

/// Where a blob lives, to read or replace it by position.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Slot {
    Index,
    Next,
    Object(String),
}

impl Blobs {
    fn slots(&self) -> Vec<Slot> {
        let mut slots = Vec::new();
        if self.index.is_some() {
            slots.push(Slot::Index);
        }
        if self.next.is_some() {
            slots.push(Slot::Next);
        }
        slots.extend(self.objects.keys().cloned().map(Slot::Object));
        slots
    }

    /// The `i`-th blob (modulo the number of blobs), if there is any.
    fn pick(&self, i: u8) -> Option<Slot> {
        let slots = self.slots();
        let n = slots.len();
        (n > 0).then(|| slots[usize::from(i) % n].clone())
    }

    fn get_mut(&mut self, slot: &Slot) -> Option<&mut Vec<u8>> {
        match slot {
            Slot::Index => self.index.as_mut(),
            Slot::Next => self.next.as_mut(),
            Slot::Object(name) => self.objects.get_mut(name),
        }
    }

    fn get(&self, slot: &Slot) -> Option<&Vec<u8>> {
        match slot {
            Slot::Index => self.index.as_ref(),
            Slot::Next => self.next.as_ref(),
            Slot::Object(name) => self.objects.get(name),
        }
    }

    fn set(&mut self, slot: &Slot, bytes: Option<Vec<u8>>) {
        match (slot, bytes) {
            (Slot::Index, b) => self.index = b,
            (Slot::Next, b) => self.next = b,
            (Slot::Object(name), Some(b)) => {
                self.objects.insert(name.clone(), b);
            }
            (Slot::Object(name), None) => {
                self.objects.remove(name);
            }
        }
    }
}

/// The in-memory backend: the store's handle on the blobs the harness also holds.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Blobs>>);

impl BlobBackend for Shared {
    fn read(&self, blob: Blob<'_>) -> Result<Option<Vec<u8>>, SuitError> {
        let b = self.0.borrow();
        Ok(match blob {
            Blob::Index => b.index.clone(),
            Blob::NextIndex => b.next.clone(),
            Blob::Object(name) => b.objects.get(name).cloned(),
        })
    }

    fn write(&mut self, blob: Blob<'_>, bytes: &[u8]) -> Result<(), SuitError> {
        let mut b = self.0.borrow_mut();
        match blob {
            Blob::Index => b.index = Some(bytes.to_vec()),
            Blob::NextIndex => b.next = Some(bytes.to_vec()),
            Blob::Object(name) => {
                b.objects.insert(name.into(), bytes.to_vec());
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SuitError> {
        Ok(())
    }

    fn replace_index(&mut self) -> Result<(), SuitError> {
        let mut b = self.0.borrow_mut();
        let next = b
            .next
            .take()
            .ok_or_else(|| SuitError::Storage("no next index".into()))?;
        b.index = Some(next);
        Ok(())
    }

    fn remove(&mut self, object: &str) -> Result<(), SuitError> {
        self.0.borrow_mut().objects.remove(object);
        Ok(())
    }

    fn objects(&self) -> Result<Vec<String>, SuitError> {
        Ok(self.0.borrow().objects.keys().cloned().collect())
    }
}

type Store = IndexedStore<Shared, AesGcmSeal<'static>>;

// ---- The fuzz input ----

#[derive(Arbitrary, Debug)]
enum Component {
    Known(u8),
    Raw(Vec<Vec<u8>>),
}

/// Component IDs the fuzzer picks by index, so changes often touch the same components.
fn component(c: &Component) -> ComponentId {
    match c {
        Component::Known(i) => match i % 5 {
            0 => ComponentId::default(),
            1 => ComponentId::from_strs(&["TEEP-Device", "SecureFS", "tc", "ta"]),
            2 => ComponentId::from_strs(&["TEEP-Device", "SecureFS", "config.json"]),
            3 => ComponentId::from_strs(&["TEEP-Device", "SecureFS", "lib", "ta"]),
            _ => ComponentId(vec![vec![], vec![0xff; 3]]),
        },
        Component::Raw(segments) => ComponentId(segments.clone()),
    }
}

#[derive(Arbitrary, Debug)]
enum Change {
    Data(Component, Option<Vec<u8>>),
    Owners(Component, Vec<Component>),
    SequenceNumber(Component, u64),
    Signer(Component, Option<String>),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Commit(Vec<Change>),
    /// XOR one byte (position modulo the length) of a blob with a non-zero mask.
    Flip {
        blob: u8,
        at: u16,
        mask: u8,
    },
    Truncate {
        blob: u8,
        len: u16,
    },
    Delete(u8),
    Swap(u8, u8),
    /// The host keeps a copy of every blob (at most four copies).
    Save,
    /// Puts a saved copy of everything back.
    RestoreAll(u8),
    /// Puts back one blob of a saved copy under its own name.
    RestoreBlob {
        copy: u8,
        blob: u8,
    },
    Reopen,
}

fn changes(list: &[Change]) -> Changes {
    let mut c = Changes::default();
    for change in list.iter().take(8) {
        match change {
            Change::Data(id, bytes) => {
                c.data.insert(component(id), bytes.clone());
            }
            Change::Owners(id, owners) => {
                let set: BTreeSet<ComponentId> = owners.iter().map(component).collect();
                c.owners.insert(component(id), set);
            }
            Change::SequenceNumber(id, n) => {
                c.sequence_numbers.insert(component(id), *n);
            }
            Change::Signer(id, name) => {
                let signer = name.clone().map_or(SignerId::Mac, SignerId::Anchor);
                c.signers.insert(component(id), signer);
            }
        }
    }
    c
}

// ---- The run ----

struct Run {
    blobs: Shared,
    /// The store while the TEE has it open; the host's edits close it.
    store: Option<Store>,
    /// The last committed state and the counter (its generation).
    expected: MemoryStorage,
    counter: u64,
    /// The blobs as they were when last known good (after a commit or a checked reopen).
    good: Blobs,
    saved: Vec<Blobs>,
}

impl Run {
    fn open(&self) -> Result<(Store, MemoryStorage), SuitError> {
        let seal = AesGcmSeal::new(&PROVIDER, KEY);
        let store = IndexedStore::open_expecting(self.blobs.clone(), seal, self.counter)?;
        let snapshot = store.snapshot()?;
        Ok((store, snapshot))
    }

    /// Reopens: the last committed state, or a typed refusal when the host changed the
    /// blobs (which are then restored and reopened).
    fn reopen(&mut self) {
        let changed = *self.blobs.0.borrow() != self.good;
        self.store = None;
        match self.open() {
            Ok((store, snapshot)) => self.accept(store, &snapshot),
            Err(e @ (SuitError::StateTampered(_) | SuitError::StateRolledBack { .. })) => {
                assert!(changed, "untouched state refused: {e:?}");
                *self.blobs.0.borrow_mut() = self.good.clone();
                let (store, snapshot) = self.open().expect("the known-good state reopens");
                self.accept(store, &snapshot);
            }
            Err(e) => panic!("reopen failed with an untyped error: {e:?}"),
        }
    }

    fn accept(&mut self, store: Store, snapshot: &MemoryStorage) {
        assert_eq!(*snapshot, self.expected, "reopen gave another state");
        assert_eq!(
            store.generation(),
            self.counter,
            "reopen at another generation"
        );
        assert_eq!(
            store.manifest_ids().expect("ids"),
            self.expected.installed(),
            "installed manifests differ"
        );
        self.good = self.blobs.0.borrow().clone();
        self.store = Some(store);
    }

    fn commit(&mut self, list: &[Change]) {
        if self.store.is_none() {
            self.reopen();
        }
        let Some(store) = self.store.as_mut() else {
            unreachable!("reopen leaves the store open");
        };
        let c = changes(list);
        store
            .commit(c.clone())
            .expect("commit to an infallible backend");
        self.counter += 1;
        assert_eq!(store.generation(), self.counter, "commit generation");
        let Ok(()) = self
            .expected
            .apply(c, |_, bytes| Ok::<_, Infallible>(bytes));
        self.good = self.blobs.0.borrow().clone();
    }

    /// A host edit: the TEE closes the store first (it reopens before the next commit).
    fn edit(&mut self, f: impl FnOnce(&mut Blobs, &[Blobs])) {
        self.store = None;
        let saved = &self.saved;
        f(&mut self.blobs.0.borrow_mut(), saved);
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut run = Run {
        blobs: Shared::default(),
        store: None,
        expected: MemoryStorage::new(),
        counter: 0,
        good: Blobs::default(),
        saved: Vec::new(),
    };
    for op in ops.iter().take(48) {
        match op {
            Op::Commit(list) => run.commit(list),
            Op::Flip { blob, at, mask } => run.edit(|b, _| {
                if let Some(slot) = b.pick(*blob)
                    && let Some(bytes) = b.get_mut(&slot)
                    && !bytes.is_empty()
                {
                    let at = usize::from(*at) % bytes.len();
                    bytes[at] ^= (*mask).max(1);
                }
            }),
            Op::Truncate { blob, len } => run.edit(|b, _| {
                if let Some(slot) = b.pick(*blob)
                    && let Some(bytes) = b.get_mut(&slot)
                {
                    bytes.truncate(usize::from(*len));
                }
            }),
            Op::Delete(blob) => run.edit(|b, _| {
                if let Some(slot) = b.pick(*blob) {
                    b.set(&slot, None);
                }
            }),
            Op::Swap(x, y) => run.edit(|b, _| {
                if let (Some(x), Some(y)) = (b.pick(*x), b.pick(*y)) {
                    let (bx, by) = (b.get(&x).cloned(), b.get(&y).cloned());
                    b.set(&x, by);
                    b.set(&y, bx);
                }
            }),
            Op::Save => {
                if run.saved.len() < 4 {
                    let copy = run.blobs.0.borrow().clone();
                    run.saved.push(copy);
                }
            }
            Op::RestoreAll(k) => run.edit(|b, saved| {
                if !saved.is_empty() {
                    *b = saved[usize::from(*k) % saved.len()].clone();
                }
            }),
            Op::RestoreBlob { copy, blob } => run.edit(|b, saved| {
                if saved.is_empty() {
                    return;
                }
                let old = &saved[usize::from(*copy) % saved.len()];
                if let Some(slot) = old.pick(*blob) {
                    b.set(&slot, old.get(&slot).cloned());
                }
            }),
            Op::Reopen => run.reopen(),
        }
    }
    run.reopen();
});
