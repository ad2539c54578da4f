//! `teep demo`: the whole TEEP lifecycle across real processes on loopback, in a fresh
//! directory. Every role is this same executable started with its sub-command (`teep
//! verifier serve`, `teep tam serve`, `teep tee serve`, `teep device run`), every key and
//! envelope is made with `teep keys` and `teep suit`, every registration goes through the
//! TAM's admin API (`teep tam ...`), and every step is checked (device list, the TAM's
//! device record, the TA's output) before the next one starts. The message sequence at
//! the end is read back from what the TAM, the Verifier and the TEE logged about each
//! message they handled ([`sequence_diagram`]).
//!
//! The demo's processes are stopped (SIGTERM, then SIGKILL after a grace period) and
//! waited for when it ends, when a step fails and on Ctrl-C or SIGTERM.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Output, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use serde_json::{Value, json};
use teep_suit::ComponentId;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use crate::tam::shutdown_signal;

/// Options of `teep demo`.
#[derive(clap::Args)]
pub(crate) struct Args {
    /// Run in this directory (created if missing; must be empty): keys, envelopes, state
    /// directories, logs/ and sequence.mmd stay there. Default: a fresh temporary
    /// directory, removed at the end unless --keep (kept when a step fails).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the temporary directory.
    #[arg(long)]
    keep: bool,
}

/// The sample TA (docs/ta-abi.md), versions 1 and 2, embedded so that the demo needs no
/// source tree.
const COUNTER_V1: &[u8] = include_bytes!("../../teep-agent/tas/counter-v1.wasm");
const COUNTER_V2: &[u8] = include_bytes!("../../teep-agent/tas/counter-v2.wasm");
/// The personalization data the TA greets with (sent encrypted to the device).
const GREETING: &str = "Hello from the TAM";
/// What the app sends the TA.
const INPUT: &str = "hi";
/// The TA's component ID, and where its manifest and its personalization data live.
const TA: [&str; 3] = ["TEEP-Device", "counter", "ta"];
const TA_MANIFEST: [&str; 3] = ["TEEP-Device", "counter", "suit"];
const PERSO: [&str; 3] = ["TEEP-Device", "counter", "greeting"];
const PERSO_MANIFEST: [&str; 3] = ["TEEP-Device", "counter", "greeting.suit"];
/// Steps, for the `[n/N]` of the progress lines.
const STEPS: usize = 12;
/// How long a server may take to say it is ready, and a condition to become true.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a process has to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// The exit status of a demo stopped by a signal (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;
/// The logs [`sequence_diagram`] reads, in the logs/ directory.
const TRACED_LOGS: [&str; 3] = ["tam.log", "verifier.log", "tee.log"];

/// A server the demo started.
struct Server {
    name: &'static str,
    child: Child,
}

/// Where a step started in each traced log (byte offsets), so that the sequence diagram
/// can say which message belongs to which step.
pub(crate) struct Mark {
    title: String,
    offsets: [u64; TRACED_LOGS.len()],
}

/// The demo's state: its directory, its processes, its progress.
struct Demo {
    dir: PathBuf,
    exe: PathBuf,
    servers: Vec<Server>,
    step: usize,
    /// The current step's result lines (printed under its progress line).
    notes: Vec<String>,
    /// Whether a progress line is open (printed without its `ok` yet).
    open: bool,
    marks: Vec<Mark>,
    policy_checks: usize,
    tam_uri: String,
    admin_url: String,
    device_id: String,
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    let (dir, temp) = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut entries =
                std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: the demo starts from nothing",
                    dir.display()
                );
            }
            (dir.clone(), None)
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("teep-demo.")
                .tempdir()
                .context("creating a temporary directory")?;
            (temp.path().to_path_buf(), Some(temp))
        }
    };
    let exe = std::env::current_exe().context("locating the teep executable")?;
    let mut demo = Demo {
        dir,
        exe,
        servers: Vec::new(),
        step: 0,
        notes: Vec::new(),
        open: false,
        marks: Vec::new(),
        policy_checks: 0,
        tam_uri: String::new(),
        admin_url: String::new(),
        device_id: String::new(),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let outcome = runtime.block_on(async {
        let stop = shutdown_signal()?;
        let outcome = tokio::select! {
            result = steps(&mut demo) => Some(result),
            () = stop => None,
        };
        let stopped = demo.stop_all().await;
        anyhow::Ok((outcome, stopped))
    })?;
    let (outcome, stopped) = outcome;
    let failed = !matches!((&outcome, &stopped), (Some(Ok(())), Ok(unclean)) if unclean.is_empty());
    let keep = args.keep || args.dir.is_some() || (failed && outcome.is_some());
    let code = match outcome {
        Some(Ok(())) => match stopped {
            Ok(unclean) if unclean.is_empty() => {
                demo.say("\nall steps passed; every process stopped")?;
                ExitCode::SUCCESS
            }
            Ok(unclean) => {
                eprintln!(
                    "teep demo: these processes did not stop cleanly: {}",
                    unclean.join(", ")
                );
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("teep demo: stopping the processes: {e:#}");
                ExitCode::from(1)
            }
        },
        Some(Err(e)) => {
            demo.fail()?;
            eprintln!("teep demo: {e:#}");
            ExitCode::from(1)
        }
        None => {
            demo.fail()?;
            eprintln!("teep demo: interrupted; the demo's processes were stopped");
            ExitCode::from(INTERRUPTED)
        }
    };
    match temp {
        Some(temp) if keep => {
            let path = temp.keep();
            demo.say(&format!("files kept in {}", path.display()))?;
        }
        Some(temp) => drop(temp),
        None => demo.say(&format!("files are in {}", demo.dir.display()))?,
    }
    if failed {
        demo.say("the processes' logs are in logs/ there")?;
    }
    Ok(code)
}

