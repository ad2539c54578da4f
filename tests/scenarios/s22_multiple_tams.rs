//! Scenario 22. Multiple TAMs managing different TCs on one device (a TAM without
//! permission for a component must not touch it).
//!
//! Two `teep tam serve` processes with their own keys; the TEE trusts and contacts both.
//! TAM A installs the counter TA, TAM B another TA. TAM B then tries to take over A's TC,
//! as a TAM trusted by the device but without permission for that component would: it
//! uploads a higher, validly signed version of the counter (same TC signer) and puts it in
//! the device's policy, so its Update replaces A's manifest; and (B's key signing an Update a
//! proxy in front of B delivers, as a compromised B would: a real TAM unlinks only what it
//! installed) it unlinks it through unneeded-manifest-list. The Agent records which TAM key
//! installed each manifest (sealed state) and refuses both with
//! ERR_MANIFEST_PROCESSING_FAILED: the device keeps A's version, B records nothing of it,
//! and A still updates its own TC. When the app no longer needs A's TC, A unlinks it. Both TAMs share the TEE's one `--tam-encryption-key`
//! (the software TEE encrypts SUIT reports and Evidence to one TAM key; B's data directory
//! gets a copy of A's encryption key).

use crate::common::deployment::{COUNTER_V1, Deployment, Spawned, id_text};
use teep_proto::{Message, Update};
use teep_suit::ComponentId;

use crate::messages::{device_record, sign_with, tam_key};
use crate::processes::Tam;
use crate::proxy::{Action, Proxy};

const TA: [&str; 3] = ["TEEP-Device", "counter", "ta"];
const OTHER: [&str; 3] = ["TEEP-Device", "other", "ta"];

/// One policy check of the Broker: both TAMs reached.
fn check_both(d: &Deployment) -> String {
    let once = d.run(&d.once_args());
    assert!(
        once.contains("2 TAM exchange(s) completed, 0 TAM(s) not reached"),
        "{once}"
    );
    once
}

/// The manifests TAM `tam` records as installed on the device.
fn installed_at(d: &Deployment, tam: &Tam) -> String {
    device_record(&tam.admin(d, &["devices", "--json"]), &d.device_id)["installed"].to_string()
}

/// How many Updates the TEE refused as touching another TAM's manifest (its log).
fn refusals(tee: &Spawned) -> usize {
    std::fs::read_to_string(&tee.log)
        .unwrap()
        .matches("refusal=manifest installed by another TAM err_code=ManifestProcessingFailed")
        .count()
}

#[test]
fn a_tam_cannot_replace_or_unlink_a_tc_another_tam_installed() {
    let d = Deployment::new();
    let b_dir = d.work().join("tam-b");
    std::fs::create_dir_all(&b_dir).unwrap();
    for name in ["tam-encryption.key", "tam-encryption.pub.pem"] {
        std::fs::copy(format!("{}/{name}", d.tam_data), b_dir.join(name)).unwrap();
    }
    let b = Tam::start(&d, "tam-b", &[]).with_signer(&d);
    let counter = id_text(&["TEEP-Device", "counter", "suit"]);
    let other = id_text(&["TEEP-Device", "other", "suit"]);
    d.upload_counter(1);
    d.set_policy(&[&counter]);
    d.create(&OTHER, 1, &[], COUNTER_V1, "other.suit");
    b.admin(&d, &["tc", "add", "other.suit"]);
    let policy_b = |tcs: &[&str]| {
        let mut args = vec!["policy", "set", "--device", &d.device_id];
        for tc in tcs {
            args.extend(["--tc", tc]);
        }
        b.admin(&d, &args);
    };
    policy_b(&[&other]);
    // B is reached through a proxy, which can answer with what B's key signs.
    let proxy = Proxy::forward(&b.uri);
    let b_key = format!("{}/tam-esp256.pub.pem", b.data);
    let tee = d.start_tee_with(&["--trust-tam", &b_key, "--tam", &proxy.uri()]);
    check_both(&d);
    let broker = d.start_broker(3600);
    assert_eq!(d.listed_sequence(&TA), Some(1), "{:?}", d.listed());
    assert_eq!(d.listed_sequence(&OTHER), Some(1), "{:?}", d.listed());
    assert!(d.tam_installed().contains(&(counter.clone(), 1)));
    assert!(installed_at(&d, &b).contains(&other));

    // B replaces A's TC with a higher, validly signed version.
    d.create(&TA, 2, &[], COUNTER_V1, "ta-b-2.suit");
    b.admin(&d, &["tc", "add", "ta-b-2.suit"]);
    policy_b(&[&other, &counter]);
    let _ = d.output(&d.once_args());
    assert_eq!(d.listed_sequence(&TA), Some(1), "B replaced A's TC");
    assert!(!installed_at(&d, &b).contains(&counter), "B records A's TC");
    assert_eq!(refusals(&tee), 1, "B's Update was not refused by the Agent");

    // B's Update unlinking A's TC (B's own TAM never unlinks what it did not install, so
    // this one is signed by B's key in the test, as a compromised B would).
    let unlink = Message::Update(Update {
        token: Some(vec![0x5a; 16]),
        unneeded_manifest_list: Some(vec![ComponentId::from_strs(&[
            "TEEP-Device",
            "counter",
            "suit",
        ])]),
        ..Update::default()
    });
    proxy.plan([Action::Reply(sign_with(&tam_key(&b.data), &unlink))]);
    let _ = d.output(&d.once_args());
    assert_eq!(d.listed_sequence(&TA), Some(1), "B unlinked A's TC");
    assert_eq!(d.listed_sequence(&OTHER), Some(1));
    assert!(d.tam_installed().contains(&(counter.clone(), 1)));
    assert_eq!(refusals(&tee), 2, "B's unlink was not refused by the Agent");

    // A still manages its own TC.
    policy_b(&[&other]);
    d.upload_counter(3);
    let _ = d.output(&d.once_args());
    assert_eq!(d.listed_sequence(&TA), Some(3), "{:?}", d.listed());
    assert!(d.tam_installed().contains(&(counter.clone(), 3)));
    assert!(installed_at(&d, &b).contains(&other));

    // The app no longer needs the counter: A, which installed it, unlinks it (its policy lets
    // the device keep or drop it: requestable, not required); B, never told of it (the
    // Agent lists an unneeded manifest only to its installer: teep-agent
    // `engine::unneeded_manifests_are_listed_only_to_the_tam_that_installed_them`), tries
    // nothing.
    d.admin(&[
        "policy",
        "set",
        "--device",
        &d.device_id,
        "--requestable",
        &counter,
    ]);
    check_both(&d);
    assert_eq!(d.listed_sequence(&TA), Some(3), "a requestable TC stays");
    d.app(&["device", "unrequest", "/TEEP-Device/counter/ta"]);
    check_both(&d);
    assert_eq!(d.listed_sequence(&TA), None, "{:?}", d.listed());
    assert_eq!(d.listed_sequence(&OTHER), Some(1));
    assert!(!d.tam_installed().iter().any(|(m, _)| *m == counter));
    assert_eq!(refusals(&tee), 2, "B was offered A's unneeded TC");
    broker.stop();
    tee.stop();
}
