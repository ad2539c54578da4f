//! `teep loadgen`: many simulated devices running complete TEEP sessions against a TAM.
//!
//! Each device is a real TEEP Agent engine ([`teep_agent::engine::Agent`]) over an
//! in-memory TEE ([`MemoryTee`]) with its own TEEP key and ueid, behind a real Broker
//! ([`teep_broker::Broker`]): what goes over the wire is exactly what `teep device run`
//! sends. The devices share one attestation key (a device-class endorsement, as in group
//! attestation), kept in the fleet directory with the Verifier policy that endorses it:
//! `teep loadgen --write-policy` makes both, and the TAM is started with
//! `--verifier-policy FLEET/policy.json`. A session is one policy check: the empty POST,
//! the QueryRequest, the QueryResponse (with Evidence on first contact), and the Update and
//! Success when the TAM has something for the device. All devices post from one address, so
//! the TAM under load needs its per-client rate limit raised (`--rate`, `--burst`).
//!
//! The TAM answers a message it drops with 204, as it answers a device that is up to date:
//! a device cannot tell the two apart, so a session counts as completed when the exchange
//! ran to its end. What the TAM made of them is in its records (`teep tam devices`).
//!
//! `--numbering pre-26 --alg es256` makes the devices older Agents (no attestation) for a
//! TAM's pre-26 path: they are registered in advance, exempt from attestation, written
//! into the TAM's store (`--database`) before the run, as the TAM serves no older Agent it
//! does not know. `--seed N --database URL` writes N devices' state (record, installed TC,
//! attestation result) into a TAM's store in batches and exits, so that a run can be
//! measured against a TAM that already holds a large fleet.
//!
//! `--churn SECS` keeps the TAM's store growing while the run lasts: loadgen uploads a
//! TC of its own (signed with `--churn-signer`, a signer the TAM knows) through the admin
//! API, adds it to the class policy, and every SECS seconds uploads its next version, so
//! that sessions carry Updates as well as policy checks.

use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::json;
use teep_agent::engine::{Agent, AgentConfig, Attestation, Limits};
use teep_agent::memory::MemoryTee;
use teep_agent::tee::TeeError;
use teep_attest::{EatClaims, Manifest, Oemid, Version};
use teep_broker::{Broker, BrokerConfig, BrokerError, HttpConfig, PlainHttp};
use teep_cose::{Curve, PrivateKey, TrustStore, default_provider};
use teep_proto::{ComponentId, Numbering, SuitCoseProfile};
use teep_suit::builder::{self, ManifestSpec, PayloadLocation};
use teep_suit::processor::DeviceIdentity;
use teep_tam::admin::PolicyList;
use teep_tam::sql::SqlStore;
use teep_tam::store::{AttestationRecord, Device as TamDevice, DeviceId, Installed};

use crate::input::{private_key, public_key};
use crate::inspect::NumberingArg;
use crate::suit::trust_anchors;
use crate::tee::{SimAgent, TeepAlg};

/// The fleet's shared attestation key and the Verifier policy endorsing it.
const ATTESTATION_KEY: &str = "attestation.key";
const POLICY: &str = "policy.json";
/// A session whose exchange failed below TEEP (the Broker logs why: a refused connection,
/// a timeout, an HTTP status such as the TAM's 429 when its per-client rate limit is not
/// raised for a fleet posting from one address).
const NOT_REACHED: &str = "tam_not_reached";
/// The device class every simulated device claims.
const OEMID: u64 = 32473;
const HWMODEL: &[u8] = b"teep loadgen";
const HWVERSION: &str = "1.0";
/// The Agent image every simulated device reports (`manifests`), and its digest.
const AGENT_URI: &str = "urn:teep:loadgen-agent";
const AGENT_DIGEST: [u8; 32] = [0x4c; 32];
/// Device records written per transaction by `--seed` and the pre-26 registration (a few
/// statements each: SQLite bounds a statement's arguments).
const SEED_BATCH: usize = 250;
/// The TC every seeded device holds, and what its attestation result row carries: seeded
/// rows are load, not appraisals (`teep tam devices` shows them as such).
const SEEDED_TC: [&str; 3] = ["TEEP-Device", "loadgen", "seeded.suit"];
const SEEDED_EAR: &[u8] = b"seeded by teep loadgen: not a signed EAR";
/// The TC `--churn` uploads new versions of (component, and its manifest's ID).
const CHURN_TC: [&str; 3] = ["TEEP-Device", "loadgen", "churn"];
const CHURN_MANIFEST: [&str; 3] = ["TEEP-Device", "loadgen", "churn.suit"];

