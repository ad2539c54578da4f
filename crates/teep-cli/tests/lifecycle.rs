//! The first install across real processes: `teep tam serve` (in-process Verifier endorsing
//! the device), `teep tee serve` (the software TEE, trusting the TAM and the TC signer),
//! `teep device run` (the Broker); the TA and its personalization data made with `teep suit
//! create` and uploaded with the admin commands; then the app side lists and invokes it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::path::{Path, PathBuf};

use common::{after, ok, spawn_until, stop, teep};
use serde_json::{Value, json};

fn run(args: &[&str], dir: &Path) -> String {
    ok(teep().args(args).current_dir(dir).output().unwrap())
}

/// A component ID in its canonical text form (what the admin API and `teep device` take).
fn id_text(segments: &[&str]) -> String {
    teep_suit::ComponentId::from_strs(segments).to_string()
}

struct Device {
    tee_dir: PathBuf,
    dev_dir: PathBuf,
}

impl Device {
    fn app(&self, args: &[&str], work: &Path) -> String {
        let mut all = args.to_vec();
        all.extend(["--state-dir", self.dev_dir.to_str().unwrap()]);
        run(&all, work)
    }
}

#[test]
fn a_tam_installs_a_ta_on_a_device_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let device = Device {
        tee_dir: work.join("tee"),
        dev_dir: work.join("device"),
    };
    let tee_dir = device.tee_dir.to_str().unwrap().to_owned();
    let socket = device.dev_dir.join("tee.sock");
    let socket = socket.to_str().unwrap().to_owned();

    // First start of the TEE: it creates its identity; the REE side reads the public half.
    let (tee, _) = spawn_until(
        &["tee", "serve", "--state-dir", &tee_dir, "--socket", &socket],
        work,
        "tee socket: ",
    );
    stop(tee);
    assert!(!Path::new(&socket).exists(), "socket removed on shutdown");
    let identity: Value = serde_json::from_str(&run(
        &["device", "identity", "--json", "--tee-dir", &tee_dir],
        work,
    ))
    .unwrap();
    let claims = &identity["claims"];
    assert_eq!(claims["ueid"], identity["ueid"]);

    // The TAM's Verifier endorses exactly this device's attestation key.
    let policy = json!({
        "policy_id": "policy:lifecycle",
        "endorsements": [ { "key": identity["attestation_key"]["pem"], "ueid": identity["ueid"] } ],
        "reference_values": {
            "oemids": [claims["oemid"]],
            "hwmodels": [claims["hwmodel"]],
            "hwversions": [claims["hwversion"][0]],
            "tc_digests": claims["manifests"].as_array().unwrap().iter()
                .map(|m| m["sha256"].clone()).collect::<Vec<_>>(),
        },
    });
    std::fs::write(work.join("policy.json"), policy.to_string()).unwrap();
    let tam_data = work.join("tam");
    let tam_data = tam_data.to_str().unwrap().to_owned();
    let (tam, lines) = spawn_until(
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
        ],
        work,
        "listening on http://",
    );
    let tam_uri = format!("http://{}", after(&lines, "listening on http://"));
    let admin_url = after(&lines, "admin API on ").to_owned();
    let admin = |args: &[&str]| {
        let mut all = vec!["tam"];
        all.extend(args);
        all.extend(["--admin-url", &admin_url, "--data-dir", &tam_data]);
        run(&all, work)
    };

    // The TA (counter-v1) and its personalization data, signed by the TC signer.
    let wasm = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../teep-agent/tas/counter-v1.wasm"
    );
    run(&["keys", "generate", "--out", "signer.key"], work);
    let create = |segments: &[&str], seq: &str, extra: &[&str], payload: &str, out: &str| {
        let mut args = vec!["suit", "create"];
        for s in segments {
            args.extend(["--component-id", s]);
        }
        args.extend(extra);
        args.extend(["--seq", seq, "--payload", payload, "--out", "unsigned"]);
        run(&args, work);
        run(
            &[
                "suit",
                "sign",
                "--key",
                "signer.key",
                "unsigned",
                "--out",
                out,
            ],
            work,
        );
    };
    create(&["TEEP-Device", "counter", "ta"], "1", &[], wasm, "ta.suit");
    std::fs::write(work.join("greeting.txt"), "Hello from the TAM").unwrap();
    create(
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
    let device_id = identity["teep_key"]["thumbprint"].as_str().unwrap();
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

    // The TEE again, now trusting the TAM's key and the TC signer.
    let tam_key = format!("{tam_data}/tam-esp256.key");
    // Evidence and SUIT reports go encrypted to the TAM (draft §12).
    let tam_encryption = format!("{tam_data}/tam-encryption.pub.pem");
    let (tee, _) = spawn_until(
        &[
            "tee",
            "serve",
            "--state-dir",
            &tee_dir,
            "--socket",
            &socket,
            "--trust-tam",
            &tam_key,
            "--tam-encryption-key",
            &tam_encryption,
            "--trust-signer",
            "signer.key.pub",
            "--tam",
            &tam_uri,
        ],
        work,
        "tee socket: ",
    );
    let dev_dir = device.dev_dir.to_str().unwrap().to_owned();
    // One policy check by a Broker run with --once: one exchange with the TAM, reached.
    let policy_check = || {
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
    };
    policy_check();

    let (broker, _) = spawn_until(
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
    );
    // The device lists the TA at `sequence` (`teep device list --json`).
    let ta_id = json!(["TEEP-Device", "counter", "ta"].map(|s| hex::encode(s.as_bytes())));
    let assert_listed = |sequence: u64| {
        let list: Value =
            serde_json::from_str(&device.app(&["device", "list", "--json"], work)).unwrap();
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .any(|t| t["component_id"] == ta_id && t["sequence_number"] == sequence),
            "{list}"
        );
    };
    assert_listed(1);
    // What the TA answers the app (`teep device invoke`).
    let invoke = || {
        let out = device.app(
            &[
                "device",
                "invoke",
                "/TEEP-Device/counter/ta",
                "--input",
                "hi",
            ],
            work,
        );
        out.trim().to_owned()
    };
    for n in 1..=2 {
        let out = invoke();
        assert_eq!(out, format!("Hello from the TAM, call #{n}"));
    }

    // The vendor releases counter-v2 (sequence 2): the next policy check updates it in
    // place; the TA's store (the count) and its personalization data are kept.
    let wasm_v2 = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../teep-agent/tas/counter-v2.wasm"
    );
    create(
        &["TEEP-Device", "counter", "ta"],
        "2",
        &[],
        wasm_v2,
        "ta-v2.suit",
    );
    admin(&["tc", "add", "ta-v2.suit"]);
    policy_check();
    assert_listed(2);
    assert_eq!(invoke(), "v2: HELLO FROM THE TAM, call #4");

    let devices: Value = serde_json::from_str(&admin(&["devices", "--json"])).unwrap();
    let record = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == device_id)
        .unwrap_or_else(|| panic!("device {device_id} not in {devices}"));
    let installed: Vec<&str> = record["installed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].as_str().unwrap())
        .collect();
    assert!(installed.contains(&ta_manifest.as_str()), "{record}");
    let ta_record = record["installed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m[0] == ta_manifest.as_str())
        .unwrap();
    assert_eq!(ta_record[1], 2, "the TAM recorded the update: {record}");
    assert!(installed.contains(&perso_manifest.as_str()), "{record}");

    stop(broker);
    stop(tee);
    assert!(!Path::new(&socket).exists(), "socket removed on shutdown");
    stop(tam);
}