/// The demo, step by step; each step checks its result before the next one starts.
async fn steps(demo: &mut Demo) -> Result<()> {
    demo.begin("keys of every role")?;
    let device = demo.keys().await?;
    demo.done()?;

    demo.begin("start the Verifier, the TAM and the TEE")?;
    demo.start(&device).await?;
    demo.done()?;

    demo.begin("start the Broker: attestation")?;
    demo.attestation().await?;
    demo.done()?;

    demo.begin("package and register the TA and its encrypted personalization data")?;
    demo.package(&device).await?;
    demo.done()?;

    demo.begin("install")?;
    demo.note(
        "a policy check: the device attested again, the TAM sent an Update with both TCs; the TEE",
    );
    demo.note("checked the TC signer's signatures, decrypted the greeting with its own key, installed both");
    demo.policy_check().await?;
    demo.expect_installed(Some(1), true).await?;
    demo.done()?;

    demo.begin("invoke the TA")?;
    let first = demo.invoke(&format!("{GREETING}, call #1")).await?;
    demo.note(&format!(
        "an app asked the TA (`teep device invoke`); the TA answered {first:?}"
    ));
    demo.done()?;

    demo.begin("update to v2")?;
    demo.update().await?;
    demo.done()?;

    demo.begin("invoke again")?;
    let second = demo
        .invoke(&format!("v2: {}, call #3", GREETING.to_ascii_uppercase()))
        .await?;
    ensure!(
        second != first,
        "the TA's answer did not change with the update"
    );
    demo.note(&format!(
        "v2 answered {second:?}: its own code, the count kept from v1 (v2 counts by 2)"
    ));
    demo.done()?;

    demo.begin("rollback attempt")?;
    demo.rollback().await?;
    demo.done()?;

    demo.begin("delete through a policy change")?;
    demo.delete().await?;
    demo.done()?;

    demo.begin("invoke after the delete")?;
    let refused = demo
        .teep_fails(&demo.app(&["invoke", &id_text(&TA), "--input", INPUT]))
        .await?;
    ensure!(
        refused.contains("unknown_ta"),
        "invoking a deleted TA failed, but not because it is unknown: {refused}"
    );
    demo.note(&format!("refused cleanly: {}", refused.trim()));
    demo.done()?;

    demo.begin("message sequence")?;
    let diagram = sequence_diagram(&demo.dir.join("logs"), &demo.marks)?;
    for word in ["QueryRequest", "QueryResponse", "Update", "Success"] {
        ensure!(
            diagram.mermaid.contains(word),
            "no {word} in the message sequence read from the logs"
        );
    }
    let path = demo.dir.join("sequence.mmd");
    std::fs::write(&path, &diagram.mermaid)
        .with_context(|| format!("writing {}", path.display()))?;
    demo.note(&format!(
        "{} messages, read from what the TAM, the Verifier and the TEE logged; Mermaid: sequence.mmd",
        diagram.messages
    ));
    demo.done()?;
    demo.say(&diagram.text)?;
    Ok(())
}

/// The public half of the device's identity, as `teep device identity --json` prints it.
struct DeviceIdentity(Value);

impl DeviceIdentity {
    fn get(&self, pointer: &str) -> Result<&Value> {
        self.0
            .pointer(pointer)
            .ok_or_else(|| anyhow!("the device identity has no {pointer}"))
    }

    fn str(&self, pointer: &str) -> Result<&str> {
        self.get(pointer)?
            .as_str()
            .ok_or_else(|| anyhow!("the device identity's {pointer} is not a string"))
    }
}

impl Demo {
    // ---- output

    /// Prints a line on standard output.
    fn say(&self, text: &str) -> Result<()> {
        crate::print_line(text)
    }

    /// Starts a step: its progress line (finished by [`Self::done`]), and a mark in the logs.
    fn begin(&mut self, title: &str) -> Result<()> {
        self.step += 1;
        let mut offsets = [0; TRACED_LOGS.len()];
        for (offset, log) in offsets.iter_mut().zip(TRACED_LOGS) {
            *offset = std::fs::metadata(self.dir.join("logs").join(log)).map_or(0, |m| m.len());
        }
        self.marks.push(Mark {
            title: title.to_owned(),
            offsets,
        });
        let mut out = std::io::stdout().lock();
        write!(out, "[{}/{STEPS}] {title} ...", self.step)?;
        out.flush()?;
        self.open = true;
        Ok(())
    }

    /// A result line of the current step.
    fn note(&mut self, text: &str) {
        self.notes.push(text.to_owned());
    }

    /// Ends the current step: `ok` and its result lines.
    fn done(&mut self) -> Result<()> {
        self.open = false;
        self.say(" ok")?;
        for note in std::mem::take(&mut self.notes) {
            self.say(&format!("      {note}"))?;
        }
        Ok(())
    }

    /// Ends an open step as failed.
    fn fail(&mut self) -> Result<()> {
        if std::mem::take(&mut self.open) {
            self.say(" FAILED")?;
        }
        Ok(())
    }

    // ---- processes

