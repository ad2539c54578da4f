//! A whole deployment as real processes, for the lifecycle tests, the crash test and the
//! device benches: `teep tam serve` (its Verifier endorsing this device), `teep tee serve`
//! (the software TEE trusting the TAM and the TC signer) and `teep device run` (the Broker),
//! each started with the CLI in one temporary directory; TCs made with `teep suit create`
//! and `sign`, uploaded with the admin commands. Each child's standard error goes to a log
//! file in that directory, shown when the child exits early; dropping the deployment kills
//! whatever is still running (a failed test leaves no process behind).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::{Value, json};

use super::{ok, teep};

/// The sample TAs' modules.
pub const COUNTER_V1: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../teep-agent/tas/counter-v1.wasm"
);
/// Version 2 (upper-cases the greeting, prefixes `v2: `).
pub const COUNTER_V2: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../teep-agent/tas/counter-v2.wasm"
);

/// A component ID in its canonical text form (what the admin API and `teep device` take).
pub fn id_text(segments: &[&str]) -> String {
    teep_suit::ComponentId::from_strs(segments).to_string()
}

/// A component ID as the local API's JSON prints it (an array of hex strings).
pub fn id_json(segments: &[&str]) -> Value {
    json!(
        segments
            .iter()
            .map(|s| hex::encode(s.as_bytes()))
            .collect::<Vec<_>>()
    )
}

/// A process started with `teep ARGS`, read until its `ready` line.
pub struct Spawned {
    /// The child.
    pub child: Child,
    /// Its standard output up to the ready line.
    pub lines: Vec<String>,
    /// Where its standard error goes.
    pub log: PathBuf,
}

impl Spawned {
    /// The rest of the line read that starts with `prefix`.
    pub fn after(&self, prefix: &str) -> &str {
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {:?}", self.lines))
    }

    /// SIGTERM, and the process must exit cleanly.
    pub fn stop(mut self) {
        signal(&self.child, "TERM");
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}: {}", log_text(&self.log));
    }

    /// SIGKILL (no clean-up of any kind), and reaps it.
    pub fn kill(mut self) {
        signal(&self.child, "KILL");
        let _ = self.child.wait().unwrap();
    }
}

/// Sends SIGNAL to `child` with kill(1) (no unsafe, no extra crate).
pub fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    // A child that has already exited (but is not reaped) still takes the signal.
    assert!(status.success(), "kill -{name} {}", child.id());
}

fn log_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Spawns `teep ARGS` in `dir`, standard error to `log`, and reads its standard output
/// until a line starts with `ready`.
pub fn spawn_until(args: &[&str], dir: &Path, ready: &str, log: &Path) -> Spawned {
    let mut child = teep()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(File::create(log).unwrap())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!(
                "{args:?} exited early ({status}): {}",
                log_text(log).trim_end()
            );
        }
        let done = line.starts_with(ready);
        lines.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    // Keep reading in the background so that the child never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    Spawned {
        child,
        lines,
        log: log.to_path_buf(),
    }
}

/// The temporary directory, the TEE's identity and the TAM; the TEE and Broker processes
/// are started and stopped by the caller.
pub struct Deployment {
    /// Holds everything (deleted on drop).
    pub dir: tempfile::TempDir,
    /// The TEE's state directory.
    pub tee_dir: String,
    /// The device's (Broker's) state directory.
    pub dev_dir: String,
    /// The TEE's socket.
    pub socket: String,
    /// `teep device identity --json`.
    pub identity: Value,
    /// The device id the TAM knows it by (the TEEP key's thumbprint).
    pub device_id: String,
    /// The TAM's TEEP/HTTP URI and admin URL.
    pub tam_uri: String,
    /// The TAM's admin API.
    pub admin_url: String,
    /// The TAM's data directory.
    pub tam_data: String,
    /// The running TAM.
    tam: Option<Spawned>,
    /// Counts the log files.
    logs: std::cell::Cell<u32>,
}

