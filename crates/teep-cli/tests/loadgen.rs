//! `teep loadgen` against a real `teep tam serve`: the fleet's policy made by
//! `--write-policy` lets the TAM's Verifier attest every simulated device, every session
//! completes, each device installs the TA the default class's policy names, and the TAM
//! then holds one attested record per device.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use common::{after, ok, run, signed_tc, spawn_until, stop, teep};
use std::path::Path;
use std::process::Child;

use serde_json::Value;

/// Starts `teep tam serve` in `work` (data in `tam/`) with the Verifier `policy`; the
/// child, its TEEP URL and its admin URL.
fn start_tam(work: &Path, policy: &str) -> (Child, String, String) {
    let (tam, lines) = start_tam_with(work, policy, &[], "listening on http://");
    let tam_uri = format!("http://{}", after(&lines, "listening on http://"));
    let admin_url = after(&lines, "admin API on ").to_owned();
    (tam, tam_uri, admin_url)
}

/// [`start_tam`] with `extra` arguments; the child and its start-up lines up to `ready`.
fn start_tam_with(work: &Path, policy: &str, extra: &[&str], ready: &str) -> (Child, Vec<String>) {
    let mut args = vec![
        "tam",
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--data-dir",
        "tam",
        "--verifier-policy",
        policy,
        // Every simulated device posts from 127.0.0.1: lift the per-client limit.
        "--rate",
        "100000",
        "--burst",
        "100000",
    ];
    args.extend(extra);
    spawn_until(&args, work, ready)
}

/// Publishes one signed TA (`signer.key`, made here) for the TAM's default class, which
/// every device the TAM has no class for is in.
fn publish_default_ta(work: &Path, admin_url: &str) {
    let admin = |args: &[&str]| admin(work, admin_url, args);
    run(&["keys", "generate", "--out", "signer.key"], work);
    std::fs::write(work.join("ta.bin"), b"a TA image").unwrap();
    signed_tc(
        work,
        &["TEEP-Device", "load", "ta"],
        "1",
        &[],
        "ta.bin",
        "ta.suit",
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
    let manifest = teep_suit::ComponentId::from_strs(&["TEEP-Device", "load", "suit"]).to_string();
    admin(&["policy", "set", "--class", "default", "--tc", &manifest]);
}

/// Two devices, one at a time, for a second.
const TWO_FOR_A_SECOND: Load<'static> = Load {
    devices: "2",
    concurrency: "1",
    duration: "1",
};

/// `teep tam ARGS` against the admin API at `admin_url`; its output.
fn admin(work: &Path, admin_url: &str, args: &[&str]) -> String {
    let mut all = vec!["tam"];
    all.extend(args);
    all.extend(["--admin-url", admin_url, "--data-dir", "tam"]);
    run(&all, work)
}

/// A work directory holding loadgen fleets named `fleets`, each with the Verifier policy
/// that endorses its devices (`--write-policy`).
fn with_fleets(fleets: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for fleet in fleets {
        ok(teep()
            .args(["loadgen", "--write-policy", "--fleet", fleet])
            .current_dir(dir.path())
            .output()
            .unwrap());
    }
    dir
}

/// How many devices loadgen runs, how many at once, and for how many seconds.
struct Load<'a> {
    devices: &'a str,
    concurrency: &'a str,
    duration: &'a str,
}

/// Runs `teep loadgen --json` in `work` for the devices of `fleet` against `tam_uri`
/// (trusting the TAM key `trust_tam`), sized by `load`, with `extra` arguments; its exit
/// status and figures.
fn loadgen(
    work: &Path,
    tam_uri: &str,
    trust_tam: &str,
    fleet: &str,
    load: &Load<'_>,
    extra: &[&str],
) -> (bool, Value) {
    let mut all = vec![
        "loadgen",
        "--json",
        "--tam",
        tam_uri,
        "--trust-tam",
        trust_tam,
        "--fleet",
        fleet,
        "--devices",
        load.devices,
        "--concurrency",
        load.concurrency,
        "--duration",
        load.duration,
    ];
    all.extend(extra);
    let out = teep().args(&all).current_dir(work).output().unwrap();
    let figures: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    (out.status.success(), figures)
}

/// The TAM's device records (`teep tam devices --json`).
fn tam_devices(work: &Path, admin_url: &str) -> Value {
    let args = [
        "tam",
        "devices",
        "--json",
        "--admin-url",
        admin_url,
        "--data-dir",
        "tam",
    ];
    serde_json::from_str(&ok(teep().args(args).current_dir(work).output().unwrap())).unwrap()
}

