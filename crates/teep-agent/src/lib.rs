//! teep-agent: the TEEP Agent of RFC 9397 and draft-ietf-teep-protocol.
//!
//! * [`engine`]: the Agent engine, sans-IO and `no_std + alloc`: [`engine::Agent::handle`]
//!   answers TAM messages (QueryRequest -> QueryResponse with Evidence, Update -> Success
//!   or Error), and the Broker calls (RequestTA, UnrequestTA, RequestPolicyCheck,
//!   ProcessError, list and invoke TAs) are its other methods. See `docs/agent.md`.
//! * [`tee`]: the [`tee::Tee`] trait, what the engine needs from a TEE (sealed SUIT
//!   storage, TEEP and attestation keys, device claims, TC decryption key, the engine's
//!   own sealed state, the TA runtime); [`memory::MemoryTee`] holds it in memory for tests.
//! * [`sim`] (feature `sim`, on by default): the software TEE's TA runtime: Trusted
//!   Applications are WebAssembly modules run by `wasmi` with fuel and memory limits and
//!   no ambient authority, through the small ABI of `docs/ta-abi.md`.
#![no_std]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod engine;
pub mod memory;
#[cfg(feature = "sim")]
pub mod sim;
pub mod tee;
