//! Issue 9 across real processes: a TEE that demands the TAM's attestation gets it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::path::Path;

use common::deployment::{id_text, spawn_until};
use common::{ok, teep};
use serde_json::{Value, json};

fn run(args: &[&str], dir: &Path) -> String {
    ok(teep().args(args).current_dir(dir).output().unwrap())
}

/// Issue 9: the TEE demands the TAM's attestation (`--require-tam-attestation`). The TAM's
/// Attestation Result is made with the CLI (`teep attest evidence` about the TAM's key,
/// appraised and signed by `teep attest verify --sign-key`) into the file `teep tam serve
/// --attestation-result` watches; the TAM answers the Agent's ERR_ATTESTATION_REQUIRED
/// with it and the install follows.
#[test]
fn a_tee_that_demands_tam_attestation_gets_it_and_the_install_follows() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let tee_dir = work.join("tee").to_str().unwrap().to_owned();
    let dev_dir = work.join("device").to_str().unwrap().to_owned();
    let socket = format!("{dev_dir}/tee.sock");
    let tee = spawn_until(
        &["tee", "serve", "--state-dir", &tee_dir, "--socket", &socket],
        work,
        "tee socket: ",
        &work.join("tee-socket.log"),
    );
    tee.stop();
    let identity: Value = serde_json::from_str(&run(
        &["device", "identity", "--json", "--tee-dir", &tee_dir],
        work,
    ))
    .unwrap();
    let claims = &identity["claims"];
    let device_policy = json!({
        "policy_id": "policy:devices",
        "endorsements": [ { "key": identity["attestation_key"]["pem"], "ueid": identity["ueid"] } ],
        "reference_values": {
            "oemids": [claims["oemid"]],
            "hwmodels": [claims["hwmodel"]],
            "tc_digests": claims["manifests"].as_array().unwrap().iter()
                .map(|m| m["sha256"].clone()).collect::<Vec<_>>(),
        },
    });
    std::fs::write(work.join("policy.json"), device_policy.to_string()).unwrap();

    // The TAM starts watching a result file that is not there yet (its keys are made now).
    let tam_data = work.join("tam").to_str().unwrap().to_owned();
    run(&["keys", "generate", "--out", "tam-verifier.key"], work);
    let tam = spawn_until(
        &[
            "tam",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
            &tam_data,
            "--verifier-policy",
            "policy.json",
            "--attestation-result",
            "tam-ear.cbor",
            "--attestation-verifier-key",
            "tam-verifier.key.pub",
        ],
        work,
        "listening on http://",
        &work.join("listening-on-http.log"),
    );
    let tam_uri = format!("http://{}", tam.after("listening on http://"));
    let admin_url = tam.after("admin API on ").to_owned();
    let tam_key = format!("{tam_data}/tam-esp256.key");

    // The TAM's platform attests the TAM's TEEP key; the TAM's Verifier appraises it.
    run(&["keys", "generate", "--out", "tam-attest.key"], work);
    let tam_claims = json!({
        "ueid": "01".repeat(17),
        "oemid": 32473,
        "hwmodel": hex::encode("teep tam host"),
        "hwversion": ["1", 1],
        "manifests": [ { "uri": "urn:teep:tam", "sha256": "ab".repeat(32) } ],
    });
    std::fs::write(work.join("tam-claims.json"), tam_claims.to_string()).unwrap();
    let attest_pub = hex::encode(std::fs::read(work.join("tam-attest.key.pub")).unwrap());
    let tam_policy = json!({
        "policy_id": "policy:tam",
        "endorsements": [ { "key": attest_pub, "ueid": "01".repeat(17) } ],
        "reference_values": {
            "oemids": [32473],
            "hwmodels": [hex::encode("teep tam host")],
            "tc_digests": ["ab".repeat(32)],
        },
    });
    std::fs::write(work.join("tam-policy.json"), tam_policy.to_string()).unwrap();
    run(
        &[
            "attest",
            "evidence",
            "--key",
            "tam-attest.key",
            "--claims",
            "tam-claims.json",
            "--cnf-key",
            &tam_key,
            "--cnf-form",
            "cose-key",
            "--out",
            "tam-evidence.cbor",
        ],
        work,
    );
    run(
        &[
            "attest",
            "verify",
            "--policy",
            "tam-policy.json",
            "--teep-key",
            &tam_key,
            "--sign-key",
            "tam-verifier.key",
            "--ear-out",
            "tam-ear.cbor",
            "tam-evidence.cbor",
        ],
        work,
    );

    // One TA, for this device.
    let wasm = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../teep-agent/tas/counter-v1.wasm"
    );
    run(&["keys", "generate", "--out", "signer.key"], work);
    run(
        &[
            "suit",
            "create",
            "--component-id",
            "TEEP-Device",
            "--component-id",
            "counter",
            "--component-id",
            "ta",
            "--seq",
            "1",
            "--payload",
            wasm,
            "--out",
            "unsigned",
        ],
        work,
    );
    run(
        &[
            "suit",
            "sign",
            "--key",
            "signer.key",
            "unsigned",
            "--out",
            "ta.suit",
        ],
        work,
    );
    let admin = |args: &[&str]| {
        let mut all = vec!["tam"];
        all.extend(args);
        all.extend(["--admin-url", &admin_url, "--data-dir", &tam_data]);
        run(&all, work)
    };
    admin(&[
        "signer",
        "add",
        "--name",
        "vendor",
        "--key",
        "signer.key.pub",
    ]);
    admin(&["tc", "add", "ta.suit"]);
    let device_id = identity["teep_key"]["thumbprint"].as_str().unwrap();
    let ta_manifest = id_text(&["TEEP-Device", "counter", "suit"]);
    admin(&["policy", "set", "--device", device_id, "--tc", &ta_manifest]);

    // The TEE demands the TAM's attestation from the TAM's Verifier.
    let tee = spawn_until(
        &[
            "tee",
            "serve",
            "--state-dir",
            &tee_dir,
            "--socket",
            &socket,
            "--trust-tam",
            &tam_key,
            "--trust-signer",
            "signer.key.pub",
            "--tam",
            &tam_uri,
            "--require-tam-attestation",
            "--tam-verifier-key",
            "tam-verifier.key.pub",
        ],
        work,
        "tee socket: ",
        &work.join("tee-socket.log"),
    );
    let once = run(
        &[
            "device",
            "run",
            "--once",
            "--allow-plain-http",
            "--tam",
            &tam_uri,
            "--state-dir",
            &dev_dir,
        ],
        work,
    );
    assert!(
        once.contains("1 TAM exchange(s) completed, 0 TAM(s) not reached"),
        "{once}"
    );
    let broker = spawn_until(
        &[
            "device",
            "run",
            "--allow-plain-http",
            "--tam",
            &tam_uri,
            "--state-dir",
            &dev_dir,
        ],
        work,
        "api socket: ",
        &work.join("api-socket.log"),
    );
    let ta_id = json!(["TEEP-Device", "counter", "ta"].map(|s| hex::encode(s.as_bytes())));
    let list: Value = serde_json::from_str(&run(
        &["device", "list", "--json", "--state-dir", &dev_dir],
        work,
    ))
    .unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["component_id"] == ta_id && t["sequence_number"] == 1),
        "{list}"
    );
    broker.stop();
    tee.stop();
    tam.stop();
}