#[test]
fn simulated_devices_attest_install_and_complete_their_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    let out = ok(teep()
        .args(["loadgen", "--write-policy", "--fleet", "fleet"])
        .current_dir(work)
        .output()
        .unwrap());
    assert!(out.contains("fleet/policy.json"), "{out}");
    let (tam, tam_uri, admin_url) = start_tam(work, "fleet/policy.json");
    // One TA for the default class, which every newly attested device is put in.
    publish_default_ta(work, &admin_url);

    let six = Load {
        devices: "6",
        concurrency: "3",
        duration: "3",
    };
    let (success, figures) = loadgen(
        work,
        &tam_uri,
        "tam/tam-esp256.pub.pem",
        "fleet",
        &six,
        &["--trust-signer", "signer.key.pub"],
    );
    assert!(success, "{figures}");
    assert_eq!(
        figures["mode"],
        serde_json::json!({"numbering": "26", "alg": "esp256", "attestation": "evidence", "churn_secs": null})
    );
    assert!(
        figures["sessions_per_second"].as_f64().unwrap() > 0.0,
        "{figures}"
    );
    assert_eq!(figures["errors"], serde_json::json!({}), "{figures}");
    assert!(figures["sessions"].as_u64().unwrap() >= 6, "{figures}");
    assert!(figures["p99_ms"].as_f64().unwrap() >= figures["p50_ms"].as_f64().unwrap());
    // Every device installed the class's TA through its sessions.
    assert_eq!(
        figures["devices_by_installed_tcs"],
        serde_json::json!({"1": 6}),
        "{figures}"
    );

    // The TAM attested and recorded each of the six devices.
    let devices = tam_devices(work, &admin_url);
    let devices = devices.as_array().unwrap();
    assert_eq!(devices.len(), 6, "{devices:?}");
    assert!(
        devices.iter().all(|d| !d["attested_at"].is_null()),
        "{devices:?}"
    );
    stop(tam);
}

#[test]
fn the_tam_records_no_device_its_verifier_does_not_endorse() {
    // Two fleets: the TAM's Verifier endorses the first; devices of the second attest with
    // a key it does not know, so the TAM drops their QueryResponses (204) and records none.
    let dir = with_fleets(&["endorsed", "stranger"]);
    let work = dir.path();
    let (tam, tam_uri, admin_url) = start_tam(work, "endorsed/policy.json");
    let (_, figures) = loadgen(
        work,
        &tam_uri,
        "tam/tam-esp256.key",
        "stranger",
        &TWO_FOR_A_SECOND,
        &[],
    );
    let devices = tam_devices(work, &admin_url);
    assert_eq!(devices.as_array().unwrap().len(), 0, "{devices}; {figures}");
    stop(tam);
}

/// Loadgen as older Agents: pre-26 numbering, ES256, no attestation, on the TAM's pre-26
/// path. Registered exempt in the TAM's store first, every device gets the default class's
/// TA; the same fleet registered in another store (the TAM does not know them) gets
/// nothing and the TAM records none of them.
#[test]
fn older_agents_registered_exempt_are_served_on_the_pre26_path() {
    let dir = with_fleets(&["fleet"]);
    let work = dir.path();
    let (tam, lines) = start_tam_with(
        work,
        "fleet/policy.json",
        &["--pre26-path", "/tam-pre26"],
        "older Agents (pre-26): ",
    );
    let pre26_uri = after(&lines, "older Agents (pre-26): ").to_owned();
    let admin_url = after(&lines, "admin API on ").to_owned();
    publish_default_ta(work, &admin_url);
    let four = Load {
        devices: "4",
        concurrency: "2",
        duration: "2",
    };
    let older = |database: &str| {
        loadgen(
            work,
            &pre26_uri,
            "tam/tam-esp256.key",
            "fleet",
            &four,
            &[
                "--trust-signer",
                "signer.key.pub",
                "--numbering",
                "pre-26",
                "--alg",
                "es256",
                "--database",
                database,
            ],
        )
    };

    // Registered in a store that is not the TAM's: unknown, unattested, served nothing.
    std::fs::create_dir(work.join("elsewhere")).unwrap();
    let (_, figures) = older("sqlite://elsewhere/tam.sqlite3?mode=rwc");
    assert_eq!(
        figures["devices_by_installed_tcs"],
        serde_json::json!({"0": 4}),
        "{figures}"
    );
    assert_eq!(tam_devices(work, &admin_url), serde_json::json!([]));

    let (success, figures) = older("sqlite://tam/tam.sqlite3");
    assert!(success, "{figures}");
    assert_eq!(
        figures["mode"],
        serde_json::json!({"numbering": "pre-26", "alg": "es256", "attestation": "exempt", "churn_secs": null})
    );
    assert_eq!(figures["errors"], serde_json::json!({}), "{figures}");
    assert_eq!(
        figures["devices_by_installed_tcs"],
        serde_json::json!({"1": 4}),
        "{figures}"
    );
    let devices = tam_devices(work, &admin_url);
    let devices = devices.as_array().unwrap();
    assert_eq!(devices.len(), 4, "{devices:?}");
    assert!(
        devices
            .iter()
            .all(|d| d["attestation_exempt"] == true
                && d["installed"].as_array().unwrap().len() == 1),
        "{devices:?}"
    );

    // Without a store to register them in, loadgen refuses to run older Agents.
    let out = teep()
        .args([
            "loadgen",
            "--tam",
            &pre26_uri,
            "--trust-tam",
            "tam/tam-esp256.key",
            "--fleet",
            "fleet",
            "--numbering",
            "pre-26",
        ])
        .current_dir(work)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(tam_devices(work, &admin_url).as_array().unwrap().len(), 4);
    stop(tam);
}

