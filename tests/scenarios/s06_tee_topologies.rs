//! Scenario 6. Devices without an REE (transport inside the TEE) and devices with several
//! TEEs (shared or per-TEE Broker).
//!
//! How: one device with two TEEs, each with a Broker of its own (the per-TEE topology): two
//! `teep tee serve` (two state directories, so two identities: ueid, TEEP key, attestation
//! key) and two `teep device run` (two device directories, each finding its TEE's socket),
//! all talking to one `teep tam serve` whose Verifier endorses both TEEs. The TAM sees two
//! devices: TEE 1 is given the counter TA, TEE 2 the counter and a second TA. Each Broker's
//! policy check installs exactly its TEE's TAs; each TEE lists its own, the TAs' stores are
//! separate (each TEE's counter counts from 1), and the TAM records each device apart. The
//! crossing attempt: TEE 1's Broker asks its TEE for TEE 2's TA (`teep device request`); the
//! TAM does not list it for TEE 1, so nothing is installed there.
//!
//! Not between processes, and why:
//! * A device without an REE: TEEP/HTTP is spoken by the Broker (`teep device run`), a
//!   process outside the TEE; `teep tee serve` has no HTTP client of its own, so there is no
//!   binary that puts the transport inside the TEE.
//! * A shared Broker over several TEEs: `teep device run` takes one `--tee-socket` (one
//!   Agent per Broker), so one Broker cannot serve two TEEs.

use serde_json::{Value, json};

use crate::common::deployment::{COUNTER_V1, Deployment, id_json, id_text, spawn_until};
use crate::processes::{Tam, installed_of, start_tee_at};
use crate::s01_session::{TA, ta_manifest};

const OTHER: [&str; 3] = ["TEEP-Device", "other", "ta"];
const GREETING: [&str; 3] = ["TEEP-Device", "counter", "greeting"];

/// `items` in a fixed order (by their debug text).
fn sorted<T: std::fmt::Debug>(mut items: Vec<T>) -> Vec<T> {
    items.sort_by_key(|i| format!("{i:?}"));
    items
}

/// `teep device ARGS --state-dir DEV`, which must succeed.
fn app(d: &Deployment, dev: &str, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--state-dir", dev]);
    d.run(&all)
}

/// The component IDs (JSON) a device directory's Broker lists.
fn listed(d: &Deployment, dev: &str) -> Vec<Value> {
    let list: Value = serde_json::from_str(&app(d, dev, &["device", "list", "--json"])).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["component_id"].clone())
        .collect()
}

#[test]
fn s06_two_tees_on_one_device_each_with_its_broker() {
    let mut d = Deployment::new();
    let work = d.work().to_path_buf();
    let tee2_dir = work.join("tee2").to_str().unwrap().to_owned();
    let dev2 = work.join("device2").to_str().unwrap().to_owned();
    let socket2 = format!("{dev2}/tee.sock");
    // The second TEE's first start makes its identity.
    spawn_until(
        &[
            "tee",
            "serve",
            "--state-dir",
            &tee2_dir,
            "--socket",
            &socket2,
        ],
        &work,
        "tee socket: ",
        &d.log("tee"),
    )
    .stop();
    let identity2: Value =
        serde_json::from_str(&d.run(&["device", "identity", "--json", "--tee-dir", &tee2_dir]))
            .unwrap();
    let device2 = identity2["teep_key"]["thumbprint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(device2, d.device_id, "two TEEs, two identities");

    // The TAM again, its Verifier endorsing both TEEs' attestation keys.
    let mut policy: Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("policy.json")).unwrap()).unwrap();
    policy["endorsements"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "key": identity2["attestation_key"]["pem"], "ueid": identity2["ueid"] }));
    std::fs::write(work.join("policy.json"), policy.to_string()).unwrap();
    d.stop_tam();
    let tam = Tam::start(&d, "tam", &[]);
    d.admin_url.clone_from(&tam.admin_url);
    d.tam_uri.clone_from(&tam.uri);

    d.upload_counter(1);
    // The counter's personalization data (its greeting), which it needs to run.
    d.upload_greeting(1, 1);
    let greeting = id_text(&["TEEP-Device", "counter", "greeting.suit"]);
    d.create(&OTHER, 1, &[], COUNTER_V1, "other.suit");
    d.admin(&["tc", "add", "other.suit"]);
    let other_manifest = id_text(&["TEEP-Device", "other", "suit"]);
    d.set_policy(&[&ta_manifest(), &greeting]);
    d.admin(&[
        "policy",
        "set",
        "--device",
        &device2,
        "--tc",
        &ta_manifest(),
        "--tc",
        &greeting,
        "--tc",
        &other_manifest,
    ]);

    let _tee1 = d.start_tee();
    let _tee2 = start_tee_at(
        &d,
        (&tee2_dir, &socket2),
        &[&d.tam_data],
        &[&d.tam_uri],
        &[],
    );
    d.policy_check();
    let once2 = app(
        &d,
        &dev2,
        &[
            "device",
            "run",
            "--once",
            "--allow-plain-http",
            "--tam",
            &d.tam_uri,
        ],
    );
    assert!(
        once2.contains("1 TAM exchange(s) completed, 0 TAM(s) not reached"),
        "{once2}"
    );

    let broker1 = d.start_broker(300);
    let broker2 = spawn_until(
        &[
            "device",
            "run",
            "--allow-plain-http",
            "--tam",
            &d.tam_uri,
            "--state-dir",
            &dev2,
            "--interval",
            "300",
        ],
        &work,
        "api socket: ",
        &d.log("broker"),
    );
    let counter = vec![id_json(&TA), id_json(&GREETING)];
    assert_eq!(sorted(listed(&d, &d.dev_dir)), sorted(counter.clone()));
    let expected = vec![id_json(&TA), id_json(&GREETING), id_json(&OTHER)];
    assert_eq!(sorted(listed(&d, &dev2)), sorted(expected));
    // The TAM's two records.
    let devices = d.admin(&["devices", "--json"]);
    let recorded1 = sorted(installed_of(&devices, &d.device_id));
    assert_eq!(
        recorded1,
        sorted(vec![(ta_manifest(), 1), (greeting.clone(), 1)])
    );
    assert_eq!(
        sorted(installed_of(&devices, &device2)),
        sorted(vec![(ta_manifest(), 1), (greeting, 1), (other_manifest, 1)])
    );

    // Separate TA stores: each TEE's counter counts its own calls.
    let invoke = |dev: &str| {
        app(
            &d,
            dev,
            &[
                "device",
                "invoke",
                "/TEEP-Device/counter/ta",
                "--input",
                "hi",
            ],
        )
        .trim()
        .to_owned()
    };
    assert_eq!(invoke(&d.dev_dir), "Hello from the TAM, call #1");
    assert_eq!(invoke(&d.dev_dir), "Hello from the TAM, call #2");
    assert_eq!(invoke(&dev2), "Hello from the TAM, call #1");

    // TEE 1 asks for TEE 2's TA: the TAM has it, but not for this device.
    let out = d.output(&[
        "device",
        "request",
        "/TEEP-Device/other/ta",
        "--state-dir",
        &d.dev_dir,
    ]);
    // The exchange runs (the TAM heard the request) but installs nothing.
    let stdout = crate::common::ok(out);
    assert!(stdout.contains("completed (1 TAM exchange(s))"), "{stdout}");
    assert_eq!(sorted(listed(&d, &d.dev_dir)), sorted(counter));
    assert_eq!(
        sorted(installed_of(&d.admin(&["devices", "--json"]), &d.device_id)),
        recorded1
    );
    broker1.stop();
    broker2.stop();
}
