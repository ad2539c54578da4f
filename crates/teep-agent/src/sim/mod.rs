//! The software TEE: the TA runtime and, with feature `sim-tee` (host only), the device
//! side around it.
//!
//! * [`runtime`]: [`Runtime::validate`] (the install-time check: parse, imports only from
//!   the `teep` ABI module with their exact signatures, the `invoke` and `memory` exports,
//!   memory within the limit, no start function) and [`ValidatedTa::invoke`] (one call of
//!   `invoke` under a fuel budget and a memory cap; store writes are applied only when the
//!   call succeeds).
//! * [`store`]: [`TaStore`], the per-TA key-value store the ABI exposes, scoped by the TA's
//!   component id; [`MemoryTaStore`] for tests.
//! * [`tee`] (`sim-tee`): [`SimTee`], the sealed state directory (SUIT storage, each TA's
//!   store, the Agent's state), the device identity, invocation of installed TAs.
//! * [`fault`] (`sim-tee`): fault injection for the crash-consistency tests.
//!
//! Installing and invoking the sample TA (`tas/counter-v1.wat`):
//!
//! ```
//! use teep_agent::sim::{MemoryTaStore, Perso, Runtime};
//!
//! let runtime = Runtime::default();
//! let ta = runtime.validate(include_bytes!("../../tas/counter-v1.wasm"))?;
//! let mut store = MemoryTaStore::new();
//! let perso = [Perso { name: b"greeting", data: b"Hello from perso" }];
//! for n in 1..=2 {
//!     let out = ta.invoke(&mut store, b"component id", &perso, b"hello")?;
//!     assert_eq!(out.output, format!("Hello from perso, call #{n}").as_bytes());
//! }
//! # Ok::<(), teep_agent::sim::RuntimeError>(())
//! ```
//!
//! The runtime uses only `core` and `alloc` (wasmi is `no_std`), so it can run where the
//! Agent engine runs.

#[cfg(feature = "sim-tee")]
pub mod fault;
pub mod runtime;
pub mod store;
#[cfg(feature = "sim-tee")]
pub mod tee;

pub use runtime::{Invocation, Limits, Perso, Runtime, RuntimeError, ValidatedTa, abi};
pub use store::{MemoryTaStore, StoreError, TaStore};
#[cfg(feature = "sim-tee")]
pub use tee::{PublicIdentity, PublicKeyView, SimConfig, SimError, SimStorage, SimTee, is_ta};
