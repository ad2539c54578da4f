//! An older Agent across real processes: `teep tam serve --pre26-path` (a second engine in
//! the pre-26 numbering, ES256), `teep tee serve --numbering pre-26 --alg es256
//! --attestation none` (an Agent that cannot attest, as the older ones in the field), and
//! `teep device run --pre26` (the Broker, pointed at the pre-26 path). Unregistered, the
//! device gets nothing; once the operator registered its TEEP key as exempt from
//! attestation, the TAM installs the TA and the app invokes it.
//!
//! There is no admin endpoint that registers a device on this branch, so the test writes
//! the `Device` record with the store API (`SqlStore::put_device`) into the running TAM's
//! SQLite database, as an operator's tool would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::path::Path;

use common::{after, id_text, run, spawn_until, stop};
use serde_json::Value;
use teep_tam::sql::SqlStore;
use teep_tam::store::{Device, DeviceId};

/// Writes the operator's registration of `identity`'s TEEP key, exempt from attestation.
fn register_exempt(tam_data: &Path, identity: &Value) {
    let key = hex::decode(identity["teep_key"]["cose_key"].as_str().unwrap()).unwrap();
    let id: [u8; 32] = hex::decode(identity["teep_key"]["thumbprint"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let device = Device {
        id: DeviceId(id),
        key,
        class: None,
        revoked: false,
        suite: None,
        attested_at: None,
        failed: Vec::new(),
        attestation_exempt: true,
        installed: Vec::new(),
    };
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = SqlStore::open_data_dir(tam_data).await.unwrap();
        store.put_device(&device).await.unwrap();
        store.close().await;
    });
}

#[test]
fn an_older_agent_registered_as_exempt_gets_its_ta_on_the_pre26_path() {
    older_agent_flow(false);
}

/// Passport model across processes: `teep verifier serve` appraises the device; `teep
/// device run --verifier` takes the TEE's Evidence there and the EAR back to the TEE
/// (`--attestation passport`), which presents it to the pre-26 path. The TAM trusts that
/// Verifier (`--verifier`), so the unregistered device is served on its passport.
#[test]
fn an_older_agent_with_a_passport_gets_its_ta_on_the_pre26_path() {
    older_agent_flow(true);
}