#[derive(clap::Args)]
pub(crate) struct Args {
    /// The TAM's TEEP URL (`http://127.0.0.1:8480/tam`).
    #[arg(long, required_unless_present_any = ["write_policy", "seed"])]
    tam: Option<String>,
    /// A TAM key (PEM or COSE_Key) the devices trust; repeatable.
    #[arg(long = "trust-tam", value_name = "KEYFILE")]
    trust_tam: Vec<PathBuf>,
    /// A TC Signer key whose manifests the devices install (`KEY[=PREFIX]`); repeatable.
    #[arg(long = "trust-signer", value_name = "KEYFILE[=PREFIX]")]
    trust_signer: Vec<String>,
    /// The fleet directory: the shared attestation key and the Verifier policy.
    #[arg(long, default_value = "teep-loadgen")]
    fleet: PathBuf,
    /// Make the fleet directory's attestation key and Verifier policy, print the policy's
    /// path for `teep tam serve --verifier-policy`, and exit.
    #[arg(long)]
    write_policy: bool,
    /// Simulated devices, each with its own TEEP key, ueid and TEE state.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Sessions in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Print the figures as JSON.
    #[arg(long)]
    json: bool,
    /// Allow a plain `http://` TAM URL (else only https, or http to a loopback address).
    #[arg(long)]
    allow_plain_http: bool,
    /// The devices' TEEP numbering: `pre-26` makes them older Agents (no attestation) for a
    /// TAM's `--pre26-path`, registered exempt in `--database` before the run.
    #[arg(long, value_enum, default_value = "26")]
    numbering: NumberingArg,
    /// The algorithm of the devices' TEEP signatures (`es256` for pre-26 TAMs).
    #[arg(long, value_enum, default_value_t = TeepAlg::Esp256)]
    alg: TeepAlg,
    /// The TAM's store (`sqlite://DIR/tam.sqlite3`, `postgres://...`), written directly:
    /// by `--seed`, and to register pre-26 devices.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Write N devices' state (record, one installed TC, an attestation row) into
    /// `--database` in batches, print how long it took, and exit.
    #[arg(long, value_name = "N", requires = "database")]
    seed: Option<usize>,
    /// Every SECS seconds, upload a new version of loadgen's churn TC through the admin
    /// API (the first one before the run, added to `--churn-class`'s policy).
    #[arg(long, value_name = "SECS", requires_all = ["admin_url", "churn_signer"])]
    churn: Option<u64>,
    /// The TAM's admin API, for `--churn`.
    #[arg(long, value_name = "URL")]
    admin_url: Option<String>,
    /// The admin API's bearer token (default: `TEEP_TAM_ADMIN_TOKEN`).
    #[arg(long, env = "TEEP_TAM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The TC Signer key `--churn` signs with (registered at the TAM; give the devices its
    /// public half with `--trust-signer`).
    #[arg(long, value_name = "KEYFILE")]
    churn_signer: Option<PathBuf>,
    /// The device class whose policy gets the churn TC.
    #[arg(long, default_value = "default")]
    churn_class: String,
}

impl Args {
    fn pre26(&self) -> bool {
        matches!(self.numbering, NumberingArg::Pre26)
    }