    /// `teep ARGS` in the demo directory, with none of the caller's `TEEP_*` or `RUST_LOG`
    /// variables (they would change what the roles do and log).
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.exe);
        command
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .env_remove("RUST_LOG")
            .kill_on_drop(true);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("TEEP_") {
                command.env_remove(name);
            }
        }
        command
    }

    /// Runs a one-shot `teep` command to its end.
    async fn output(&self, args: &[&str]) -> Result<Output> {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .with_context(|| format!("running teep {}", args.join(" ")))
    }

    /// Runs `teep ARGS`, which must succeed; its standard output.
    async fn teep(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args).await?;
        ensure!(
            out.status.success(),
            "teep {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8(out.stdout).context("the output is not UTF-8")
    }

    /// Runs `teep ARGS`, which must fail; its standard error.
    async fn teep_fails(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args).await?;
        ensure!(
            !out.status.success(),
            "teep {} succeeded where it must fail: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout).trim()
        );
        Ok(String::from_utf8_lossy(&out.stderr).into_owned())
    }

    /// Starts the server `name` (`teep --log-level info ARGS`, standard error to
    /// logs/NAME.log) and reads its standard output up to the line starting with `ready`;
    /// returns the lines read.
    async fn spawn(
        &mut self,
        name: &'static str,
        args: &[&str],
        env: &[(&str, &str)],
        ready: &str,
    ) -> Result<Vec<String>> {
        let logs = self.dir.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let log_path = logs.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut all = vec!["--log-level", "info"];
        all.extend(args);
        let mut command = self.command(&all);
        command.envs(env.iter().copied());
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        let stdout = child.stdout.take();
        self.servers.push(Server { name, child });
        let stdout = stdout.ok_or_else(|| anyhow!("{name}: no standard output"))?;
        let mut reader = BufReader::new(stdout).lines();
        let mut lines = Vec::new();
        let read = tokio::time::timeout(READY_TIMEOUT, async {
            while let Some(line) = reader.next_line().await? {
                let done = line.starts_with(ready);
                lines.push(line);
                if done {
                    return anyhow::Ok(true);
                }
            }
            Ok(false)
        })
        .await;
        match read {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!(
                "{name} exited before it was ready: {}",
                last_lines(&log_path)
            ),
            Ok(Err(e)) => return Err(e.context(format!("reading {name}'s output"))),
            Err(_) => bail!("{name} was not ready after {READY_TIMEOUT:?}"),
        }
        // Keep reading, so that the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = reader.next_line().await {} });
        Ok(lines)
    }

    /// The process id of a running server.
    fn pid(&self, name: &str) -> String {
        self.servers
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.child.id())
            .map_or_else(|| "?".into(), |p| p.to_string())
    }

    /// Stops the server `name`: SIGTERM, and it must exit 0 within the grace period.
    async fn stop(&mut self, name: &str) -> Result<()> {
        let index = self
            .servers
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| anyhow!("{name} is not running"))?;
        let server = self.servers.remove(index);
        let status = stop_child(server.child).await?;
        ensure!(stopped(status), "{name} exited with {status}");
        Ok(())
    }

    /// Stops every server, the last started first; the names of those that did not exit
    /// cleanly.
    async fn stop_all(&mut self) -> Result<Vec<String>> {
        let mut unclean = Vec::new();
        while let Some(server) = self.servers.pop() {
            match stop_child(server.child).await {
                Ok(status) if stopped(status) => {}
                Ok(status) => unclean.push(format!("{} ({status})", server.name)),
                Err(e) => unclean.push(format!("{} ({e:#})", server.name)),
            }
        }
        Ok(unclean)
    }

    // ---- the roles' commands

    /// `teep tam ARGS` against the demo TAM's admin API.
    fn admin<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["tam"];
        all.extend(args);
        all.extend(["--admin-url", &self.admin_url, "--data-dir", "tam"]);
        all
    }

    /// `teep device ARGS` against the running Broker's local API.
    fn app<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = vec!["device"];
        all.extend(args);
        all.extend(["--state-dir", "device"]);
        all
    }

    /// The TAM's record of the demo device (`teep tam devices --json`).
    async fn tam_record(&self) -> Result<Option<Value>> {
        let text = self.teep(&self.admin(&["devices", "--json"])).await?;
        let devices: Value = serde_json::from_str(&text).context("`tam devices --json`")?;
        Ok(devices
            .as_array()
            .and_then(|list| {
                list.iter()
                    .find(|d| d.get("id") == Some(&json!(self.device_id)))
            })
            .cloned())
    }

    /// The sequence number of each TC the TAM recorded as installed on the device.
    async fn tam_installed(&self) -> Result<Vec<(String, u64)>> {
        let record = self
            .tam_record()
            .await?
            .ok_or_else(|| anyhow!("the TAM has no record of device {}", self.device_id))?;
        let list = record
            .get("installed")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("no installed list in {record}"))?;
        list.iter()
            .map(|entry| {
                match (
                    entry.get(0).and_then(Value::as_str),
                    entry.get(1).and_then(Value::as_u64),
                ) {
                    (Some(id), Some(seq)) => Ok((id.to_owned(), seq)),
                    _ => Err(anyhow!("unexpected installed entry {entry}")),
                }
            })
            .collect()
    }

    /// The TA's sequence number as the device lists it (`teep device list --json`).
    async fn device_sequence(&self) -> Result<Option<u64>> {
        let text = self.teep(&self.app(&["list", "--json"])).await?;
        let list: Value = serde_json::from_str(&text).context("`device list --json`")?;
        let ta = json!(TA.map(|s| hex::encode(s.as_bytes())));
        Ok(list
            .as_array()
            .and_then(|tas| tas.iter().find(|t| t.get("component_id") == Some(&ta)))
            .and_then(|t| t.get("sequence_number")?.as_u64()))
    }

    /// Checks the device and the TAM agree that the TA is at `sequence` (`None`: absent),
    /// and whether the personalization data is installed.
    async fn expect_installed(&mut self, sequence: Option<u64>, perso: bool) -> Result<()> {
        let on_device = self.device_sequence().await?;
        ensure!(
            on_device == sequence,
            "the device lists the TA at {on_device:?}, expected {sequence:?}"
        );
        let installed = self.tam_installed().await?;
        let at_tam = installed
            .iter()
            .find(|(id, _)| *id == id_text(&TA_MANIFEST))
            .map(|(_, seq)| *seq);
        ensure!(
            at_tam == sequence,
            "the TAM records the TA at {at_tam:?}, expected {sequence:?}"
        );
        let has_perso = installed
            .iter()
            .any(|(id, _)| *id == id_text(&PERSO_MANIFEST));
        ensure!(
            has_perso == perso,
            "the TAM records the personalization data installed: {has_perso}, expected {perso}"
        );
        let list: Vec<String> = installed
            .iter()
            .map(|(id, seq)| format!("{id}@{seq}"))
            .collect();
        self.note(&format!(
            "checked: `teep device list` shows {}, the TAM's device record [{}]",
            sequence.map_or_else(|| "no TA".into(), |s| format!("the TA at sequence {s}")),
            list.join(" ")
        ));
        Ok(())
    }

    /// One policy check now (`teep device run --once`: what the running Broker's timer
    /// does), which must reach the TAM; its log goes to logs/policy-check-N.log.
    async fn policy_check(&mut self) -> Result<()> {
        self.policy_checks += 1;
        let args = [
            "--log-level",
            "info",
            "device",
            "run",
            "--once",
            "--allow-plain-http",
            "--tam",
            &self.tam_uri,
            "--state-dir",
            "device",
        ];
        let out = self.output(&args).await?;
        let log = self
            .dir
            .join("logs")
            .join(format!("policy-check-{}.log", self.policy_checks));
        std::fs::write(&log, &out.stderr).with_context(|| format!("writing {}", log.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        ensure!(
            out.status.success()
                && stdout.contains("1 TAM exchange(s) completed, 0 TAM(s) not reached"),
            "the policy check failed ({}): {} {}",
            out.status,
            stdout.trim(),
            last_lines(&log)
        );
        Ok(())
    }

    /// Invokes the TA, whose answer must be `expected`.
    async fn invoke(&self, expected: &str) -> Result<String> {
        let out = self
            .teep(&self.app(&["invoke", &id_text(&TA), "--input", INPUT]))
            .await?;
        let out = out.trim().to_owned();
        ensure!(
            out == expected,
            "the TA answered {out:?}, expected {expected:?}"
        );
        Ok(out)
    }

    /// `teep suit create` + `teep suit sign` (by the TC signer) into `out`.
    async fn envelope(
        &self,
        component: &[&str],
        seq: &str,
        extra: &[&str],
        payload: &str,
        out: &str,
    ) -> Result<()> {
        let unsigned = format!("{out}.unsigned");
        let mut args = vec!["suit", "create"];
        for segment in component {
            args.extend(["--component-id", segment]);
        }
        args.extend(extra);
        args.extend(["--seq", seq, "--payload", payload, "--out", &unsigned]);
        self.teep(&args).await?;
        self.teep(&[
            "suit",
            "sign",
            "--key",
            "signer.key",
            &unsigned,
            "--out",
            out,
        ])
        .await?;
        Ok(())
    }

    // ---- the steps

    /// Step 1: the TAM's, the TC signer's and the Verifier's keys with `teep keys`, the
    /// device's identity made by the TEE's first start and read back.
    async fn keys(&mut self) -> Result<DeviceIdentity> {
        std::fs::create_dir_all(self.dir.join("tam")).context("creating tam/")?;
        for (alg, out) in [
            ("esp256", "tam/tam-esp256.key"),
            ("ed25519", "tam/tam-ed25519.key"),
            ("esp256", "signer.key"),
            ("esp256", "verifier.key"),
        ] {
            self.teep(&["keys", "generate", "--alg", alg, "--out", out])
                .await?;
        }
        self.note("`teep keys generate`: the TAM's two keys (ESP256, Ed25519) in tam/, the TC signer's signer.key, the Verifier's verifier.key");
        self.spawn(
            "tee-first-start",
            &[
                "tee",
                "serve",
                "--state-dir",
                "tee",
                "--socket",
                "device/tee.sock",
            ],
            &[],
            "tee socket: ",
        )
        .await?;
        self.stop("tee-first-start").await?;
        let text = self
            .teep(&["device", "identity", "--json", "--tee-dir", "tee"])
            .await?;
        let identity = DeviceIdentity(serde_json::from_str(&text).context("the device identity")?);
        ensure!(
            identity.get("/claims/ueid")? == identity.get("/ueid")?,
            "the identity's claims carry another ueid"
        );
        self.device_id = identity.str("/teep_key/thumbprint")?.to_owned();
        self.note(&format!(
            "the TEE's first start made the device's keys; `teep device identity`: ueid {}, TEEP key {}",
            short(identity.str("/ueid")?),
            short(&self.device_id)
        ));
        Ok(identity)
    }

    /// Step 2: the Verifier, the TAM and the TEE, each telling where it listens.
    async fn start(&mut self, device: &DeviceIdentity) -> Result<()> {
        // The Verifier endorses exactly this device's attestation key, with its claims as
        // reference values.
        let manifests = device
            .get("/claims/manifests")?
            .as_array()
            .ok_or_else(|| anyhow!("the claims' manifests are not a list"))?;
        let policy = json!({
            "policy_id": "policy:teep-demo",
            "endorsements": [ { "key": device.str("/attestation_key/pem")?, "ueid": device.str("/ueid")? } ],
            "reference_values": {
                "oemids": [device.get("/claims/oemid")?],
                "hwmodels": [device.get("/claims/hwmodel")?],
                "hwversions": [device.get("/claims/hwversion/0")?],
                "tc_digests": manifests.iter().map(|m| m.get("sha256").cloned()).collect::<Vec<_>>(),
            },
        });
        std::fs::write(
            self.dir.join("verifier-policy.json"),
            serde_json::to_vec_pretty(&policy)?,
        )
        .context("writing verifier-policy.json")?;
        let lines = self
            .spawn(
                "verifier",
                &[
                    "verifier",
                    "serve",
                    "--policy",
                    "verifier-policy.json",
                    "--key",
                    "verifier.key",
                    "--listen",
                    "127.0.0.1:0",
                ],
                &[],
                "listening on http://",
            )
            .await?;
        let verifier_url = after(&lines, "listening on ")?.to_owned();
        // The token file the Verifier made on first start: `NAME TOKEN` lines.
        let tokens = std::fs::read_to_string(self.dir.join("verifier.key.tokens"))
            .context("reading verifier.key.tokens")?;
        let token = tokens
            .lines()
            .find_map(|l| l.strip_prefix("default "))
            .map(str::trim)
            .ok_or_else(|| anyhow!("no relying party \"default\" in verifier.key.tokens"))?
            .to_owned();
        self.note(&format!(
            "verifier  pid {}  {verifier_url}  (policy endorses the device's attestation key)",
            self.pid("verifier")
        ));

        let lines = self
            .spawn(
                "tam",
                &[
                    "tam",
                    "serve",
                    "--listen",
                    "127.0.0.1:0",
                    "--admin-listen",
                    "127.0.0.1:0",
                    "--data-dir",
                    "tam",
                    "--verifier",
                    &verifier_url,
                    "--verifier-key",
                    "verifier.key.pub",
                    // Every role of the demo posts from 127.0.0.1, faster than the
                    // per-client default (meant for devices behind one NAT) allows.
                    "--rate",
                    "1000",
                    "--burst",
                    "1000",
                ],
                // The token by the environment, not the process list.
                &[("TEEP_TAM_VERIFIER_TOKEN", &token)],
                "listening on http://",
            )
            .await?;
        self.tam_uri = after(&lines, "listening on ")?.to_owned();
        self.admin_url = after(&lines, "admin API on ")?.to_owned();
        self.note(&format!(
            "tam       pid {}  {}  admin API {}  (SQLite in tam/, the Verifier above)",
            self.pid("tam"),
            self.tam_uri,
            self.admin_url
        ));

        let tam_uri = self.tam_uri.clone();
        self.spawn(
            "tee",
            &[
                "tee",
                "serve",
                "--state-dir",
                "tee",
                "--socket",
                "device/tee.sock",
                "--trust-tam",
                "tam/tam-esp256.key.pub",
                "--trust-tam",
                "tam/tam-ed25519.key.pub",
                "--trust-signer",
                "signer.key.pub",
                "--tam",
                &tam_uri,
            ],
            &[],
            "tee socket: ",
        )
        .await?;
        self.note(&format!(
            "tee       pid {}  device/tee.sock  (trusts the TAM's keys and the TC signer)",
            self.pid("tee")
        ));
        Ok(())
    }

    /// Step 3: the Broker, whose first policy check makes the device attest; the TAM
    /// records the device.
    async fn attestation(&mut self) -> Result<()> {
        let tam_uri = self.tam_uri.clone();
        self.spawn(
            "broker",
            &[
                "device",
                "run",
                "--allow-plain-http",
                "--tam",
                &tam_uri,
                "--state-dir",
                "device",
                "--interval",
                "3600",
            ],
            &[],
            "api socket: ",
        )
        .await?;
        self.note(&format!(
            "broker    pid {}  device/broker.sock  (policy check at start, then hourly)",
            self.pid("broker")
        ));
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        let attested = loop {
            if let Some(record) = self.tam_record().await?
                && let Some(at) = record.get("attested_at").and_then(Value::as_u64)
            {
                break at;
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "the TAM has no attestation of the device after {READY_TIMEOUT:?}: {}",
                last_lines(&self.dir.join("logs/broker.log"))
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let log = std::fs::read_to_string(self.dir.join("logs/verifier.log"))
            .context("reading logs/verifier.log")?;
        ensure!(
            log.lines()
                .any(|l| l.contains("appraised Evidence") && l.contains("status=\"affirming\"")),
            "the Verifier affirmed no Evidence: {}",
            last_lines(&self.dir.join("logs/verifier.log"))
        );
        self.note("the Broker's first policy check: the TEE's Evidence (EAT, signed by its attestation key)");
        self.note(&format!(
            "went TAM -> Verifier, which affirmed it; `teep tam devices`: device {} attested at {attested}",
            short(&self.device_id)
        ));
        Ok(())
    }

    /// Step 4: the TA (v1) and its personalization data encrypted to the device, signed;
    /// the signer, both TCs and the device's policy registered.
    async fn package(&mut self, device: &DeviceIdentity) -> Result<()> {
        std::fs::write(self.dir.join("counter-v1.wasm"), COUNTER_V1).context("writing the TA")?;
        std::fs::write(self.dir.join("counter-v2.wasm"), COUNTER_V2).context("writing the TA")?;
        std::fs::write(self.dir.join("greeting.txt"), GREETING).context("writing the greeting")?;
        let key = hex::decode(device.str("/decryption_key/cose_key")?)
            .context("the device's decryption key is not hex")?;
        std::fs::write(self.dir.join("device-decryption.key.pub"), key)
            .context("writing the device's decryption key")?;
        self.envelope(&TA, "1", &[], "counter-v1.wasm", "ta-v1.suit")
            .await?;
        let mut extra = Vec::new();
        for segment in PERSO_MANIFEST {
            extra.extend(["--manifest-id", segment]);
        }
        extra.extend([
            "--depends-on",
            "ta-v1.suit",
            "--encrypt-to",
            "device-decryption.key.pub",
        ]);
        self.envelope(&PERSO, "1", &extra, "greeting.txt", "greeting.suit")
            .await?;
        let sealed =
            std::fs::read(self.dir.join("greeting.suit")).context("reading greeting.suit")?;
        ensure!(
            !sealed
                .windows(GREETING.len())
                .any(|w| w == GREETING.as_bytes()),
            "greeting.suit carries the greeting in the clear"
        );
        self.note("`teep suit create/sign`: ta-v1.suit (counter-v1, sequence 1), greeting.suit (encrypted to the");
        self.note("device's decryption key, depends on ta-v1.suit; the greeting is not in it in the clear)");
        self.teep(&self.admin(&[
            "signer",
            "add",
            "--name",
            "vendor",
            "--key",
            "signer.key.pub",
        ]))
        .await?;
        for file in ["ta-v1.suit", "greeting.suit"] {
            self.teep(&self.admin(&["tc", "add", file])).await?;
        }
        let (ta, perso) = (id_text(&TA_MANIFEST), id_text(&PERSO_MANIFEST));
        let device_id = self.device_id.clone();
        self.teep(&self.admin(&[
            "policy", "set", "--device", &device_id, "--tc", &ta, "--tc", &perso,
        ]))
        .await?;
        let tcs = self.teep(&self.admin(&["tc", "list"])).await?;
        for id in [&ta, &perso] {
            ensure!(
                tcs.contains(id.as_str()),
                "`tam tc list` does not show {id}: {tcs}"
            );
        }
        self.note(&format!(
            "admin API: signer \"vendor\" added, both TCs uploaded, policy of device {}: {ta} {perso}",
            short(&device_id)
        ));
        Ok(())
    }

    /// Step 7: counter-v2 at sequence 2, uploaded, installed by the next policy check.
    async fn update(&mut self) -> Result<()> {
        self.envelope(&TA, "2", &[], "counter-v2.wasm", "ta-v2.suit")
            .await?;
        let added = self.teep(&self.admin(&["tc", "add", "ta-v2.suit"])).await?;
        self.note(&format!(
            "ta-v2.suit (counter-v2, sequence 2) uploaded: {}",
            added.trim()
        ));
        self.policy_check().await?;
        self.expect_installed(Some(2), true).await
    }

    /// Step 9: the old envelope (sequence 1) uploaded again is refused by the admin API;
    /// nothing changes, on the TAM or on the device.
    async fn rollback(&mut self) -> Result<()> {
        let before = self.teep(&self.admin(&["tc", "list", "--json"])).await?;
        self.note("the TC signer's old envelope (counter-v1, sequence 1) offered again, as a downgrade would be:");
        let refused = self
            .teep_fails(&self.admin(&["tc", "add", "ta-v1.suit"]))
            .await?;
        ensure!(
            refused.contains("not above the latest"),
            "the upload of sequence 1 failed, but not as a rollback: {refused}"
        );
        let after = self.teep(&self.admin(&["tc", "list", "--json"])).await?;
        ensure!(before == after, "the refused upload changed the TAM's TCs");
        self.note(&format!(
            "refused: {}; the TAM's TCs unchanged",
            refused.trim().trim_start_matches("teep: ")
        ));
        self.policy_check().await?;
        self.expect_installed(Some(2), true).await
    }

    /// Step 10: the device's policy names no TC any more; the next policy check unlinks both.
    async fn delete(&mut self) -> Result<()> {
        let device_id = self.device_id.clone();
        self.teep(&self.admin(&["policy", "set", "--device", &device_id]))
            .await?;
        self.note(
            "`teep tam policy set` with no TC; the next policy check: an Update that unlinks both",
        );
        self.policy_check().await?;
        self.expect_installed(None, false).await
    }
}

/// SIGTERM (if the process is still running), then SIGKILL after [`STOP_GRACE`]; the exit
/// status once it is reaped.
async fn stop_child(mut child: Child) -> Result<ExitStatus> {
    if child.try_wait()?.is_none()
        && let Some(pid) = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw)
    {
        // Not reaped yet, so the pid is still this child's.
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .context("sending SIGTERM")?;
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(status) => Ok(status?),
        Err(_) => {
            child.start_kill()?;
            child.wait().await?;
            bail!("did not stop within {STOP_GRACE:?} of SIGTERM; killed")
        }
    }
}

/// Whether a server stopped as asked: exit status 0, or ended by the SIGTERM itself
/// (`teep verifier serve` has no shutdown handler; the signal's default action is its stop).
fn stopped(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt as _;
    status.success() || status.signal() == Some(rustix::process::Signal::TERM.as_raw())
}

/// The rest of the first line in `lines` that starts with `prefix`.
fn after<'a>(lines: &'a [String], prefix: &str) -> Result<&'a str> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .ok_or_else(|| anyhow!("no {prefix:?} in {lines:?}"))
}

