//! Prometheus metrics of the TEEP HTTP server, served by the admin API at `/metrics`.
//!
//! The HTTP server records every message it hands to the engine ([`Metrics::record`]):
//! what it led to (the [`Event`], by kind), why it was dropped (the [`Dropped`] reason),
//! the err-codes Updates and Agent Errors carried, attestation outcomes and how long the
//! engine took. Labels are fixed names, never values from the message, so a client cannot
//! grow the registry.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use teep_proto::{ErrCode, Numbering};

use crate::error::{Dropped, Event, Handled};
use crate::store::AttestationVerdict;

/// A label naming one kind (an event, a drop reason, an outcome).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

/// An err-code label: the draft-26 number of a known code, 0 for any unknown one (so a
/// signed Error with made-up codes adds one series, not one per code).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Code {
    origin: &'static str,
    err_code: u64,
}

impl Code {
    fn new(origin: &'static str, code: ErrCode) -> Self {
        let err_code = if ErrCode::KNOWN.contains(&code) {
            code.number(Numbering::Draft26)
        } else {
            0
        };
        Self { origin, err_code }
    }
}

/// The TEEP server's counters and the engine latency histogram, in one registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sessions: Counter,
    messages: Family<Kind, Counter>,
    dropped: Family<Kind, Counter>,
    err_codes: Family<Code, Counter>,
    attestations: Family<Kind, Counter>,
    latency: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty counters, registered under the `teep_tam` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("teep_tam");
        let sessions = Counter::default();
        let messages = Family::<Kind, Counter>::default();
        let dropped = Family::<Kind, Counter>::default();
        let err_codes = Family::<Code, Counter>::default();
        let attestations = Family::<Kind, Counter>::default();
        // 100 µs .. ~3 s: a store round trip to a remote Verifier's timeout.
        let latency = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        registry.register(
            "sessions_opened",
            "QueryRequests sent (sessions opened or renegotiated)",
            sessions.clone(),
        );
        registry.register(
            "messages",
            "Messages the engine accepted, by what they led to",
            messages.clone(),
        );
        registry.register(
            "dropped",
            "Messages the engine dropped, by reason",
            dropped.clone(),
        );
        registry.register(
            "err_codes",
            "TEEP err-codes in Updates sent (origin=tam) and Errors received (origin=agent)",
            err_codes.clone(),
        );
        registry.register(
            "attestations",
            "Attestation outcomes (accepted, not_affirming, rejected, verifier_unavailable)",
            attestations.clone(),
        );
        registry.register(
            "request_seconds",
            "Time the engine took for one TEEP request",
            latency.clone(),
        );
        Self {
            registry,
            sessions,
            messages,
            dropped,
            err_codes,
            attestations,
            latency,
        }
    }

    /// Records one request's result (`None`: the engine's task failed) and duration.
    pub fn record(&self, result: Option<&Result<Handled, Dropped>>, took: Duration) {
        self.latency.observe(took.as_secs_f64());
        match result {
            Some(Ok(handled)) => {
                let (kind, code) = event(&handled.event);
                self.messages.get_or_create(&Kind { kind }).inc();
                if matches!(handled.event, Event::QueryRequestSent) {
                    self.sessions.inc();
                }
                if let Some(code) = code {
                    self.err_codes.get_or_create(&code).inc();
                }
                match handled.changes.outcome.as_ref().map(|o| o.verdict) {
                    Some(AttestationVerdict::Affirming) => self.attestation("accepted"),
                    Some(AttestationVerdict::NotAffirming) => self.attestation("not_affirming"),
                    _ => {}
                }
            }
            Some(Err(dropped)) => {
                let kind = reason(dropped);
                self.dropped.get_or_create(&Kind { kind }).inc();
                if matches!(
                    dropped,
                    Dropped::Attestation(_) | Dropped::NoCnfKey | Dropped::NotSessionDevice
                ) {
                    self.attestation("rejected");
                }
                if matches!(dropped, Dropped::Verifier(_)) {
                    self.attestation("verifier_unavailable");
                }
            }
            None => {
                self.dropped
                    .get_or_create(&Kind {
                        kind: "task_failed",
                    })
                    .inc();
            }
        }
    }

    fn attestation(&self, kind: &'static str) {
        self.attestations.get_or_create(&Kind { kind }).inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// An event's kind, and the err-code it carries.
fn event(e: &Event) -> (&'static str, Option<Code>) {
    match e {
        Event::QueryRequestSent => ("query_request_sent", None),
        Event::UpdateSent { err_code, .. } => {
            ("update_sent", err_code.map(|c| Code::new("tam", c)))
        }
        Event::UpToDate => ("up_to_date", None),
        Event::Installed { .. } => ("success", None),
        Event::AgentError { code } => ("agent_error", Some(Code::new("agent", *code))),
    }
}

/// A drop reason's label. Exhaustive, so that a new reason gets a name.
fn reason(d: &Dropped) -> &'static str {
    match d {
        Dropped::Malformed(_) => "malformed",
        Dropped::NoToken => "no_token",
        Dropped::UnknownToken => "unknown_token",
        Dropped::TokenReused => "token_reused",
        Dropped::TokenExpired => "token_expired",
        Dropped::WrongState { .. } => "wrong_state",
        Dropped::UnknownAgent => "unknown_agent",
        Dropped::BadSignature(_) => "bad_signature",
        Dropped::WrongDevice(_) => "wrong_device",
        Dropped::NotSessionDevice => "not_session_device",
        Dropped::NoCnfKey => "no_cnf_key",
        Dropped::NoEncryptionKey => "no_encryption_key",
        Dropped::EvidenceDecryption(_) => "evidence_decryption",
        Dropped::Attestation(_) => "attestation",
        Dropped::Revoked => "revoked",
        Dropped::Report(_) => "report",
        Dropped::ReportNonce => "report_nonce",
        Dropped::ReportForUnsentManifest => "report_for_unsent_manifest",
        Dropped::NegotiationFailed => "negotiation_failed",
        Dropped::NoTamAttestation => "no_tam_attestation",
        Dropped::TamAttestationRefused => "tam_attestation_refused",
        Dropped::Conflict => "conflict",
        Dropped::Store(_) => "store",
        Dropped::Verifier(_) => "verifier",
        Dropped::Random(_) => "random",
        Dropped::Sign(_) => "sign",
        Dropped::NoSignerForSuite => "no_signer_for_suite",
        Dropped::ShellMismatch => "shell_mismatch",
    }
}