/// The whole flow, with the device exempt (registered by the operator) or, when
/// `passport`, attested by a passport EAR from a Verifier both sides trust.
fn older_agent_flow(passport: bool) {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let tee_dir = work.join("tee").to_str().unwrap().to_owned();
    let dev_dir = work.join("device").to_str().unwrap().to_owned();
    let socket = format!("{dev_dir}/tee.sock");

    // First start of the TEE creates its identity.
    let (tee, _) = spawn_until(
        &["tee", "serve", "--state-dir", &tee_dir, "--socket", &socket],
        work,
        "tee socket: ",
    );
    stop(tee);
    let identity: Value = serde_json::from_str(&run(
        &["device", "identity", "--json", "--tee-dir", &tee_dir],
        work,
    ))
    .unwrap();
    let device_id = identity["teep_key"]["thumbprint"].as_str().unwrap();

    // Passport: the Verifier endorsing this device, with one token for the TAM and one for
    // the device (relying parties of their own).
    let tam_token = "tam-token-0123456789abcdef0123456789abcdef";
    let device_token = "device-token-0123456789abcdef0123456789abcd";
    let verifier = passport.then(|| {
        std::fs::write(
            work.join("policy.json"),
            common::endorsing_policy(&identity).to_string(),
        )
        .unwrap();
        std::fs::write(
            work.join("tokens"),
            format!("tam {tam_token}\ndevice {device_token}\n"),
        )
        .unwrap();
        run(&["keys", "generate", "--out", "verifier.key"], work);
        let (child, lines) = spawn_until(
            &[
                "verifier",
                "serve",
                "--policy",
                "policy.json",
                "--key",
                "verifier.key",
                "--tokens",
                "tokens",
                "--listen",
                "127.0.0.1:0",
            ],
            work,
            "listening on http://",
        );
        let url = format!("http://{}", after(&lines, "listening on http://"));
        (child, url)
    });
    let verifier_url = verifier
        .as_ref()
        .map(|(_, u)| u.clone())
        .unwrap_or_default();

    let tam_data = work.join("tam");
    let tam_dir = tam_data.to_str().unwrap().to_owned();
    let mut tam_args = vec![
        "tam",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--data-dir",
        &tam_dir,
        "--pre26-path",
        "/tam-pre26",
    ];
    if passport {
        tam_args.extend([
            "--verifier",
            &verifier_url,
            "--verifier-token",
            tam_token,
            "--verifier-key",
            "verifier.key.pub",
        ]);
    }
    let (tam, lines) = spawn_until(&tam_args, work, "older Agents (pre-26): ");
    let pre26_uri = after(&lines, "older Agents (pre-26): ").to_owned();
    assert!(pre26_uri.ends_with("/tam-pre26"), "{pre26_uri}");
    let admin_url = after(&lines, "admin API on ").to_owned();
    let admin = |args: &[&str]| {
        let mut all = vec!["tam"];
        all.extend(args);
        all.extend(["--admin-url", &admin_url, "--data-dir", &tam_dir]);
        run(&all, work)
    };

    // The TA and its personalization data, signed by the TC signer the TAM and the device
    // trust; the device's policy.
    let wasm = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../teep-agent/tas/counter-v1.wasm"
    );
    run(&["keys", "generate", "--out", "signer.key"], work);
    common::signed_tc(
        work,
        &["TEEP-Device", "counter", "ta"],
        "1",
        &[],
        wasm,
        "ta.suit",
    );
    std::fs::write(work.join("greeting.txt"), "Hello, older Agent").unwrap();
    common::signed_tc(
        work,
        &["TEEP-Device", "counter", "greeting"],
        "1",
        &[
            "--manifest-id",
            "TEEP-Device",
            "--manifest-id",
            "counter",
            "--manifest-id",
            "greeting.suit",
            "--depends-on",
            "ta.suit",
        ],
        "greeting.txt",
        "greeting.suit",
    );
    admin(&[
        "signer",
        "add",
        "--name",
        "vendor",
        "--key",
        "signer.key.pub",
    ]);
    admin(&["tc", "add", "ta.suit"]);
    admin(&["tc", "add", "greeting.suit"]);
    let ta_manifest = id_text(&["TEEP-Device", "counter", "suit"]);
    let perso_manifest = id_text(&["TEEP-Device", "counter", "greeting.suit"]);
    admin(&[
        "policy",
        "set",
        "--device",
        device_id,
        "--tc",
        &ta_manifest,
        "--tc",
        &perso_manifest,
    ]);

    // The TEE as an older Agent: pre-26 numbering, ES256, no attestation.
    let tam_key = format!("{tam_dir}/tam-esp256.key");
    let mut tee_args = vec![
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
        &pre26_uri,
        "--numbering",
        "pre-26",
        "--alg",
        "es256",
    ];
    if passport {
        tee_args.extend([
            "--attestation",
            "passport",
            "--passport-verifier",
            "verifier.key.pub",
        ]);
    } else {
        tee_args.extend(["--attestation", "none"]);
    }
    let (tee, _) = spawn_until(&tee_args, work, "tee socket: ");
    let mut device_args = vec![
        "device",
        "run",
        "--pre26",
        "--allow-plain-http",
        "--tam",
        &pre26_uri,
        "--state-dir",
        &dev_dir,
    ];
    if passport {
        device_args.extend([
            "--verifier",
            &verifier_url,
            "--verifier-token",
            device_token,
        ]);
    }
    let policy_check = || {
        let mut args = device_args.clone();
        args.push("--once");
        let once = run(&args, work);
        assert!(
            once.contains("1 TAM exchange(s) completed, 0 TAM(s) not reached"),
            "{once}"
        );
    };
    let devices = || -> Value { serde_json::from_str(&admin(&["devices", "--json"])).unwrap() };
    let listed = || -> Value {
        serde_json::from_str(&run(
            &["device", "list", "--json", "--state-dir", &dev_dir],
            work,
        ))
        .unwrap()
    };

    if !passport {
        // Not registered: the Agent answers without attestation, the TAM drops the answer
        // (unknown key, no Evidence) and records nothing. The Broker reaches the TAM, but
        // nothing is recorded.
        policy_check();
        let before = devices();
        assert!(
            before
                .as_array()
                .unwrap()
                .iter()
                .all(|d| d["id"] != device_id),
            "an unregistered, unattested device was recorded: {before}"
        );
        // The operator registers the device's TEEP key as exempt; the next check installs.
        register_exempt(&tam_data, &identity);
    }
    policy_check();

    let (broker, _) = spawn_until(&device_args, work, "api socket: ");
    let list = listed();
    let ta_id = serde_json::json!(["TEEP-Device", "counter", "ta"].map(hex::encode));
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|t| t["component_id"] == ta_id && t["sequence_number"] == 1),
        "{list}"
    );
    let out = run(
        &[
            "device",
            "invoke",
            "/TEEP-Device/counter/ta",
            "--input",
            "hi",
            "--state-dir",
            &dev_dir,
        ],
        work,
    );
    assert_eq!(out.trim(), "Hello, older Agent, call #1");

    let after_install = devices();
    let record = after_install
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == device_id)
        .unwrap_or_else(|| panic!("device {device_id} not in {after_install}"));
    assert_eq!(record["attestation_exempt"], !passport, "{record}");
    assert!(
        record["installed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m[0] == ta_manifest.as_str() && m[1] == 1),
        "{record}"
    );

    stop(broker);
    stop(tee);
    stop(tam);
    if let Some((mut child, _)) = verifier {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