/// A component ID in its canonical text form (the admin API's and `teep device`'s).
fn id_text(segments: &[&str]) -> String {
    ComponentId::from_strs(segments).to_string()
}

/// The first 16 characters of a long hex string.
fn short(hex: &str) -> &str {
    hex.get(..16).unwrap_or(hex)
}

/// The last lines of a log, for an error message.
fn last_lines(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines
        .get(lines.len().saturating_sub(5)..)
        .unwrap_or_default();
    format!("(last lines of {}: {})", path.display(), tail.join(" | "))
}

// ---- the message sequence

/// Who took part in an exchange.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Party {
    Agent,
    Tam,
    Verifier,
}

impl Party {
    fn text(self) -> &'static str {
        match self {
            Self::Agent => "Agent",
            Self::Tam => "TAM",
            Self::Verifier => "Verifier",
        }
    }

    fn mermaid(self) -> &'static str {
        match self {
            Self::Agent => "A",
            Self::Tam => "T",
            Self::Verifier => "V",
        }
    }
}

/// One line of the diagram.
#[derive(Clone)]
enum Line {
    /// A message from one party to another.
    Message(Party, Party, String),
    /// What a party did.
    Note(Party, String),
}

/// One logged event: when, in which step, and the lines it stands for.
struct Event {
    at: String,
    step: usize,
    /// Appraisals are drawn inside the TAM's exchange that asked for them.
    appraisal: bool,
    lines: Vec<Line>,
}