impl Deployment {
    /// Creates the TEE's identity (a first `teep tee serve`, stopped), a Verifier policy
    /// endorsing it, starts the TAM, makes a TC-signer key (`signer.key`) and registers it.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().to_path_buf();
        let tee_dir = work.join("tee").to_str().unwrap().to_owned();
        let dev_dir = work.join("device").to_str().unwrap().to_owned();
        let socket = format!("{dev_dir}/tee.sock");
        let mut d = Self {
            dir,
            tee_dir,
            dev_dir,
            socket,
            identity: Value::Null,
            device_id: String::new(),
            tam_uri: String::new(),
            admin_url: String::new(),
            tam_data: String::new(),
            tam: None,
            logs: std::cell::Cell::new(0),
        };
        // First start of the TEE: it creates its identity; the REE side reads the public half.
        let tee = spawn_until(
            &[
                "tee",
                "serve",
                "--state-dir",
                &d.tee_dir,
                "--socket",
                &d.socket,
            ],
            d.work(),
            "tee socket: ",
            &d.log("tee"),
        );
        tee.stop();
        assert!(!Path::new(&d.socket).exists(), "socket removed on shutdown");
        d.identity = serde_json::from_str(&d.run(&[
            "device",
            "identity",
            "--json",
            "--tee-dir",
            &d.tee_dir,
        ]))
        .unwrap();
        let claims = &d.identity["claims"];
        assert_eq!(claims["ueid"], d.identity["ueid"]);
        d.device_id = d.identity["teep_key"]["thumbprint"]
            .as_str()
            .unwrap()
            .to_owned();

        // The TAM's Verifier endorses exactly this device's attestation key.
        let policy = json!({
            "policy_id": "policy:lifecycle",
            "endorsements": [ { "key": d.identity["attestation_key"]["pem"], "ueid": d.identity["ueid"] } ],
            "reference_values": {
                "oemids": [claims["oemid"]],
                "hwmodels": [claims["hwmodel"]],
                "hwversions": [claims["hwversion"][0]],
                "tc_digests": claims["manifests"].as_array().unwrap().iter()
                    .map(|m| m["sha256"].clone()).collect::<Vec<_>>(),
            },
        });
        std::fs::write(work.join("policy.json"), policy.to_string()).unwrap();
        d.tam_data = work.join("tam").to_str().unwrap().to_owned();
        let tam = d.spawn_tam(&d.tam_data, &[]);
        d.tam_uri = format!("http://{}", tam.after("listening on http://"));
        d.admin_url = tam.after("admin API on ").to_owned();
        d.tam = Some(tam);

