//! The TEEP Broker (RFC 9397 §4.4, draft-ietf-teep-otrp-over-http-15): the REE-side relay
//! between TAMs and the TEEP Agent of one TEE, and the API through which apps ask for TAs.
//!
//! * [`Agent`] is the Broker→Agent API of RFC 9397 §6.2.1 (RequestTA, UnrequestTA,
//!   ProcessTeepMessage, RequestPolicyCheck, ProcessError), plus list and invoke for apps.
//!   It is async: the Agent runs in the TEE, another process. [`ScriptedAgent`] answers
//!   from a script, for tests.
//! * [`Broker`] runs the TEEP/HTTP client loop: an empty POST (or the Agent's first
//!   message) to the TAM URI the Agent chose, each non-empty answer to ProcessTeepMessage,
//!   each reply POSTed back, until the TAM answers with no content (204) or the Agent has
//!   no reply. Failures below TEEP go to ProcessError. Policy checks repeat
//!   RequestPolicyCheck until the Agent answers nothing, on a timer.
//! * [`local_api`] serves apps JSON over HTTP on loopback or a Unix socket.
//! * [`ipc`] carries the Agent API over a Unix socket to the TEE process: [`ipc::IpcAgent`]
//!   is the Broker's side, [`ipc::serve`] the TEE's.
//!
//! The Broker never decodes a TEEP message: it checks the media type and size of what the
//! TAM sends and relays the bytes; authenticity is the Agent's end-to-end concern. Its
//! logs name the TAM, byte counts and HTTP status only. The HTTP rules (no redirects, no
//! cookies, HTTPS with server authentication by default, timeouts, bounded retries and
//! size) are in [`HttpConfig`] and `docs/broker.md`. A [`Capture`] (`HttpConfig::capture`)
//! writes every body to a directory, for `teep trace --capture`.

mod agent;
mod broker;
mod capture;
mod http;
pub mod ipc;
pub mod local_api;
mod scripted;

pub use agent::{Agent, AgentAnswer, AgentError, ComponentId, TaInfo, TaRequest};
pub use broker::{Broker, BrokerConfig, BrokerError, Outcome, PolicyReport};
pub use capture::{Capture, CaptureEntry, INDEX_FILE};
pub use http::{
    BuildError, DEFAULT_MAX_RESPONSE, HttpConfig, OLD_TEEP_MEDIA_TYPE, PlainHttp, TEEP_MEDIA_TYPE,
    TransportError,
};
pub use scripted::{AgentCall, ScriptedAgent};
