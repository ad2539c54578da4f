//! teep-tam: the TEEP TAM engine, sans-IO (draft-ietf-teep-protocol §10).
//!
//! Message bytes, the time, a random source, a store view and the Verifier's answers come
//! in; bytes to send and store changes come out. The engine never opens a socket or a
//! database, never reads the clock, and keeps no session in memory: each message is
//! handled as *load* → *decide* → *commit* (see `docs/tam.md`).
//!
//! Method groups, in the order a shell calls them:
//! 1. [`Tam::start`] with the HTTP body (empty = open a session) gives a [`Step`];
//! 2. while the step is [`Step::Load`] or [`Step::Appraise`], answer it (from the
//!    [`Store`], from an [`teep_attest::Appraiser`]) with [`Tam::resume`];
//! 3. [`Step::Done`] carries a [`Decision`]: commit its [`Changes`] with
//!    [`Store::commit`] (compare-and-set on the consumed token) and only then send the
//!    reply. [`driver::drive`] does all three for any store and appraiser.
//!
//! Pinned choices:
//! * every QueryRequest carries a token, also when it asks for attestation (the draft's
//!   own example does; spec §16.2): the token finds the session, and the challenge rides in
//!   the session record, consumed with it;
//! * tokens are 16 random bytes; a device has at most `max_sessions_per_device`
//!   outstanding, devices not known yet `max_anonymous_sessions` together, the oldest
//!   retired first; expired records are purged on each new session;
//! * a QueryResponse without a token, or with a token the store does not hold unconsumed
//!   and unexpired, is dropped before anything else is read;
//! * the Agent's key is the `cnf` key of an EAR (background check, nonce = the session's
//!   challenge; passport, nonce = the token), and must verify that very QueryResponse;
//!   the device id is that key's RFC 9679 thumbprint;
//! * negotiation Errors (unsupported version, suites, freshness, SUIT report profile) from
//!   an Agent not yet known are taken unverified, since all they can cause is a new
//!   QueryRequest with a narrower offer (what an empty POST gives anyone);
//! * an Agent's ERR_ATTESTATION_REQUIRED is answered once per session by the same
//!   QueryRequest carrying the TAM's own Attestation Result ([`own`]), signed by the key its
//!   `cnf` binds; without one, or a second time, the session ends;
//! * the TAM never sends Error: a wanting QueryResponse gets an Update with err-code;
//! * installed state is what the device's Successes confirmed, replaced by the tc-list of
//!   each verified QueryResponse that carries one (`plan::reconcile`: an entry of a digest
//!   the TAM has no release of is recorded at sequence number 0).

#[cfg(feature = "server")]
pub mod admin;
pub mod driver;
mod engine;
mod error;
#[cfg(feature = "server")]
pub mod http;
#[cfg(feature = "server")]
pub mod messages;
#[cfg(feature = "server")]
pub mod metrics;
pub mod own;
pub mod plan;
pub mod report;
pub mod sql;
pub mod store;
pub mod tc;

pub use engine::{
    Context, Decision, MessageMeta, Pending, ProviderRandom, Random, Resume, Step, TOKEN_LEN, Tam,
    TamConfig,
};
pub use error::{Dropped, Event, Handled};
pub use store::{Changes, MemoryStore, Store, StoreError};
