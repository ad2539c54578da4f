//! Helpers of the scenarios: a `teep verifier serve` beside a deployment, the sample TCs
//! and their policy, and the TAM's records, reports and audit of the device.

use serde_json::Value;

use crate::common::deployment::{Deployment, Spawned, id_text, spawn_until};

/// The TAM's bearer token at the Verifier.
pub const TAM_TOKEN: &str = "tam-token-0123456789abcdef0123456789abcdef";
/// The device's (Broker's) bearer token at the Verifier.
pub const DEVICE_TOKEN: &str = "device-token-0123456789abcdef0123456789abcd";

/// The counter TA's manifest ID, as the admin API and the TAM's records name it.
pub fn counter_manifest() -> String {
    id_text(&["TEEP-Device", "counter", "suit"])
}

/// A running `teep verifier serve` with the deployment's `policy.json` (endorsing its TEE),
/// its EAR key `verifier.key` (public half `verifier.key.pub`) and one token each for the
/// TAM and the device.
pub struct Verifier {
    /// The process (killed on drop).
    _process: Spawned,
    /// Its base URL.
    pub url: String,
}

impl Verifier {
    /// Starts it in the deployment's directory.
    pub fn start(d: &Deployment) -> Self {
        Self::start_with(d, "policy.json")
    }

    /// [`Verifier::start`] with another policy file (`verifier.key` is made only once, so
    /// a Verifier started again signs with the same key).
    pub fn start_with(d: &Deployment, policy: &str) -> Self {
        std::fs::write(
            d.work().join("tokens"),
            format!("tam {TAM_TOKEN}\ndevice {DEVICE_TOKEN}\n"),
        )
        .unwrap();
        if !d.work().join("verifier.key").exists() {
            d.run(&["keys", "generate", "--out", "verifier.key"]);
        }
        let process = spawn_until(
            &[
                "verifier",
                "serve",
                "--policy",
                policy,
                "--key",
                "verifier.key",
                "--tokens",
                "tokens",
                "--listen",
                "127.0.0.1:0",
            ],
            d.work(),
            "listening on http://",
            &d.log("verifier"),
        );
        let url = format!("http://{}", process.after("listening on http://"));
        Self {
            _process: process,
            url,
        }
    }

    /// The TAM's options for this Verifier, trusting EARs signed by `key` (the Verifier's
    /// `verifier.key.pub`, or another key for the attacker's case).
    pub fn tam_args<'a>(&'a self, key: &'a str) -> [&'a str; 6] {
        [
            "--verifier",
            &self.url,
            "--verifier-token",
            TAM_TOKEN,
            "--verifier-key",
            key,
        ]
    }

    /// One policy check by a Broker that first fetches the TEE's passport here.
    pub fn passport_check(&self, d: &Deployment) -> String {
        let mut args = d.once_args().to_vec();
        args.extend(["--verifier", &self.url, "--verifier-token", DEVICE_TOKEN]);
        d.run(&args)
    }
}

/// The TAM's record of the deployment's device (`teep tam devices --json`), if it has one.
pub fn tam_device(d: &Deployment) -> Option<Value> {
    crate::processes::find_device(&d.admin(&["devices", "--json"]), &d.device_id)
}

/// The TAM's audit log (`teep tam audit --json`, up to 1000 entries).
pub fn audit(d: &Deployment) -> Vec<Value> {
    let log: Value =
        serde_json::from_str(&d.admin(&["audit", "--json", "--limit", "1000"])).unwrap();
    log.as_array().unwrap().clone()
}

/// The greeting's (the counter's personalization data's) manifest ID.
pub fn greeting_manifest() -> String {
    id_text(&["TEEP-Device", "counter", "greeting.suit"])
}

/// The counter TA (v1) and its greeting uploaded and set as the device's policy.
pub fn counter_policy(d: &Deployment) {
    d.upload_counter(1);
    d.upload_greeting(1, 1);
    d.set_policy(&[&counter_manifest(), &greeting_manifest()]);
}

/// The device runs the counter TA with its greeting (v1 answers the input `hi` with it) and
/// the TAM recorded both installed, the device attested (asked through a Broker started for it).
pub fn assert_counter_installed(d: &Deployment) {
    let _broker = d.start_broker(3600);
    assert_eq!(
        d.listed_sequence(&["TEEP-Device", "counter", "ta"]),
        Some(1)
    );
    let out = crate::common::ok(d.invoke_counter());
    assert!(out.contains("Hello from the TAM"), "{out}");
    let mut installed = d.tam_installed();
    installed.sort();
    let mut want = vec![(counter_manifest(), 1), (greeting_manifest(), 1)];
    want.sort();
    assert_eq!(installed, want);
    let record = tam_device(d).unwrap();
    assert!(record["attested_at"].is_u64(), "{record}");
}

/// Nothing on the device, and the TAM records no TC on it.
pub fn assert_nothing_installed(d: &Deployment) {
    let _broker = d.start_broker(3600);
    assert_eq!(d.listed(), vec![]);
    if let Some(record) = tam_device(d) {
        assert_eq!(record["installed"], serde_json::json!([]), "{record}");
    }
}

/// [`assert_nothing_installed`], and the TAM records no attestation of the device.
pub fn assert_nothing_installed_unattested(d: &Deployment) {
    assert_nothing_installed(d);
    if let Some(record) = tam_device(d) {
        assert!(record["attested_at"].is_null(), "{record}");
    }
}

/// A plain HTTP server on loopback answering every GET with one payload (which the test
/// may swap, as an attacker on the download path would), counting the requests.
pub struct PayloadServer {
    /// The URL of the payload.
    pub url: String,
    body: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    served: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl PayloadServer {
    /// Serves `body` at `http://127.0.0.1:PORT/NAME` (a thread that lives as long as the
    /// test process).
    pub fn start(name: &str, body: Vec<u8>) -> Self {
        use std::io::{BufRead as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/{name}", listener.local_addr().unwrap());
        let shared = std::sync::Arc::new(std::sync::Mutex::new(body));
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (body, count) = (shared.clone(), served.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let payload = body.lock().unwrap().clone();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    payload.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&payload);
            }
        });
        Self {
            url,
            body: shared,
            served,
        }
    }

    /// Serves `body` from now on.
    pub fn replace(&self, body: Vec<u8>) {
        *self.body.lock().unwrap() = body;
    }

    /// How many requests were answered.
    pub fn served(&self) -> usize {
        self.served.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The TAM's latest SUIT reports about the device: (manifest digest, success), newest first.
pub fn tam_reports(d: &Deployment) -> Vec<(String, bool)> {
    let record = tam_device(d).unwrap();
    record["last_reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["manifest_digest"].as_str().unwrap().to_owned(),
                r["success"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// The TEE's TC decryption key (public half), written to `tee-decrypt.pub.pem` for
/// `teep suit create --encrypt-to`.
pub fn tee_decryption_key(d: &Deployment) -> &'static str {
    let pem = d.identity["decryption_key"]["pem"].as_str().unwrap();
    std::fs::write(d.work().join("tee-decrypt.pub.pem"), pem).unwrap();
    "tee-decrypt.pub.pem"
}