        d.run(&["keys", "generate", "--out", "signer.key"]);
        d.admin(&[
            "signer",
            "add",
            "--name",
            "vendor",
            "--key",
            "signer.key.pub",
        ]);
        d
    }

    /// Starts a `teep tam serve` on `data_dir` (its keys are made there unless present) with
    /// `extra` options; read until its ready line. Unless `extra` says where appraisals come
    /// from (a `--verifier...` option), its in-process Verifier endorses this device.
    pub fn spawn_tam(&self, data_dir: &str, extra: &[&str]) -> Spawned {
        self.spawn_tam_on("127.0.0.1:0", data_dir, "tam", extra)
    }

    /// [`Deployment::spawn_tam`] with its TEEP/HTTP server on `listen` (`listening on
    /// http://...` or, with `--tls-cert`, `https://...`), logging to a file named after `log`.
    pub fn spawn_tam_on(&self, listen: &str, data_dir: &str, log: &str, extra: &[&str]) -> Spawned {
        let mut args = vec![
            "tam",
            "serve",
            "--listen",
            listen,
            "--admin-listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir,
            // One client address runs every policy check of the test: no rate limit.
            "--rate",
            "1000",
            "--burst",
            "1000",
        ];
        if !extra.iter().any(|a| a.starts_with("--verifier")) {
            args.extend(["--verifier-policy", "policy.json"]);
        }
        args.extend(extra);
        spawn_until(&args, self.work(), "listening on http", &self.log(log))
    }

    /// Stops the TAM and starts it again (same data directory, keys and records) with
    /// `verifier` instead of the in-process Verifier's `--verifier-policy policy.json`;
    /// the TAM's URI and admin URL change (start TEEs after this).
    pub fn restart_tam(&mut self, verifier: &[&str]) {
        self.stop_tam();
        let tam = self.spawn_tam(&self.tam_data, verifier);
        self.tam_uri = format!("http://{}", tam.after("listening on http://"));
        self.admin_url = tam.after("admin API on ").to_owned();
        self.tam = Some(tam);
    }

    /// The working directory (relative file names are in it).
    pub fn work(&self) -> &Path {
        self.dir.path()
    }

    /// The TAM's log file (what `teep trace` reads).
    pub fn tam_log(&self) -> &Path {
        &self.tam.as_ref().unwrap().log
    }

    /// A fresh log file name for a child called `what`.
    pub fn log(&self, what: &str) -> PathBuf {
        let n = self.logs.get() + 1;
        self.logs.set(n);
        self.work().join(format!("{what}-{n}.log"))
    }

    /// `teep ARGS` in the working directory, without judging its exit.
    pub fn output(&self, args: &[&str]) -> Output {
        teep().args(args).current_dir(self.work()).output().unwrap()
    }

    /// `teep ARGS`, which must succeed; its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        ok(self.output(args))
    }

    fn admin_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["tam"];
        all.extend(args);
        all.extend(["--admin-url", &self.admin_url, "--data-dir", &self.tam_data]);
        all
    }

    /// `teep tam ARGS` against the TAM's admin API; must succeed.
    pub fn admin(&self, args: &[&str]) -> String {
        self.run(&self.admin_args(args))
    }

    /// `teep tam ARGS` against the TAM's admin API, without judging its exit.
    pub fn admin_output(&self, args: &[&str]) -> Output {
        self.output(&self.admin_args(args))
    }

    /// `teep suit create` + `sign` (with `signer.key`) of `payload` as `segments` at
    /// sequence `seq`, written to `out`.
    pub fn create(&self, segments: &[&str], seq: u64, extra: &[&str], payload: &str, out: &str) {
        let seq = seq.to_string();
        let mut args = vec!["suit", "create"];
        for s in segments {
            args.extend(["--component-id", s]);
        }
        args.extend(extra);
        args.extend(["--seq", &seq, "--payload", payload, "--out", "unsigned"]);
        self.run(&args);
        self.run(&[
            "suit",
            "sign",
            "--key",
            "signer.key",
            "unsigned",
            "--out",
            out,
        ]);
    }

    /// Makes and uploads the counter TA (`/TEEP-Device/counter/ta`, manifest
    /// `/TEEP-Device/counter/suit`) at `seq`: v1's module for odd numbers, v2's for even.
    pub fn upload_counter(&self, seq: u64) {
        let wasm = if seq % 2 == 1 { COUNTER_V1 } else { COUNTER_V2 };
        let file = format!("ta-{seq}.suit");
        self.create(&["TEEP-Device", "counter", "ta"], seq, &[], wasm, &file);
        self.admin(&["tc", "add", &file]);
    }

    /// Makes and uploads the counter's personalization data (`greeting.suit`, manifest
    /// `/TEEP-Device/counter/greeting.suit`) at `seq`, integrating the TA's envelope at
    /// `ta_seq` as its dependency. (A device keeps a manifest's highest sequence number
    /// after deleting it: a reinstall needs higher ones.)
    pub fn upload_greeting(&self, seq: u64, ta_seq: u64) {
        self.upload_greeting_with(seq, ta_seq, &[]);
    }

    /// [`Self::upload_greeting`] with `extra` options of `teep suit create` (e.g.
    /// `--encrypt-to`).
    pub fn upload_greeting_with(&self, seq: u64, ta_seq: u64, extra: &[&str]) {
        let ta = format!("ta-{ta_seq}.suit");
        let mut args = vec![
            "--manifest-id",
            "TEEP-Device",
            "--manifest-id",
            "counter",
            "--manifest-id",
            "greeting.suit",
            "--depends-on",
            &ta,
        ];
        args.extend(extra);
        std::fs::write(self.work().join("greeting.txt"), "Hello from the TAM").unwrap();
        let file = format!("greeting-{seq}.suit");
        self.create(
            &["TEEP-Device", "counter", "greeting"],
            seq,
            &args,
            "greeting.txt",
            &file,
        );
        self.admin(&["tc", "add", &file]);
    }

    /// `teep tam policy set` for this device: exactly `manifests`.
    pub fn set_policy(&self, manifests: &[&str]) {
        let mut args = vec!["policy", "set", "--device", &self.device_id];
        for m in manifests {
            args.extend(["--tc", m]);
        }
        self.admin(&args);
    }

    /// The TEE's arguments: trusting the TAM's public key (the file the TAM writes) and the
    /// TC signer, encrypting Evidence and SUIT reports to the TAM (§12), contacting the TAM.
    fn tee_args(&self) -> Vec<String> {
        let tam_key = format!("{}/tam-esp256.pub.pem", self.tam_data);
        self.tee_args_trusting(&[&tam_key], &["signer.key.pub"])
    }

    /// [`Self::tee_args`] with other TAM keys and TC signers to trust (the Device
    /// Administrator's anchors).
    fn tee_args_trusting(&self, tam_keys: &[&str], signers: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = ["tee", "serve", "--state-dir", &self.tee_dir]
            .into_iter()
            .chain(["--socket", &self.socket])
            .map(str::to_owned)
            .collect();
        for key in tam_keys {
            args.extend(["--trust-tam".to_owned(), (*key).to_owned()]);
        }
        args.extend([
            "--tam-encryption-key".to_owned(),
            format!("{}/tam-encryption.pub.pem", self.tam_data),
        ]);
        for signer in signers {
            args.extend(["--trust-signer".to_owned(), (*signer).to_owned()]);
        }
        args.extend(["--tam".to_owned(), self.tam_uri.clone()]);
        args
    }

    /// Starts `teep tee serve` trusting exactly `tam_keys` and `signers` (key files).
    pub fn start_tee_trusting(&self, tam_keys: &[&str], signers: &[&str]) -> Spawned {
        let args = self.tee_args_trusting(tam_keys, signers);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        spawn_until(&args, self.work(), "tee socket: ", &self.log("tee"))
    }

    /// Starts `teep tee serve` (trusting the TAM and the signer) and waits for its socket.
    pub fn start_tee(&self) -> Spawned {
        self.start_tee_with(&[])
    }

    /// [`Self::start_tee`] with `extra` options (more TAMs to trust and contact,
    /// `--attestation passport`, ...).
    pub fn start_tee_with(&self, extra: &[&str]) -> Spawned {
        let mut args = self.tee_args();
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        spawn_until(&args, self.work(), "tee socket: ", &self.log("tee"))
    }

    /// Starts `teep tee serve` without waiting (for a kill at any moment of its life).
    pub fn spawn_tee(&self) -> Child {
        teep()
            .args(self.tee_args())
            .current_dir(self.work())
            .stdout(Stdio::null())
            .stderr(File::create(self.log("tee")).unwrap())
            .spawn()
            .unwrap()
    }

    /// The arguments of one policy check by a Broker run with `--once`.
    pub fn once_args(&self) -> [&str; 8] {
        [
            "device",
            "run",
            "--once",
            "--allow-plain-http",
            "--tam",
            &self.tam_uri,
            "--state-dir",
            &self.dev_dir,
        ]
    }

    /// One policy check by a Broker run with `--once`: one exchange with the TAM, reached.
    pub fn policy_check(&self) {
        let once = self.run(&self.once_args());
        assert!(
            once.contains("1 TAM exchange(s) completed, 0 TAM(s) not reached"),
            "{once}"
        );
    }

    /// Starts the long-running Broker (`teep device run`, policy checks every `interval`
    /// seconds, the first at start) and waits for its local API socket.
    pub fn start_broker(&self, interval: u64) -> Spawned {
        let interval = interval.to_string();
        spawn_until(
            &[
                "device",
                "run",
                "--allow-plain-http",
                "--tam",
                &self.tam_uri,
                "--state-dir",
                &self.dev_dir,
                "--interval",
                &interval,
            ],
            self.work(),
            "api socket: ",
            &self.log("broker"),
        )
    }

    /// `teep device ARGS --state-dir DEV` (an app of the running Broker), unjudged.
    pub fn app_output(&self, args: &[&str]) -> Output {
        let mut all = args.to_vec();
        all.extend(["--state-dir", &self.dev_dir]);
        self.output(&all)
    }

    /// `teep device ARGS`, which must succeed.
    pub fn app(&self, args: &[&str]) -> String {
        ok(self.app_output(args))
    }

    /// `teep device list --json`: each component ID (JSON) with its manifest's sequence.
    pub fn listed(&self) -> Vec<(Value, u64)> {
        let list: Value = serde_json::from_str(&self.app(&["device", "list", "--json"])).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["component_id"].clone(),
                    t["sequence_number"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// The sequence number the device lists `segments` at, if it lists it.
    pub fn listed_sequence(&self, segments: &[&str]) -> Option<u64> {
        let id = id_json(segments);
        self.listed()
            .into_iter()
            .find_map(|(c, seq)| (c == id).then_some(seq))
    }

    /// `teep device invoke /TEEP-Device/counter/ta --input hi`, unjudged.
    pub fn invoke_counter(&self) -> Output {
        self.app_output(&[
            "device",
            "invoke",
            "/TEEP-Device/counter/ta",
            "--input",
            "hi",
        ])
    }

    /// The TAM's record of this device (`teep tam devices --json`): each installed
    /// manifest ID with its sequence number.
    pub fn tam_installed(&self) -> Vec<(String, u64)> {
        let devices: Value = serde_json::from_str(&self.admin(&["devices", "--json"])).unwrap();
        let record = devices
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["id"] == self.device_id.as_str())
            .unwrap_or_else(|| panic!("device {} not in {devices}", self.device_id));
        record["installed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m[0].as_str().unwrap().to_owned(), m[1].as_u64().unwrap()))
            .collect()
    }

    /// Stops the TAM (SIGTERM, clean exit).
    pub fn stop_tam(&mut self) {
        if let Some(tam) = self.tam.take() {
            tam.stop();
        }
    }
}

/// A test that fails leaves no process behind (a reaped child is not signalled again).
impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
