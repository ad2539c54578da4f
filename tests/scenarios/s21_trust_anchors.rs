//! Scenario 21. Trust anchor management: TAM anchors (Device Administrator) and TC-signer
//! anchors of the TEE; certificate expiry and revocation.
//!
//! The Device Administrator's anchors of the software TEE are its `--trust-tam` and
//! `--trust-signer` files, read at start; the test restarts `teep tee serve` with other
//! sets. Without the TAM's key (a stranger's instead) the Agent answers the TAM's
//! QueryRequest with ERR_BAD_CERTIFICATE and nothing is installed; with it added, the TA
//! installs. With the vendor's TC-signer anchor removed, the vendor's next version is
//! refused (ERR_MANIFEST_PROCESSING_FAILED), the device keeps the installed one and the TAM
//! records the old version; re-added, the update goes through. Removing the TAM's anchor
//! again stops its Updates from reaching the TA. Not covered between processes: certificate
//! expiry and revocation of TAM certificates (ERR_CERTIFICATE_EXPIRED / ERR_BAD_CERTIFICATE
//! for an x5chain): the TAM signs TEEP messages with raw keys only (no x5chain option in
//! `teep tam serve`); the engine paths are unit-tested in teep-cose and teep-agent.

use teep_proto::{ErrCode, Message};

use crate::common::deployment::{Deployment, id_text};
use crate::messages::message;
use crate::proxy::Proxy;

const TA: [&str; 3] = ["TEEP-Device", "counter", "ta"];

/// The first Error the Agent answered in the exchanges of the last check.
fn agent_error(proxy: &Proxy) -> teep_proto::ErrorMessage {
    proxy
        .exchanges()
        .iter()
        .find_map(|x| match message(&x.request) {
            Some(Message::Error(e)) => Some(e),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Error from the Agent: {:?}", proxy.exchanges()))
}

#[test]
fn tam_and_tc_signer_anchors_are_added_and_removed_by_the_device_administrator() {
    let mut d = Deployment::new();
    let proxy = Proxy::forward(&d.tam_uri);
    d.tam_uri.clone_from(&proxy.uri());
    let manifest = id_text(&["TEEP-Device", "counter", "suit"]);
    d.upload_counter(1);
    d.set_policy(&[&manifest]);
    d.run(&["keys", "generate", "--out", "stranger.key"]);
    d.run(&["keys", "generate", "--out", "other-signer.key"]);
    let tam_key = format!("{}/tam-esp256.pub.pem", d.tam_data);
    let check = |tam_keys: &[&str], signers: &[&str]| {
        let tee = d.start_tee_trusting(tam_keys, signers);
        proxy.clear();
        let _ = d.output(&d.once_args());
        tee
    };

    // No anchor for this TAM.
    let tee = check(&["stranger.key.pub"], &["signer.key.pub"]);
    assert_eq!(agent_error(&proxy).err_code, ErrCode::BadCertificate);
    tee.stop();
    let devices = d.admin(&["devices", "--json"]);
    assert!(
        !devices.contains(&d.device_id),
        "the TAM learnt of the device: {devices}"
    );

    // The administrator adds it.
    let tee = check(&[&tam_key], &["signer.key.pub"]);
    let broker = d.start_broker(3600);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    broker.stop();
    tee.stop();
    assert!(d.tam_installed().contains(&(manifest.clone(), 1)));

    // The vendor's TC-signer anchor removed: its next version is refused.
    d.upload_counter(2);
    let tee = check(&[&tam_key], &["other-signer.key.pub"]);
    assert_eq!(
        agent_error(&proxy).err_code,
        ErrCode::ManifestProcessingFailed
    );
    let broker = d.start_broker(3600);
    proxy.wait_session_end();
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    broker.stop();
    tee.stop();
    assert!(d.tam_installed().contains(&(manifest.clone(), 1)));

    // Re-added: the update goes through.
    let tee = check(&[&tam_key], &["signer.key.pub"]);
    tee.stop();
    assert!(d.tam_installed().contains(&(manifest.clone(), 2)));

    // The TAM's anchor removed again: its Updates no longer reach the TA.
    d.upload_counter(3);
    let tee = check(&["stranger.key.pub"], &["signer.key.pub"]);
    assert_eq!(agent_error(&proxy).err_code, ErrCode::BadCertificate);
    let broker = d.start_broker(3600);
    proxy.wait_session_end();
    assert_eq!(d.listed_sequence(&TA), Some(2), "{:?}", d.listed());
    broker.stop();
    tee.stop();
    assert!(d.tam_installed().contains(&(manifest, 2)));
}