/// `--seed` writes attested devices, each holding a TC, straight into the TAM's store;
/// the running TAM lists them, and a load run on top still completes.
#[test]
fn seeded_devices_are_in_the_tams_store() {
    let dir = with_fleets(&["fleet"]);
    let work = dir.path();
    let (tam, tam_uri, admin_url) = start_tam(work, "fleet/policy.json");
    // Without a store, --seed is refused before anything is written.
    let out = teep()
        .args(["loadgen", "--seed", "5"])
        .current_dir(work)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(tam_devices(work, &admin_url), serde_json::json!([]));

    let out = run(
        &[
            "loadgen",
            "--seed",
            "600",
            "--database",
            "sqlite://tam/tam.sqlite3",
        ],
        work,
    );
    assert!(out.contains("seeded 600 devices"), "{out}");
    let devices = tam_devices(work, &admin_url);
    let devices = devices.as_array().unwrap();
    assert_eq!(devices.len(), 600);
    assert!(
        devices
            .iter()
            .all(|d| !d["attested_at"].is_null() && d["installed"].as_array().unwrap().len() == 1),
        "{:?}",
        devices.first()
    );

    let (success, figures) = loadgen(
        work,
        &tam_uri,
        "tam/tam-esp256.key",
        "fleet",
        &TWO_FOR_A_SECOND,
        &[],
    );
    assert!(success, "{figures}");
    assert_eq!(tam_devices(work, &admin_url).as_array().unwrap().len(), 602);
    stop(tam);
}

/// `--churn 1`: loadgen uploads its churn TC, adds it to the default class's policy, and
/// uploads a new version every second; the devices install it and take its Updates, and
/// the TAM records them holding a later version. A churn signer the TAM does not know is
/// refused at the first upload: loadgen stops, and neither the TAM's TCs nor its policy
/// changed.
#[test]
fn churn_uploads_new_versions_that_sessions_carry_as_updates() {
    let dir = with_fleets(&["fleet"]);
    let work = dir.path();
    let (tam, tam_uri, admin_url) = start_tam(work, "fleet/policy.json");
    publish_default_ta(work, &admin_url);
    let token = std::fs::read_to_string(work.join("tam/admin.token")).unwrap();
    let state = || {
        (
            admin(work, &admin_url, &["tc", "list", "--json"]),
            admin(work, &admin_url, &["policy", "show"]),
        )
    };
    run(&["keys", "generate", "--out", "stranger.key"], work);
    let before = state();
    let out = teep()
        .args([
            "loadgen",
            "--tam",
            &tam_uri,
            "--trust-tam",
            "tam/tam-esp256.key",
            "--fleet",
            "fleet",
            "--churn",
            "1",
            "--admin-url",
            &admin_url,
            "--admin-token",
            token.trim(),
            "--churn-signer",
            "stranger.key",
        ])
        .current_dir(work)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("churn TC"),
        "{out:?}"
    );
    assert_eq!(state(), before);

    let three = Load {
        devices: "3",
        concurrency: "2",
        duration: "5",
    };
    let (success, figures) = loadgen(
        work,
        &tam_uri,
        "tam/tam-esp256.key",
        "fleet",
        &three,
        &[
            "--trust-signer",
            "signer.key.pub",
            "--churn",
            "1",
            "--admin-url",
            &admin_url,
            "--admin-token",
            token.trim(),
            "--churn-signer",
            "signer.key",
        ],
    );
    assert!(success, "{figures}");
    assert_eq!(figures["mode"]["churn_secs"], 1, "{figures}");
    let versions = figures["churn_versions"].as_u64().unwrap();
    assert!(versions >= 3, "{figures}");
    assert_eq!(
        figures["devices_by_installed_tcs"],
        serde_json::json!({"2": 3}),
        "{figures}"
    );
    let manifest =
        teep_suit::ComponentId::from_strs(&["TEEP-Device", "loadgen", "churn.suit"]).to_string();
    let tcs: Value = serde_json::from_str(&state().0).unwrap();
    let churned = tcs
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["manifest_id"] == manifest.as_str())
        .unwrap();
    assert_eq!(
        churned["versions"].as_array().unwrap().len() as u64,
        versions
    );
    // Each device took at least one Update: the TAM records a later version than the first.
    for d in tam_devices(work, &admin_url).as_array().unwrap() {
        let held = d["installed"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i[0] == manifest.as_str())
            .unwrap_or_else(|| panic!("{d}"));
        assert!(held[1].as_u64().unwrap() >= 2, "{d}");
    }
    stop(tam);
}
