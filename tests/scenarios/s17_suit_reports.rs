//! Scenario 17. SUIT reports: install reports in Success/Error, nonce = token, encrypted to
//! the TAM; the TAM keeps them.
//!
//! Through a proxy that reads what goes by: the Success of an install carries one SUIT
//! report per envelope, encrypted to the TAM's key (opened here with the TAM's key file),
//! its nonce the Update's token, its manifest digest the installed release's, its result
//! success. Then a TC for another vendor's devices (its vendor-identifier condition fails on
//! this device): the Agent answers an Error (ERR_MANIFEST_PROCESSING_FAILED) with a failed report, nonce = token.
//! The TAM keeps both (admin API `last_reports`: success and failure, by manifest digest);
//! the failed TC is not recorded as installed. Not covered: boot-time reports in the
//! QueryResponse, or from the TAM in a QueryRequest (the Agent engine sends none, the TAM
//! keeps only reports of its Updates), and reports signed by a device report key (the
//! software TEE has none; reports are authenticated by the signed TEEP message).
//!
//! Found while writing this test (fixed since, tested in teep-suit
//! `processor::an_untrusted_signers_manifest_is_reported_under_its_digest` and teep-tam
//! `engine::failed_report_of_a_sent_manifest_is_kept_and_another_digest_dropped`): a
//! manifest that failed authentication (e.g. a TC signer the TEE does not trust) was
//! reported under an all-zero digest, and the TAM dropped the whole Error.

use teep_proto::{ErrCode, Message};

use crate::common::deployment::{COUNTER_V1, Deployment, id_text};
use crate::messages::{device_record, message, open_reports};
use crate::proxy::Proxy;

/// The Update of `exchanges` and the Agent's answer to it.
fn update_and_answer(exchanges: &[crate::proxy::Exchange]) -> (Message, Message) {
    let k = exchanges
        .iter()
        .position(|x| matches!(message(&x.response), Some(Message::Update(_))))
        .unwrap_or_else(|| panic!("no Update in {exchanges:?}"));
    let update = message(&exchanges[k].response).unwrap();
    let answer = message(&exchanges[k + 1].request).unwrap();
    (update, answer)
}

#[test]
fn install_reports_carry_the_token_and_the_tam_keeps_them() {
    let mut d = Deployment::new();
    let proxy = Proxy::forward(&d.tam_uri);
    d.tam_uri.clone_from(&proxy.uri());
    let manifest = id_text(&["TEEP-Device", "counter", "suit"]);
    d.upload_counter(1);
    d.set_policy(&[&manifest]);
    let tee = d.start_tee();
    d.policy_check();
    let (Message::Update(update), Message::Success(success)) =
        update_and_answer(&proxy.exchanges())
    else {
        panic!("not an Update answered by a Success")
    };
    let reports = open_reports(&d.tam_data, success.suit_reports.as_deref().unwrap());
    assert_eq!(reports.len(), 1);
    let installed = &reports[0];
    assert_eq!(installed.nonce, update.token, "nonce = token");
    assert_eq!(installed.result, Ok(()));
    assert!(installed.protection.encrypted, "encrypted to the TAM");
    let ok_digest = hex::encode(&installed.manifest_digest.bytes);

    // A TC for another vendor's devices: authenticated, its vendor-identifier condition fails.
    let rogue = ["TEEP-Device", "rogue", "ta"];
    d.create(
        &rogue,
        1,
        &["--vendor-id", "fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe"],
        COUNTER_V1,
        "rogue.suit",
    );
    d.admin(&["tc", "add", "rogue.suit"]);
    let rogue_manifest = id_text(&["TEEP-Device", "rogue", "suit"]);
    d.set_policy(&[&manifest, &rogue_manifest]);
    proxy.clear();
    let _ = d.output(&d.once_args());
    let (Message::Update(update), Message::Error(error)) = update_and_answer(&proxy.exchanges())
    else {
        panic!("not an Update answered by an Error")
    };
    assert_eq!(error.err_code, ErrCode::ManifestProcessingFailed);
    let reports = open_reports(&d.tam_data, error.suit_reports.as_deref().unwrap());
    let failed = reports
        .iter()
        .find(|r| r.result.is_err())
        .unwrap_or_else(|| panic!("no failed report: {reports:?}"));
    assert_eq!(failed.nonce, update.token, "nonce = token");
    let failed_digest = hex::encode(&failed.manifest_digest.bytes);

    let record = device_record(&d.admin(&["devices", "--json"]), &d.device_id);
    let kept: Vec<(String, bool)> = record["last_reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["manifest_digest"].as_str().unwrap().to_owned(),
                r["success"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(kept.contains(&(ok_digest, true)), "{kept:?}");
    assert!(kept.contains(&(failed_digest, false)), "{kept:?}");
    let installed = d.tam_installed();
    assert!(
        !installed.iter().any(|(m, _)| *m == rogue_manifest),
        "{installed:?}"
    );
    proxy.clear();
    let broker = d.start_broker(3600);
    proxy.wait_session_end();
    assert_eq!(d.listed_sequence(&rogue), None, "{:?}", d.listed());
    assert_eq!(
        d.listed_sequence(&["TEEP-Device", "counter", "ta"]),
        Some(1)
    );
    broker.stop();
    tee.stop();
}