/// The message sequence: a text diagram, the same in Mermaid, and how many messages.
pub(crate) struct Diagram {
    pub(crate) text: String,
    pub(crate) mermaid: String,
    pub(crate) messages: usize,
}

/// The message sequence of the demo, read from what each role logged about each message
/// it handled (tracing's text lines in `logs`): the TAM's `teep message` line (the
/// message's type, the device, the token prefix and the outcome: what the TAM answered),
/// the Verifier's `appraised Evidence` line, and the TEE's `TAM message handled` or
/// `refused` line. `marks` say where each step began in these logs. Nothing is drawn that
/// no log line stands for. This is the one place to call `teep trace` from once it exists.
pub(crate) fn sequence_diagram(logs: &Path, marks: &[Mark]) -> Result<Diagram> {
    let mut events = Vec::new();
    for (index, name) in TRACED_LOGS.iter().enumerate() {
        let path = logs.join(name);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut offset = 0u64;
        for line in text.lines() {
            let start = offset;
            offset += u64::try_from(line.len())? + 1;
            let step = marks
                .iter()
                .rposition(|m| m.offsets.get(index).is_some_and(|o| *o <= start))
                .unwrap_or(0);
            let Some((at, lines, appraisal)) = parse_log_line(line) else {
                continue;
            };
            events.push(Event {
                at: at.to_owned(),
                step,
                appraisal,
                lines,
            });
        }
    }
    // One clock on one machine: tracing's RFC 3339 UTC timestamps sort as text.
    events.sort_by(|a, b| (a.step, &a.at).cmp(&(b.step, &b.at)));

    let mut text = String::from("message sequence (from the roles' logs):\n");
    let mut mermaid = String::from(
        "sequenceDiagram\n    participant A as TEEP Agent (TEE, via the Broker)\n    participant T as TAM\n    participant V as Verifier\n",
    );
    let mut messages = 0;
    let mut step = None;
    let mut pending: Vec<Line> = Vec::new();
    let mut draw = |line: &Line, text: &mut String, mermaid: &mut String| -> Result<()> {
        match line {
            Line::Message(from, to, label) => {
                messages += 1;
                writeln!(text, "    {:<8} -> {:<8} : {label}", from.text(), to.text())?;
                writeln!(
                    mermaid,
                    "    {}->>{}: {}",
                    from.mermaid(),
                    to.mermaid(),
                    mermaid_text(label)
                )?;
            }
            Line::Note(over, note) => {
                writeln!(text, "    {:<8}    {:<8}   ({note})", over.text(), "")?;
                writeln!(
                    mermaid,
                    "    Note over {}: {}",
                    over.mermaid(),
                    mermaid_text(note)
                )?;
            }
        }
        Ok(())
    };
    for event in &events {
        if step != Some(event.step) {
            for line in pending.drain(..) {
                draw(&line, &mut text, &mut mermaid)?;
            }
            step = Some(event.step);
            let title = marks.get(event.step).map_or("", |m| m.title.as_str());
            writeln!(text, "  -- {title}")?;
            writeln!(mermaid, "    Note over A,V: {}", mermaid_text(title))?;
        }
        if event.appraisal {
            pending.extend(event.lines.iter().cloned());
            continue;
        }
        let mut lines = event.lines.iter();
        // The TAM's line: the message it received, then the appraisal it asked for, then
        // its answer.
        if let Some(first) = lines.next() {
            draw(first, &mut text, &mut mermaid)?;
        }
        for line in pending.drain(..) {
            draw(&line, &mut text, &mut mermaid)?;
        }
        for line in lines {
            draw(line, &mut text, &mut mermaid)?;
        }
    }
    for line in pending.drain(..) {
        draw(&line, &mut text, &mut mermaid)?;
    }
    Ok(Diagram {
        text,
        mermaid,
        messages,
    })
}