    /// The run's mode, as `--json` reports it.
    fn mode(&self) -> serde_json::Value {
        json!({
            "numbering": if self.pre26() { "pre-26" } else { "26" },
            "alg": match self.alg { TeepAlg::Esp256 => "esp256", TeepAlg::Es256 => "es256" },
            "attestation": if self.pre26() { "exempt" } else { "evidence" },
            "churn_secs": self.churn,
        })
    }
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    if args.write_policy {
        let policy = write_fleet(&args.fleet)?;
        println!("verifier policy: {}", policy.display());
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(n) = args.seed {
        let url = args
            .database
            .as_deref()
            .context("--seed needs --database")?;
        let started = Instant::now();
        tokio::runtime::Runtime::new()?.block_on(seed(url, n))?;
        println!(
            "seeded {n} devices in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        return Ok(ExitCode::SUCCESS);
    }
    if args.pre26() && args.database.is_none() {
        bail!("--numbering pre-26 needs --database: older Agents are registered in advance");
    }
    if args.devices == 0 || args.concurrency == 0 {
        bail!("--devices and --concurrency must be at least 1");
    }
    let tam = args.tam.clone().context("--tam is required")?;
    let attestation = private_key(&args.fleet.join(ATTESTATION_KEY)).with_context(|| {
        format!(
            "no fleet in {}: run `teep loadgen --write-policy --fleet {}` first",
            args.fleet.display(),
            args.fleet.display()
        )
    })?;
    let runtime = tokio::runtime::Runtime::new()?;
    let figures = runtime.block_on(load(&args, &tam, &attestation))?;
    if args.json {
        let mut out = figures.to_json();
        if let Some(map) = out.as_object_mut() {
            map.insert("mode".into(), args.mode());
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        figures.print();
    }
    Ok(if figures.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Makes the fleet's attestation key (kept if present) and its Verifier policy.
fn write_fleet(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_path = dir.join(ATTESTATION_KEY);
    let key = if key_path.exists() {
        private_key(&key_path)?
    } else {
        let key = PrivateKey::generate(Curve::P256)?;
        crate::attest::write_secret(&key_path, &key.to_cose_key_bytes())?;
        key
    };
    let policy = json!({
        "policy_id": "policy:teep-loadgen",
        "endorsements": [ {
            "key": key.public_key().to_pem(),
            "device_class": { "oemid": OEMID, "hwmodel": hex::encode(HWMODEL) },
        } ],
        "reference_values": {
            "oemids": [OEMID],
            "hwmodels": [hex::encode(HWMODEL)],
            "hwversions": [HWVERSION],
            "tc_digests": [hex::encode(AGENT_DIGEST)],
        },
    });
    let path = dir.join(POLICY);
    std::fs::write(&path, serde_json::to_vec_pretty(&policy)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// `--churn`: uploads versions of [`CHURN_TC`] through the TAM's admin API.
struct Churn {
    http: reqwest::Client,
    url: String,
    token: String,
    key: PrivateKey,
    class: String,
}

impl Churn {
    fn new(args: &Args) -> Result<Option<Self>> {
        let (Some(_), Some(url), Some(key)) = (args.churn, &args.admin_url, &args.churn_signer)
        else {
            return Ok(None);
        };
        Ok(Some(Self {
            http: reqwest::Client::new(),
            url: url.trim_end_matches('/').to_owned(),
            token: args
                .admin_token
                .clone()
                .context("--churn needs --admin-token (or TEEP_TAM_ADMIN_TOKEN)")?,
            key: private_key(key)?,
            class: args.churn_class.clone(),
        }))
    }

    /// Sends `request` with the token; an error unless the API accepted it.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<serde_json::Value> {
        let response = request.bearer_auth(&self.token).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!("admin API: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(serde_json::from_slice(&body).unwrap_or_default())
    }

    /// Signs and uploads version `sequence` (its payload names the version).
    async fn upload(&self, sequence: u64) -> Result<()> {
        let provider = default_provider();
        let spec = ManifestSpec {
            component_id: ComponentId::from_strs(&CHURN_TC),
            manifest_component_id: Some(ComponentId::from_strs(&CHURN_MANIFEST)),
            sequence_number: sequence,
            payload: format!("teep loadgen churn TC, version {sequence}").into_bytes(),
            location: PayloadLocation::Integrated("#tc".into()),
            vendor_id: None,
            class_id: None,
            reference_uri: None,
            encrypt_to: None,
            dependencies: Vec::new(),
        };
        let built = builder::build(&spec, provider)?;
        let signer = provider.signer(&self.key, self.key.default_algorithm())?;
        let envelope = builder::sign(&built.envelope, signer.as_ref(), provider)?;
        let request = self
            .http
            .post(format!("{}/admin/tcs", self.url))
            .header("content-type", "application/suit-envelope+cose")
            .body(envelope);
        self.call(request).await.map(drop)
    }

    /// Uploads the first version and adds it to the class's policy (keeping the rest).
    async fn start(&self) -> Result<()> {
        self.upload(1).await.context("uploading the churn TC")?;
        let policies: PolicyList = serde_json::from_value(
            self.call(self.http.get(format!("{}/admin/policy", self.url)))
                .await?,
        )?;
        let mut policy = policies
            .classes
            .get(&self.class)
            .cloned()
            .unwrap_or_default();
        let manifest = ComponentId::from_strs(&CHURN_MANIFEST).to_string();
        if !policy.install.contains(&manifest) {
            policy.install.push(manifest);
        }
        let request = self
            .http
            .put(format!("{}/admin/policy/class/{}", self.url, self.class))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(&policy)?);
        self.call(request)
            .await
            .context("adding the churn TC to the policy")?;
        Ok(())
    }
}

/// Writes `devices` and `attestations` into the store at `url`, [`SEED_BATCH`] at a time.
async fn write_devices(
    url: &str,
    devices: &[TamDevice],
    attestations: &[AttestationRecord],
) -> Result<()> {
    let store = SqlStore::connect(url)
        .await
        .with_context(|| format!("opening the TAM store {url}"))?;
    for (i, chunk) in devices.chunks(SEED_BATCH).enumerate() {
        let from = (i * SEED_BATCH).min(attestations.len());
        let to = (from + chunk.len()).min(attestations.len());
        store
            .put_devices(chunk, attestations.get(from..to).unwrap_or_default())
            .await
            .context("writing device records")?;
    }
    store.close().await;
    Ok(())
}

/// `--seed`: `n` attested devices of the default class, each holding one TC.
async fn seed(url: &str, n: usize) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let provider = default_provider();
    let manifest_id = ComponentId::from_strs(&SEEDED_TC);
    let mut devices = Vec::with_capacity(n);
    let mut attestations = Vec::with_capacity(n);
    for _ in 0..n {
        // Random ids and keys, not key pairs: a seeded device never runs a session, and
        // a P-256 key generation per device would dominate seeding 100 000 of them.
        let mut id = [0u8; 32];
        provider.fill_random(&mut id)?;
        let mut digest = [0u8; 32];
        provider.fill_random(&mut digest)?;
        devices.push(TamDevice {
            id: DeviceId(id),
            key: id.to_vec(),
            class: None,
            revoked: false,
            suite: None,
            attested_at: Some(now),
            failed: Vec::new(),
            attestation_exempt: false,
            installed: vec![Installed {
                manifest_id: manifest_id.clone(),
                sequence: 1,
                digest,
            }],
        });
        attestations.push(AttestationRecord {
            device: DeviceId(id),
            at: now,
            ear: SEEDED_EAR.to_vec(),
        });
    }
    write_devices(url, &devices, &attestations).await
}

/// One simulated device.
type Device = Broker<SimAgent<MemoryTee>>;

/// Builds `args.devices` devices, then runs sessions on them for `args.duration`.
async fn load(args: &Args, tam: &str, attestation: &PrivateKey) -> Result<Figures> {
    let provider = default_provider();
    let mut tam_trust = TrustStore::new();
    for path in &args.trust_tam {
        tam_trust.add_key(public_key(path)?);
    }
    if args.trust_tam.is_empty() {
        bail!("give the TAM's key with --trust-tam (its data directory's tam-esp256.key)");
    }
    let mut devices = Vec::with_capacity(args.devices);
    let mut registrations = Vec::new();
    for _ in 0..args.devices {
        let teep = PrivateKey::generate(Curve::P256)?;
        if args.pre26() {
            // The operator's registration of an older Agent: its key, exempt.
            let public = teep.public_key();
            registrations.push(TamDevice {
                id: DeviceId(public.thumbprint()),
                key: public.to_cose_key_bytes(),
                class: None,
                revoked: false,
                suite: None,
                attested_at: None,
                failed: Vec::new(),
                attestation_exempt: true,
                installed: Vec::new(),
            });
        }
        let mut ueid = vec![0x01; 17];
        provider.fill_random(ueid.get_mut(1..).unwrap_or_default())?;
        let tee = MemoryTee::new(
            provider.signer(&teep, args.alg.algorithm())?,
            provider.signer(attestation, attestation.default_algorithm())?,
            claims(ueid),
            Box::new(|image: &[u8], input: &[u8]| -> Result<Vec<u8>, TeeError> {
                Ok([image, input].concat())
            }),
        );
        let cfg = AgentConfig {
            provider,
            numbering: Numbering::from(args.numbering),
            tam_trust: tam_trust.clone(),
            tam_uris: vec![tam.to_owned()],
            tc_trust: trust_anchors(&args.trust_signer)?,
            device: DeviceIdentity::default(),
            suit_cose_profiles: SuitCoseProfile::ALL_MTI.to_vec(),
            tam_attestation: None,
            tam_encryption_key: None,
            tam_encryption_keys: Vec::new(),
            limits: Limits::default(),
            attestation: if args.pre26() {
                Attestation::None
            } else {
                Attestation::Evidence
            },
        };
        let agent = SimAgent::new(Agent::new(cfg, tee).context("starting an Agent")?);
        let broker_cfg = BrokerConfig {
            http: HttpConfig {
                plain_http: if args.allow_plain_http {
                    PlainHttp::Allow
                } else {
                    PlainHttp::Loopback
                },
                // Older TAMs answer with `application/teep+cose`.
                accept_teep_cose: args.pre26(),
                ..HttpConfig::default()
            },
            default_tam_uri: Some(tam.to_owned()),
            ..BrokerConfig::default()
        };
        devices.push(Arc::new(
            Broker::new(agent, broker_cfg).context("starting a Broker")?,
        ));
    }
    if let Some(url) = args.database.as_deref().filter(|_| args.pre26()) {
        write_devices(url, &registrations, &[]).await?;
    }
    let devices: Arc<[Arc<Device>]> = devices.into();
    let churn = Churn::new(args)?;
    if let Some(c) = &churn {
        c.start().await?;
    }
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let next = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(Mutex::new(Samples::default()));
    let done = Arc::new(AtomicBool::new(false));
    let progress = tokio::spawn(progress(
        Arc::clone(&samples),
        Arc::clone(&done),
        args.duration,
    ));
    let started = Instant::now();
    let uploads = churn.map(|c| {
        let (samples, every) = (Arc::clone(&samples), args.churn.unwrap_or(1).max(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(every));
            tick.tick().await;
            let mut sequence = 1;
            loop {
                tick.tick().await;
                if Instant::now() >= deadline {
                    break sequence;
                }
                let uploaded = c.upload(sequence + 1).await;
                let mut s = samples.lock().unwrap_or_else(PoisonError::into_inner);
                match uploaded {
                    Ok(()) => sequence += 1,
                    Err(e) => *s.errors.entry(format!("churn: {e}")).or_default() += 1,
                }
            }
        })
    });
    let mut workers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
        let (devices, next, samples) = (
            Arc::clone(&devices),
            Arc::clone(&next),
            Arc::clone(&samples),
        );
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed) % devices.len();
                let Some(device) = devices.get(i) else { break };
                let t0 = Instant::now();
                let outcome = device.policy_check().await;
                let latency = t0.elapsed();
                let mut s = samples.lock().unwrap_or_else(PoisonError::into_inner);
                match outcome {
                    Ok(report) if report.failed == 0 => s.latencies.push(latency),
                    Ok(_) => *s.errors.entry(NOT_REACHED.into()).or_default() += 1,
                    Err(e) => *s.errors.entry(error_label(&e)).or_default() += 1,
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    progress.await?;
    let versions = match uploads {
        Some(task) => Some(task.await?),
        None => None,
    };
    let mut installed: BTreeMap<usize, usize> = BTreeMap::new();
    for d in devices.iter() {
        let tas = d.list_tas().await.map_err(|e| anyhow::anyhow!("{e}"))?;
        *installed.entry(tas.len()).or_default() += 1;
    }
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(PoisonError::into_inner));
    let mut figures = Figures::new(args.devices, args.concurrency, elapsed, samples, installed);
    figures.churn_versions = versions;
    Ok(figures)
}

/// The claims of a simulated device (the fleet policy's reference values).
fn claims(ueid: Vec<u8>) -> EatClaims {
    EatClaims {
        ueid: Some(ueid),
        oemid: Some(Oemid::Pen(OEMID)),
        hwmodel: Some(HWMODEL.to_vec()),
        hwversion: Some(Version {
            version: HWVERSION.into(),
            scheme: None,
        }),
        manifests: Some(vec![Manifest::suit_reference(AGENT_URI, AGENT_DIGEST)]),
        ..EatClaims::default()
    }
}

/// A failed session's label in the error table.
fn error_label(e: &BrokerError) -> String {
    match e {
        BrokerError::Transport(t) => format!("transport: {t}"),
        BrokerError::Agent(a) => format!("agent: {a}"),
        other => other.to_string(),
    }
}

/// What the workers measured.
#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, usize>,
}

/// Prints a progress line while the run lasts (in place on a terminal).
async fn progress(samples: Arc<Mutex<Samples>>, done: Arc<AtomicBool>, total: u64) {
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while !done.load(Ordering::Relaxed) {
        tick.tick().await;
        let (ok, errors) = {
            let s = samples.lock().unwrap_or_else(PoisonError::into_inner);
            (s.latencies.len(), s.errors.values().sum::<usize>())
        };
        let secs = started.elapsed().as_secs();
        let filled =
            usize::try_from((secs * 30).checked_div(total).unwrap_or(30).min(30)).unwrap_or(30);
        let bar = format!("{}{}", "#".repeat(filled), ".".repeat(30 - filled));
        let line = format!("[{bar}] {secs:>4}s/{total}s  {ok} sessions  {errors} errors");
        let mut err = std::io::stderr().lock();
        let _ = if tty {
            write!(err, "\r{line}")
        } else if secs.is_multiple_of(5) {
            writeln!(err, "{line}")
        } else {
            Ok(())
        };
    }
    if tty {
        let _ = writeln!(std::io::stderr());
    }
}

/// The run's figures.
struct Figures {
    devices: usize,
    concurrency: usize,
    elapsed: Duration,
    sessions: usize,
    p50: Duration,
    p99: Duration,
    errors: BTreeMap<String, usize>,
    /// Devices by how many TCs they hold at the end.
    installed: BTreeMap<usize, usize>,
    /// `--churn`: the churn TC's last version uploaded.
    churn_versions: Option<u64>,
}

impl Figures {
    fn new(
        devices: usize,
        concurrency: usize,
        elapsed: Duration,
        mut samples: Samples,
        installed: BTreeMap<usize, usize>,
    ) -> Self {
        samples.latencies.sort_unstable();
        let at = |q: f64| {
            let n = samples.latencies.len();
            // Nearest rank: the smallest latency with at least q of the samples at or below.
            let rank = (q * n as f64).ceil() as usize;
            samples
                .latencies
                .get(rank.saturating_sub(1).min(n.saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Self {
            devices,
            concurrency,
            elapsed,
            sessions: samples.latencies.len(),
            p50: at(0.50),
            p99: at(0.99),
            errors: samples.errors,
            installed,
            churn_versions: None,
        }
    }

    fn per_second(&self) -> f64 {
        self.sessions as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn print(&self) {
        println!(
            "{} devices, concurrency {}, {:.1} s",
            self.devices,
            self.concurrency,
            self.elapsed.as_secs_f64()
        );
        println!("sessions: {} ({:.1}/s)", self.sessions, self.per_second());
        println!(
            "latency: p50 {:.2} ms, p99 {:.2} ms",
            ms(self.p50),
            ms(self.p99)
        );
        if self.errors.is_empty() {
            println!("errors: none");
        }
        for (label, n) in &self.errors {
            println!("errors: {n} {label}");
        }
        for (tcs, n) in &self.installed {
            println!("devices holding {tcs} TC(s): {n}");
        }
        if let Some(v) = self.churn_versions {
            println!("churn TC: {v} version(s) uploaded");
        }
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "devices": self.devices,
            "concurrency": self.concurrency,
            "seconds": self.elapsed.as_secs_f64(),
            "sessions": self.sessions,
            "sessions_per_second": self.per_second(),
            "p50_ms": ms(self.p50),
            "p99_ms": ms(self.p99),
            "errors": self.errors,
            "devices_by_installed_tcs": self.installed.iter()
                .map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
            "churn_versions": self.churn_versions,
        })
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
