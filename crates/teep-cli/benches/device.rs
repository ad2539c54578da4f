//! The device side as real processes (`teep tam serve`, `teep tee serve`, `teep device
//! run`, started with the CLI as in tests/lifecycle.rs), with counter-v1 and its greeting
//! installed by the Broker's first policy check:
//!
//! * `invoke_via_local_api`: one TA invocation as an app makes it, over the Broker's local
//!   API socket (HTTP/1.1 + JSON) -> the Broker -> IPC socket -> the TEE process -> the
//!   SimTee -> wasmi -> back; beside `invoke_in_process`, the same TA on a copy of the same
//!   sealed state through the same engine call (`Agent::invoke_ta`) in this process: the
//!   difference is what the two processes and their sockets cost.
//! * The memory of `teep device run` (VmHWM and VmRSS from /proc/PID/status) after its
//!   start and first policy check (the install), after idling, and after the invoke
//!   benchmarks, printed against the 16 MiB target.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "bench helpers: a failure here is a failed benchmark"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::deployment::{Deployment, id_json, id_text};
use teep_agent::engine::{Agent, AgentConfig, Limits};
use teep_agent::sim::{SimConfig, SimTee};
use teep_cose::TrustStore;
use teep_proto::{Numbering, SuitCoseProfile};
use teep_suit::ComponentId;
use teep_suit::processor::DeviceIdentity;
use teep_suit::trust::TrustAnchors;

/// The Broker's local API socket.
static API: OnceLock<PathBuf> = OnceLock::new();
/// The engine over a copy of the TEE's state.
static ENGINE: OnceLock<Mutex<Agent<SimTee>>> = OnceLock::new();

const MIB: f64 = 1024.0 * 1024.0;
const TARGET_MIB: f64 = 16.0;

/// VmHWM and VmRSS of `pid`, in bytes.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| {
                v.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .unwrap()
                    * 1024
            })
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn threads(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn report(what: &str, pid: u32) {
    let (hwm, rss) = memory(pid);
    let verdict = if hwm as f64 / MIB <= TARGET_MIB {
        "within"
    } else {
        "OVER"
    };
    println!(
        "teep device run, {what}: peak (VmHWM) {:.1} MiB, now (VmRSS) {:.1} MiB, {} threads; \
         target {TARGET_MIB} MiB: {verdict}",
        hwm as f64 / MIB,
        rss as f64 / MIB,
        threads(pid),
    );
}

fn copy_tee_state(d: &Deployment) -> PathBuf {
    let copy = d.work().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for name in ["tee", "tee.root-key", "tee.counters"] {
        let status = std::process::Command::new("cp")
            .args(["-a", &format!("{}/{name}", d.work().display())])
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success(), "copying {name}");
    }
    copy.join("tee")
}

fn open_engine(state: PathBuf) -> Agent<SimTee> {
    let sim = SimTee::open(&SimConfig::new(state)).unwrap();
    let cfg = AgentConfig {
        provider: teep_cose::default_provider(),
        numbering: Numbering::Draft26,
        tam_trust: TrustStore::new(),
        tam_uris: Vec::new(),
        tc_trust: TrustAnchors::new(),
        device: DeviceIdentity::default(),
        suit_cose_profiles: SuitCoseProfile::ALL_MTI.to_vec(),
        tam_attestation: None,
        tam_encryption_key: None,
        tam_encryption_keys: Vec::new(),
        limits: Limits::default(),
        attestation: teep_agent::engine::Attestation::Evidence,
    };
    Agent::new(cfg, sim).unwrap()
}

fn main() {
    let d = Deployment::new();
    d.upload_counter(1);
    d.upload_greeting(1, 1);
    d.set_policy(&[
        &id_text(&["TEEP-Device", "counter", "suit"]),
        &id_text(&["TEEP-Device", "counter", "greeting.suit"]),
    ]);
    let mut tee = d.start_tee();
    let broker = d.start_broker(3600);
    let pid = broker.child.id();
    // Its first policy check installs the TA and its greeting.
    let start = Instant::now();
    while d.listed().len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "no install");
        std::thread::sleep(Duration::from_millis(50));
    }
    report("after start and one policy check (install)", pid);
    std::thread::sleep(Duration::from_secs(2));
    report("idle 2 s later", pid);

    // The in-process engine gets a copy of the state taken while the TEE is stopped.
    tee.stop();
    let copy = copy_tee_state(&d);
    tee = d.start_tee();
    ENGINE.set(Mutex::new(open_engine(copy))).ok().unwrap();
    API.set(PathBuf::from(format!("{}/broker.sock", d.dev_dir)))
        .unwrap();

    divan::main();

    report("after the invoke benchmarks", pid);
    broker.stop();
    tee.stop();
}

fn counter() -> ComponentId {
    ComponentId::from_strs(&["TEEP-Device", "counter", "ta"])
}

/// app -> local API (Unix socket, HTTP/1.1, JSON, base64) -> Broker -> IPC -> TEE process
/// -> SimTee -> wasmi -> back.
#[divan::bench(sample_count = 200)]
fn invoke_via_local_api(bencher: divan::Bencher<'_, '_>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .unix_socket(API.get().unwrap().clone())
        .build()
        .unwrap();
    let body = serde_json::json!({
        "component_id": id_json(&["TEEP-Device", "counter", "ta"]),
        "input": base64::engine::general_purpose::STANDARD.encode(b"hi"),
    })
    .to_string();
    bencher.bench_local(|| {
        runtime.block_on(async {
            let answer = client
                .post("http://broker/v1/tas/invoke")
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert!(answer.status().is_success());
            answer.bytes().await.unwrap()
        })
    });
}

/// The same TA through the same engine call, in this process.
#[divan::bench(sample_count = 200)]
fn invoke_in_process(bencher: divan::Bencher<'_, '_>) {
    let mut engine = ENGINE.get().unwrap().lock().unwrap();
    let id = counter();
    bencher.bench_local(|| engine.invoke_ta(&id, divan::black_box(b"hi")).unwrap());
}