/// What one log line stands for: its timestamp, its diagram lines, and whether it is an
/// appraisal (drawn inside the TAM exchange that follows it). `None` for other lines.
fn parse_log_line(line: &str) -> Option<(&str, Vec<Line>, bool)> {
    let (at, rest) = line.split_once(' ')?;
    if let Some(fields) = rest.split_once(" teep message ").map(|(_, f)| f) {
        let kind = field(fields, "kind")?;
        let token = field(fields, "token").unwrap_or_default();
        let device = field(fields, "device").unwrap_or_default();
        let mut tags = Vec::new();
        if !device.is_empty() {
            tags.push(format!("device {}", short(device)));
        }
        if !token.is_empty() {
            tags.push(format!("token {token}"));
        }
        let tags = if tags.is_empty() {
            String::new()
        } else {
            format!(" [{}]", tags.join(", "))
        };
        let received = match kind {
            "connect" => "POST with no body: the Broker opens a session".to_owned(),
            other => format!("{}{tags}", message_name(other)),
        };
        let mut lines = vec![Line::Message(Party::Agent, Party::Tam, received)];
        if let Some(reason) = field(fields, "dropped") {
            lines.push(Line::Note(Party::Tam, format!("dropped: {reason}")));
        } else if let Some(outcome) = field(fields, "outcome") {
            let (name, details) = split_debug(outcome);
            let answer = match name {
                "QueryRequestSent" => {
                    Line::Message(Party::Tam, Party::Agent, format!("QueryRequest{tags}"))
                }
                "UpdateSent" => {
                    Line::Message(Party::Tam, Party::Agent, format!("Update ({details})"))
                }
                "UpToDate" => Line::Message(
                    Party::Tam,
                    Party::Agent,
                    "204 No Content: up to date".into(),
                ),
                "Installed" => Line::Message(
                    Party::Tam,
                    Party::Agent,
                    format!("204 No Content: recorded ({details})"),
                ),
                _ => Line::Note(Party::Tam, outcome.to_owned()),
            };
            lines.push(answer);
        }
        return Some((at, lines, false));
    }
    if let Some(fields) = rest.split_once(" appraised Evidence ").map(|(_, f)| f) {
        let status = field(fields, "status").unwrap_or("?");
        let lines = vec![
            Line::Message(
                Party::Tam,
                Party::Verifier,
                "Evidence (POST /verify)".into(),
            ),
            Line::Message(Party::Verifier, Party::Tam, format!("EAR: {status}")),
        ];
        return Some((at, lines, true));
    }
    if let Some(fields) = rest.split_once(" TAM message handled ").map(|(_, f)| f) {
        let event = field(fields, "event")?;
        return Some((at, vec![Line::Note(Party::Agent, event.to_owned())], false));
    }
    if let Some(fields) = rest.split_once(" TAM message refused ").map(|(_, f)| f) {
        let refusal = field(fields, "refusal").unwrap_or(fields);
        return Some((
            at,
            vec![Line::Note(Party::Agent, format!("refused: {refusal}"))],
            false,
        ));
    }
    None
}

