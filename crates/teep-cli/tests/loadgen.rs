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
    let (tam, lines) = spawn_until(
        &[
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
        ],
        work,
        "listening on http://",
    );
    let tam_uri = format!("http://{}", after(&lines, "listening on http://"));
    let admin_url = after(&lines, "admin API on ").to_owned();
    (tam, tam_uri, admin_url)
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
    let admin = |args: &[&str]| {
        let mut all = vec!["tam"];
        all.extend(args);
        all.extend(["--admin-url", &admin_url, "--data-dir", "tam"]);
        run(&all, work)
    };
    // One TA for the default class, which every newly attested device is put in.
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

    let out = teep()
        .args([
            "loadgen",
            "--tam",
            &tam_uri,
            "--trust-tam",
            "tam/tam-esp256.pub.pem",
            "--trust-signer",
            "signer.key.pub",
            "--fleet",
            "fleet",
            "--devices",
            "6",
            "--concurrency",
            "3",
            "--duration",
            "3",
            "--json",
        ])
        .current_dir(work)
        .output()
        .unwrap();
    let figures: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert!(out.status.success(), "{figures}");
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
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path();
    for fleet in ["endorsed", "stranger"] {
        ok(teep()
            .args(["loadgen", "--write-policy", "--fleet", fleet])
            .current_dir(work)
            .output()
            .unwrap());
    }
    let (tam, tam_uri, admin_url) = start_tam(work, "endorsed/policy.json");
    let out = teep()
        .args([
            "loadgen",
            "--tam",
            &tam_uri,
            "--trust-tam",
            "tam/tam-esp256.key",
            "--fleet",
            "stranger",
            "--devices",
            "2",
            "--concurrency",
            "1",
            "--duration",
            "1",
            "--json",
        ])
        .current_dir(work)
        .output()
        .unwrap();
    let figures: Value = serde_json::from_slice(&out.stdout).unwrap();
    let devices = tam_devices(work, &admin_url);
    assert_eq!(devices.as_array().unwrap().len(), 0, "{devices}; {figures}");
    stop(tam);
}
