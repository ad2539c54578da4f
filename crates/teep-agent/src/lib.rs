//! teep-agent: the TEEP Agent of RFC 9397 and draft-ietf-teep-protocol.
//!
//! This round holds only the TA runtime of the software TEE ([`sim`], feature `sim`, on by
//! default): Trusted Applications are WebAssembly modules run by `wasmi` with fuel and
//! memory limits and no ambient authority, through the small ABI of `docs/ta-abi.md`.
//!
//! Coming next: the Agent engine (sans-IO, `no_std + alloc`, driven by the Broker), the
//! `Tee` trait (secure storage, keys, Evidence, TA runtime), and the rest of the software
//! TEE (the sealed state directory on teep-suit's sealed indexed store, which will
//! implement [`sim::TaStore`]).
#![no_std]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "sim")]
pub mod sim;