/// The fields the parsed lines carry, in the order tracing writes them.
const FIELDS: [&str; 13] = [
    "kind",
    "device",
    "token",
    "outcome",
    "dropped",
    "relying_party",
    "status",
    "findings",
    "tam",
    "event",
    "refusal",
    "err_code",
    "error",
];

/// The value of `key=` in tracing's `key=value key=value` text (quotes of a string value
/// removed): up to the next known field, else the end of the line.
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    let start = if fields.starts_with(&format!("{key}=")) {
        key.len() + 1
    } else {
        fields.find(&format!(" {key}="))? + key.len() + 2
    };
    let rest = fields.get(start..)?;
    let end = FIELDS
        .iter()
        .filter_map(|k| rest.find(&format!(" {k}=")))
        .min()
        .unwrap_or(rest.len());
    let value = rest.get(..end)?.trim();
    Some(
        value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value),
    )
}

/// `Name { a: 1, b: None }` as `("Name", "a: 1")` (fields that are `None` left out).
fn split_debug(text: &str) -> (&str, String) {
    match text.split_once(" {") {
        Some((name, rest)) => {
            let inner = rest.trim_end().trim_end_matches('}').trim();
            let kept: Vec<&str> = inner
                .split(", ")
                .filter(|f| !f.ends_with(": None"))
                .collect();
            (name, kept.join(", "))
        }
        None => (text, String::new()),
    }
}

