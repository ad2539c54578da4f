//! Helpers of the scenarios: withholding and delivering messages through the proxy,
//! decoding and signing TEEP messages as a compromised TAM or Broker would, opening the
//! SUIT reports the TAM received.

use std::sync::Arc;

use teep_proto::{Message, Numbering, Unverified};

use crate::common::deployment::Deployment;
use crate::proxy::{Action, Exchange, Proxy};

/// One policy check whose Success the proxy keeps from the TAM (it answers 204 in the
/// TAM's place): the Success, signed by the Agent, to deliver later.
pub fn withheld_success(d: &Deployment, proxy: &Proxy) -> Vec<u8> {
    proxy.clear();
    proxy.plan([Action::Forward, Action::Forward, Action::Reply(Vec::new())]);
    let _ = d.output(&d.once_args());
    let seen = proxy.exchanges();
    let success = seen.get(2).map(|x| x.request.clone()).unwrap_or_default();
    assert!(
        matches!(message(&success), Some(Message::Success(_))),
        "no Success to withhold: {seen:?}"
    );
    success
}

/// One policy check whose first POST carries `bytes` to the TAM (a late or replayed
/// message); the exchange.
pub fn deliver(d: &Deployment, proxy: &Proxy, bytes: Vec<u8>) -> Exchange {
    proxy.clear();
    proxy.plan([Action::RewriteRequest(Arc::new(move |_: &[u8]| {
        bytes.clone()
    }))]);
    let _ = d.output(&d.once_args());
    proxy.exchanges().first().cloned().unwrap()
}

/// The TEEP message inside a signed TEEP/HTTP body, unverified (the test reads what went
/// by); `None` when the bytes are not one.
pub fn message(bytes: &[u8]) -> Option<Message> {
    Unverified::parse(bytes, Numbering::Draft26)
        .ok()
        .map(|u| u.message().clone())
}

/// A fresh P-256 key nobody trusts.
pub fn stranger() -> teep_cose::PrivateKey {
    teep_cose::PrivateKey::generate(teep_cose::Curve::P256).unwrap()
}

/// The ESP256 key of the TAM whose data directory is `data_dir` (what a compromised TAM,
/// or its stolen key, signs with).
pub fn tam_key(data_dir: &str) -> teep_cose::PrivateKey {
    private_key(&format!("{data_dir}/tam-esp256.key"))
}

/// The SUIT reports of a Success or Error, opened with the TAM's encryption key (in its
/// data directory `data_dir`, as the TAM opens them).
pub fn open_reports(data_dir: &str, reports: &[Vec<u8>]) -> Vec<teep_suit::report::ReceivedReport> {
    let key = private_key(&format!("{data_dir}/tam-encryption.key"));
    let no_device_keys = teep_cose::TrustStore::new();
    let keys = teep_suit::report::ReportKeys {
        provider: teep_cose::default_provider(),
        device: &no_device_keys,
        tam: Some(&key),
        require_signature: false,
    };
    reports
        .iter()
        .map(|r| teep_suit::report::ReceivedReport::decode(r, &keys).unwrap())
        .collect()
}

/// A private key file of a TAM's data directory (COSE_Key or PEM).
fn private_key(path: &str) -> teep_cose::PrivateKey {
    let bytes = std::fs::read(path).unwrap();
    teep_cose::PrivateKey::from_cose_key_bytes(&bytes)
        .or_else(|_| teep_cose::PrivateKey::from_pem(&String::from_utf8_lossy(&bytes)))
        .unwrap()
}

/// `message` signed with `key` (COSE_Sign1, -26 numbering).
pub fn sign_with(key: &teep_cose::PrivateKey, message: &Message) -> Vec<u8> {
    let signer = teep_cose::default_provider()
        .signer(key, key.default_algorithm())
        .unwrap();
    teep_proto::sign_message(
        message,
        Numbering::Draft26,
        signer.as_ref(),
        &teep_cose::SignOptions::default(),
    )
    .unwrap()
}

/// The bodies of the TAM's answers that are Updates, oldest first.
pub fn updates(exchanges: &[Exchange]) -> Vec<Vec<u8>> {
    exchanges
        .iter()
        .filter(|x| matches!(message(&x.response), Some(Message::Update(_))))
        .map(|x| x.response.clone())
        .collect()
}

/// The record of `device_id` in `teep tam devices --json` output.
pub fn device_record(devices_json: &str, device_id: &str) -> serde_json::Value {
    crate::processes::find_device(devices_json, device_id)
        .unwrap_or_else(|| panic!("device {device_id} not in {devices_json}"))
}