/// A TEEP message type's name as the drafts write it (`query-response` -> QueryResponse).
fn message_name(kind: &str) -> String {
    kind.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// Text Mermaid draws as it is (`;` and `#` have meanings there).
fn mermaid_text(text: &str) -> String {
    text.replace([';', '#'], ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_become_messages() {
        let tam = r#"2026-12-02T03:43:01.210454Z  INFO teep_tam::driver: teep message kind="query-response" device=f073f57992fa030e token=9d770c14 outcome=UpdateSent { manifests: 2, unlinked: 0, err_code: None }"#;
        let (at, lines, appraisal) = parse_log_line(tam).unwrap();
        assert_eq!(at, "2026-12-02T03:43:01.210454Z");
        assert!(!appraisal);
        match lines.as_slice() {
            [
                Line::Message(Party::Agent, Party::Tam, got),
                Line::Message(Party::Tam, Party::Agent, sent),
            ] => {
                assert_eq!(
                    got,
                    "QueryResponse [device f073f57992fa030e, token 9d770c14]"
                );
                assert_eq!(sent, "Update (manifests: 2, unlinked: 0)");
            }
            _ => panic!("unexpected lines"),
        }
        let verifier = r#"2026-12-02T03:43:01.198775Z  INFO teep_verifier::server: appraised Evidence relying_party="default" status="affirming" findings=[]"#;
        let (_, lines, appraisal) = parse_log_line(verifier).unwrap();
        assert!(appraisal);
        assert!(
            matches!(lines.as_slice(), [_, Line::Message(Party::Verifier, Party::Tam, s)] if s == "EAR: affirming")
        );
        let dropped = r#"2026-12-02T03:43:01Z  INFO teep_tam::driver: teep message kind="success" device= token=ab dropped=unknown token"#;
        let (_, lines, _) = parse_log_line(dropped).unwrap();
        assert!(
            matches!(lines.as_slice(), [_, Line::Note(Party::Tam, s)] if s == "dropped: unknown token")
        );
        assert!(
            parse_log_line("2026-12-02T03:43:01Z  INFO teep_tam::admin: admin call method=GET")
                .is_none()
        );
    }

    #[test]
    fn message_names_follow_the_drafts() {
        assert_eq!(message_name("query-response"), "QueryResponse");
        assert_eq!(message_name("success"), "Success");
        assert_eq!(split_debug("UpToDate"), ("UpToDate", String::new()));
    }
}
