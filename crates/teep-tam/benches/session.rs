//! The TAM's cost per complete TEEP session on [`SqlStore`] over SQLite (WAL, a temp dir),
//! beside the pure signature cost of that same session (target: at most 1.5 times), and
//! sessions per second on a tokio multi-thread runtime with 1 and 2 worker threads.
//!
//! A session is a first contact: an empty POST gets a QueryRequest (COSE_Sign, ESP256 and
//! Ed25519); a QueryResponse with Evidence (background check through the in-process
//! Verifier) gets an Update carrying one 64 KiB TC; a Success with a SUIT report ends it.
//! `TEEP_BENCH_SESSIONS` devices (default 1000, each distinct) run their sessions
//! concurrently in three waves: every connect, then every QueryResponse, then every
//! Success. The test Agents verify, build and sign their messages *between* the waves, so
//! none of the Agent's work falls inside a measured window.
//!
//! A fourth run (SQLite, 1 worker) also records every exchange in the message log, as
//! `teep tam serve` does by default (the operator console's record): the session
//! without it, the server's with it.
//!
//! Also measured, in the memory run only (its two clock reads per signature are system
//! calls, which the SQLite runs' figures should not carry): the CPU time the TAM side's
//! signatures and verifications take inside the sessions (each one's thread CPU time,
//! while the waves run), beside the replay.
//!
//! Measured: CPU time of the whole process (`CLOCK_PROCESS_CPUTIME_ID`: the runtime's
//! workers, the threads that take their place while a commit group waits for the disk,
//! and sqlx's worker threads included) and wall time, summed over the three waves. The
//! same sessions also run on `MemoryStore`, for the engine's share alone. The signature baseline replays, with the same provider in the same run, every
//! sign and verify that the TAM side (engine and in-process Verifier) made in one recorded
//! session, over the very bytes it signed and checked.
//!
//! After the summary, divan times each message kind on its own (wall time, current-thread
//! runtime) and the signature replay.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark set-up on fixed inputs: a failure aborts the benchmark"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use common::{
    Agent, CLASS, NOW, World, provider, report, tam_config, update, verifier_id, verifier_policy,
};
use cpu_time::ProcessTime;
use divan::{Bencher, black_box};
use teep_attest::appraiser::InProcess;
use teep_attest::{SigningVerifier, Verifier};
use teep_cose::zeroize::Zeroizing;
use teep_cose::{Algorithm, CoseError, CryptoProvider, Curve, PrivateKey, PublicKey, Signer};
use teep_tam::messages::{Exchange, MESSAGE_LOG_LIMIT, MessageLog};
use teep_tam::sql::{PolicyScope, SqlMessageLog, SqlStore};
use teep_tam::store::{MemoryState, Store, TcPolicy, TcRelease};
use teep_tam::{Context, Event, Handled, MemoryStore, ProviderRandom, Tam, TamConfig, driver};
use tokio::runtime::Runtime;

/// The TC every device gets.
const TC_SIZE: usize = 64 << 10;
/// Sessions per run unless `TEEP_BENCH_SESSIONS` says otherwise.
const DEFAULT_SESSIONS: usize = 1000;
/// Replays of the recorded signatures for the baseline figure.
const BASELINE_REPLAYS: u32 = 300;
/// The target: TAM CPU per session over its signature cost.
const TARGET_RATIO: f64 = 1.5;

fn main() {
    let sessions = std::env::var("TEEP_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SESSIONS);
    println!("provider: {}", provider().name());
    let fleet = Fleet::new();
    let ops = record_one_session(&fleet);
    let statement = sqlite_statement();
    // `TEEP_BENCH_ONLY=memory` (or `sqlite`) skips the other store's runs: for profiling.
    let only = std::env::var("TEEP_BENCH_ONLY").unwrap_or_default();
    let skip = |name: &str| !only.is_empty() && !only.eq_ignore_ascii_case(name);
    // The signature baseline is measured before and after every run, and each run is set
    // beside the mean of the two: this VM's speed drifts by a fifth within minutes.
    let mut signatures = vec![baseline(&ops)];
    let mut runs = Vec::new();
    for (memory, workers, log) in [
        (true, 1, false),
        (false, 1, false),
        (false, 2, false),
        (false, 1, true),
    ] {
        let mut figures = if memory {
            run::<MemoryStore>(&fleet, workers, sessions, skip(MemoryStore::NAME))
        } else {
            run_with::<SqlStore>(&fleet, workers, sessions, skip(SqlStore::NAME), log)
        };
        if figures.workers > 0 {
            signatures.push(baseline(&ops));
        }
        let around = &signatures[signatures.len().saturating_sub(2)..];
        figures.signatures = around.iter().sum::<Duration>() / 2;
        runs.push(figures);
    }
    summary(sessions, &ops, &signatures, statement, &runs);
    divan::main();
}

// --- recording the TAM side's signatures -------------------------------------------

/// A signature made or checked on the TAM side, kept to be replayed.
enum Op {
    Sign(Arc<dyn Signer>, Vec<u8>),
    Verify(PublicKey, Algorithm, Vec<u8>, Vec<u8>),
}

/// The default provider, recording the signatures made and checked while `on`, and
/// adding up the CPU time they take in place (the calling thread's) while `timing`.
struct Recording {
    on: AtomicBool,
    ops: Mutex<Vec<Op>>,
    timing: AtomicBool,
    /// Nanoseconds of thread CPU time spent signing and verifying while `timing`.
    spent: AtomicU64,
}

/// The provider of every TAM and Verifier here (the test Agents use the default one).
static CRYPTO: Recording = Recording {
    on: AtomicBool::new(false),
    ops: Mutex::new(Vec::new()),
    timing: AtomicBool::new(false),
    spent: AtomicU64::new(0),
};

impl Recording {
    fn record(&self, op: impl FnOnce() -> Op) {
        if self.on.load(Ordering::Relaxed) {
            self.ops
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(op());
        }
    }

    /// Runs `f` (one signature or verification), adding its CPU time to `spent` while
    /// `timing`: what the signatures cost inside the sessions, caches and all, beside
    /// what they cost replayed in a loop.
    fn timed<T>(&self, f: impl FnOnce() -> T) -> T {
        if !self.timing.load(Ordering::Relaxed) {
            return f();
        }
        let start = cpu_time::ThreadTime::now();
        let out = f();
        let spent = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.spent.fetch_add(spent, Ordering::Relaxed);
        out
    }
}

/// A signer of the default provider whose signatures [`CRYPTO`] records.
struct RecordingSigner(Arc<dyn Signer>);

impl Signer for RecordingSigner {
    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }

    fn public_key(&self) -> &PublicKey {
        self.0.public_key()
    }

    fn sign(&self, tbs: &[u8]) -> Result<Vec<u8>, CoseError> {
        CRYPTO.record(|| Op::Sign(self.0.clone(), tbs.to_vec()));
        CRYPTO.timed(|| self.0.sign(tbs))
    }
}

impl CryptoProvider for Recording {
    fn name(&self) -> &'static str {
        provider().name()
    }

    fn signer(&self, key: &PrivateKey, alg: Algorithm) -> Result<Box<dyn Signer>, CoseError> {
        let inner = provider().signer(key, alg)?;
        Ok(Box::new(RecordingSigner(Arc::from(inner))))
    }

    fn verify(
        &self,
        key: &PublicKey,
        alg: Algorithm,
        tbs: &[u8],
        sig: &[u8],
    ) -> Result<(), CoseError> {
        self.record(|| Op::Verify(key.clone(), alg, tbs.to_vec(), sig.to_vec()));
        self.timed(|| provider().verify(key, alg, tbs, sig))
    }

    fn sha256(&self, data: &[u8]) -> [u8; 32] {
        provider().sha256(data)
    }

    fn fill_random(&self, out: &mut [u8]) -> Result<(), CoseError> {
        provider().fill_random(out)
    }

    fn hmac_sha256(&self, key: &[u8], data: &[u8]) -> [u8; 32] {
        provider().hmac_sha256(key, data)
    }

    fn ecdh_p256(
        &self,
        private: &PrivateKey,
        peer: &PublicKey,
    ) -> Result<Zeroizing<[u8; 32]>, CoseError> {
        provider().ecdh_p256(private, peer)
    }

    fn hkdf_sha256(
        &self,
        ikm: &[u8],
        salt: &[u8],
        info: &[u8],
        out: &mut [u8],
    ) -> Result<(), CoseError> {
        provider().hkdf_sha256(ikm, salt, info, out)
    }

    fn aes_kw_wrap(&self, kek: &[u8], key: &[u8]) -> Result<Vec<u8>, CoseError> {
        provider().aes_kw_wrap(kek, key)
    }

    fn aes_kw_unwrap(&self, kek: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, CoseError> {
        provider().aes_kw_unwrap(kek, wrapped)
    }

    fn aes_ctr_apply(&self, key: &[u8], iv: &[u8], data: &mut [u8]) -> Result<(), CoseError> {
        provider().aes_ctr_apply(key, iv, data)
    }

    fn aes_gcm_seal(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CoseError> {
        provider().aes_gcm_seal(key, nonce, aad, plaintext)
    }

    fn aes_gcm_open(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Vec<u8>, CoseError> {
        provider().aes_gcm_open(key, nonce, aad, ciphertext_and_tag)
    }
}

/// Does every recorded signature operation once, as the TAM side did it.
fn replay(ops: &[Op]) {
    for op in ops {
        match op {
            Op::Sign(signer, tbs) => {
                black_box(signer.sign(black_box(tbs)).unwrap());
            }
            Op::Verify(key, alg, tbs, sig) => provider()
                .verify(key, *alg, black_box(tbs), black_box(sig))
                .unwrap(),
        }
    }
}

// --- the TAM, its store and the devices ---------------------------------------------

/// The TAM process: engine, in-process Verifier, and its store (SQLite in a temp dir, or
/// in memory for the engine's share alone).
struct Tams<S> {
    tam: Tam,
    verifier: InProcess,
    store: S,
    /// The operator console's message log, recording every exchange as `teep tam serve`
    /// does (its default on SQLite), in the runs that have one.
    log: Option<SqlMessageLog>,
    _dir: tempfile::TempDir,
}

/// A store a run can use: set up with the release and its class policy, read back at the
/// end, shut.
trait BenchStore: Store + Send + Sync + Sized + 'static {
    const NAME: &'static str;
    async fn open(dir: &std::path::Path, release: &TcRelease, policy: &TcPolicy) -> Self;
    async fn state(&self) -> MemoryState;
    async fn shut(&self);
    /// The store's message log, if it keeps one.
    fn message_log(&self) -> Option<SqlMessageLog>;
}

impl BenchStore for SqlStore {
    const NAME: &'static str = "SQLite";

    async fn open(dir: &std::path::Path, release: &TcRelease, policy: &TcPolicy) -> Self {
        let store = Self::open_data_dir(dir).await.unwrap();
        store.put_release(release).await.unwrap();
        store
            .put_policy(PolicyScope::Class(CLASS), policy)
            .await
            .unwrap();
        store
    }

    async fn state(&self) -> MemoryState {
        self.snapshot().await.unwrap()
    }

    async fn shut(&self) {
        self.close().await;
    }

    fn message_log(&self) -> Option<SqlMessageLog> {
        Some(Self::message_log(self, MESSAGE_LOG_LIMIT))
    }
}

impl BenchStore for MemoryStore {
    const NAME: &'static str = "memory";

    async fn open(_: &std::path::Path, release: &TcRelease, policy: &TcPolicy) -> Self {
        let store = Self::new();
        store.with(|s| {
            s.releases.push(release.clone());
            s.class_policy.insert(CLASS.to_string(), policy.clone());
        });
        store
    }

    async fn state(&self) -> MemoryState {
        self.snapshot()
    }

    async fn shut(&self) {}

    fn message_log(&self) -> Option<SqlMessageLog> {
        None
    }
}

/// The keys of the TAM side and the world the test Agents come from.
struct Fleet {
    world: World,
    release: TcRelease,
    esp256: PrivateKey,
    ed25519: PrivateKey,
    verifier: PrivateKey,
}

impl Fleet {
    fn new() -> Self {
        let mut world = World::new();
        let esp256 = PrivateKey::generate(Curve::P256).unwrap();
        let ed25519 = PrivateKey::generate(Curve::Ed25519).unwrap();
        // The Agents trust these keys (World::agent reads the fields).
        world.tam_esp256 = esp256.public_key().clone();
        world.tam_ed25519 = ed25519.public_key().clone();
        let release = world.release_with("tc", 1, &[], vec![0x5a; TC_SIZE]);
        Self {
            world,
            release,
            esp256,
            ed25519,
            verifier: PrivateKey::generate(Curve::P256).unwrap(),
        }
    }

    fn agent(&self) -> Agent {
        self.world.agent(Curve::P256)
    }

    /// A fresh TAM on a fresh store holding the release and the class policy installing
    /// it; room for `devices` first contacts at once.
    async fn tam<S: BenchStore>(&self, devices: usize) -> Tams<S> {
        let sign = |k: &PrivateKey| CRYPTO.signer(k, k.default_algorithm()).unwrap();
        let config = TamConfig {
            provider: &CRYPTO,
            signers: vec![sign(&self.esp256), sign(&self.ed25519)],
            max_anonymous_sessions: devices.max(8),
            ..tam_config(&self.esp256, &self.ed25519, self.verifier.public_key())
        };
        let verifier = InProcess::new(SigningVerifier::new(
            Verifier::new(
                verifier_policy(self.world.attestation.public_key()),
                verifier_id(),
            ),
            sign(&self.verifier),
            &CRYPTO,
        ));
        let dir = tempfile::tempdir().unwrap();
        let policy = TcPolicy {
            install: vec![self.release.manifest_id.clone()],
            requestable: vec![],
        };
        let store = S::open(dir.path(), &self.release, &policy).await;
        Tams {
            tam: Tam::new(config),
            verifier,
            store,
            log: None,
            _dir: dir,
        }
    }

    /// The Agent's QueryResponse (with Evidence) to a QueryRequest.
    fn respond(agent: &Agent, query_request: &[u8]) -> Vec<u8> {
        let qr = agent.read_query(query_request);
        agent.attested_response(&qr, qr.challenge.as_deref().unwrap())
    }

    /// The Agent's Success (with one SUIT report) to an Update carrying the release.
    fn succeed(&self, agent: &Agent, update_bytes: &[u8]) -> Vec<u8> {
        let u = update(agent.read(update_bytes));
        assert_eq!(
            u.manifest_list.as_deref(),
            Some(&[self.release.envelope.to_vec()][..])
        );
        let token = u.token.unwrap();
        let reports = vec![report(self.release.digest, &token, true)];
        agent.success(&token, Some(reports))
    }
}

/// One message through the TAM: load, decide, commit.
async fn post<S: BenchStore>(t: &Tams<S>, body: &[u8]) -> Handled {
    let mut rng = ProviderRandom(&CRYPTO);
    let mut cx = Context {
        now: NOW,
        rng: &mut rng,
    };
    let decision = driver::decide(&t.tam, &t.store, &t.verifier, body, None, &mut cx).await;
    let device = decision.meta.device;
    let handled = driver::commit(&t.store, decision).await.unwrap();
    if let Some(log) = &t.log {
        let exchange = Exchange {
            request: body,
            reply: handled.reply.as_deref(),
            device,
            dropped: None,
            at: cx.now,
            numbering: t.tam.config().numbering,
        };
        log.record(&exchange).await.unwrap();
    }
    handled
}

const INSTALLED: Event = Event::Installed {
    manifests: 1,
    unlinked: 0,
};

/// Records the TAM side's signatures over one complete session.
fn record_one_session(fleet: &Fleet) -> Vec<Op> {
    let rt = runtime(1);
    rt.block_on(async {
        let t: Tams<SqlStore> = fleet.tam(1).await;
        let agent = fleet.agent();
        CRYPTO.on.store(true, Ordering::Relaxed);
        let qr = post(&t, &[]).await.reply.unwrap();
        CRYPTO.on.store(false, Ordering::Relaxed);
        let resp = Fleet::respond(&agent, &qr);
        CRYPTO.on.store(true, Ordering::Relaxed);
        let upd = post(&t, &resp).await.reply.unwrap();
        CRYPTO.on.store(false, Ordering::Relaxed);
        let success = fleet.succeed(&agent, &upd);
        CRYPTO.on.store(true, Ordering::Relaxed);
        let done = post(&t, &success).await;
        CRYPTO.on.store(false, Ordering::Relaxed);
        assert_eq!(done.event, INSTALLED);
        t.store.close().await;
    });
    std::mem::take(&mut *CRYPTO.ops.lock().unwrap())
}

/// CPU time of one replay of the recorded signatures (the mean of many).
fn baseline(ops: &[Op]) -> Duration {
    replay(ops);
    let cpu = ProcessTime::now();
    for _ in 0..BASELINE_REPLAYS {
        replay(ops);
    }
    cpu.elapsed() / BASELINE_REPLAYS
}

/// Statements for [`sqlite_statement`]'s mean.
const STATEMENTS: u32 = 5000;

/// CPU time of one trivial statement (`SELECT 1`) through sqlx on a SQLite file: the fixed
/// cost of a hand-off to sqlx's connection worker thread, which the engine's loads and
/// commits on SQLite avoid by running through rusqlite on the calling thread
/// (`sql/sqlite_ops.rs`); the admin side still pays it.
fn sqlite_statement() -> Duration {
    runtime(1).block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("statement.sqlite3"))
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        let cpu = ProcessTime::now();
        for _ in 0..STATEMENTS {
            let one: (i64,) = sqlx::query_as("SELECT 1").fetch_one(&pool).await.unwrap();
            black_box(one);
        }
        let per = cpu.elapsed() / STATEMENTS;
        pool.close().await;
        per
    })
}

// --- concurrent runs ------------------------------------------------------------------

/// CPU and wall time of the TAM over a run's waves.
#[derive(Default)]
struct Figures {
    store: &'static str,
    workers: usize,
    cpu: Duration,
    wall: Duration,
    /// CPU time of the TAM side's signatures and verifications inside the run's sessions,
    /// if `timed`.
    in_place: Duration,
    /// Whether the run times each signature in place (the memory run).
    timed: bool,
    /// The signature baseline around this run (the mean of the one before and after).
    signatures: Duration,
}

fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// Posts every body at once (one task each) and waits for all; adds the time taken.
async fn wave<S: BenchStore>(
    t: &Arc<Tams<S>>,
    bodies: Vec<Vec<u8>>,
    figures: &mut Figures,
) -> Vec<Handled> {
    let spent = CRYPTO.spent.load(Ordering::Relaxed);
    CRYPTO.timing.store(figures.timed, Ordering::Relaxed);
    let cpu = ProcessTime::now();
    let wall = Instant::now();
    // Spawned and joined from a task of the runtime, as a server's connection tasks are:
    // joining them from `block_on` would wake the bench's main thread once per message.
    let t = t.clone();
    let handled = tokio::spawn(async move {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let t = t.clone();
                tokio::spawn(async move { post(&t, &body).await })
            })
            .collect();
        let mut handled = Vec::with_capacity(tasks.len());
        for task in tasks {
            handled.push(task.await.unwrap());
        }
        handled
    })
    .await
    .unwrap();
    figures.wall += wall.elapsed();
    figures.cpu += cpu.elapsed();
    CRYPTO.timing.store(false, Ordering::Relaxed);
    figures.in_place += Duration::from_nanos(CRYPTO.spent.load(Ordering::Relaxed) - spent);
    handled
}

/// `sessions` devices' first contacts, concurrently, on `workers` worker threads.
fn run<S: BenchStore>(fleet: &Fleet, workers: usize, sessions: usize, skip: bool) -> Figures {
    run_with::<S>(fleet, workers, sessions, skip, false)
}

/// [`run`], and with `log` the message log of `teep tam serve` (SQLite only) recording
/// every exchange.
fn run_with<S: BenchStore>(
    fleet: &Fleet,
    workers: usize,
    sessions: usize,
    skip: bool,
    log: bool,
) -> Figures {
    if skip {
        return Figures::default();
    }
    let rt = runtime(workers);
    rt.block_on(async {
        let mut tams = fleet.tam::<S>(sessions).await;
        if log {
            tams.log = tams.store.message_log();
        }
        let t = Arc::new(tams);
        let agents: Vec<Agent> = (0..sessions).map(|_| fleet.agent()).collect();
        let mut figures = Figures {
            store: if log { "SQLite+log" } else { S::NAME },
            workers,
            timed: S::NAME == MemoryStore::NAME,
            ..Figures::default()
        };
        let qrs = wave(&t, vec![Vec::new(); sessions], &mut figures).await;
        let responses = agents
            .iter()
            .zip(&qrs)
            .map(|(a, h)| Fleet::respond(a, h.reply.as_ref().unwrap()))
            .collect();
        let updates = wave(&t, responses, &mut figures).await;
        let successes = agents
            .iter()
            .zip(&updates)
            .map(|(a, h)| fleet.succeed(a, h.reply.as_ref().unwrap()))
            .collect();
        let done = wave(&t, successes, &mut figures).await;
        assert!(
            done.iter()
                .all(|h| h.event == INSTALLED && h.reply.is_none())
        );
        let state = t.store.state().await;
        let installed = agents
            .iter()
            .filter(|a| {
                state
                    .devices
                    .get(&a.id())
                    .is_some_and(|d| d.installed.len() == 1)
            })
            .count();
        assert_eq!(installed, sessions, "every device ends installed");
        t.store.shut().await;
        figures
    })
}

fn summary(
    sessions: usize,
    ops: &[Op],
    signatures: &[Duration],
    statement: Duration,
    runs: &[Figures],
) {
    let signs = ops.iter().filter(|o| matches!(o, Op::Sign(..))).count();
    let per = |f: &Figures| f.cpu.as_nanos() as f64 / sessions as f64;
    let rate = |f: &Figures| sessions as f64 / f.wall.as_secs_f64();
    let ratio = |f: &Figures| per(f) / f.signatures.as_nanos() as f64;
    let ns = |d: Option<&Duration>| d.map_or(0, Duration::as_nanos);
    println!();
    println!("TAM session benchmark: {sessions} first contacts (distinct devices), SqlStore on");
    println!(
        "SQLite (WAL) in a temp dir, {} KiB TC, {} TAM-side signature operations",
        TC_SIZE >> 10,
        ops.len()
    );
    println!(
        "({signs} signs, {} verifies) per session; process CPU time, Agent work excluded",
        ops.len() - signs
    );
    println!();
    println!("| figure                                   | value            |");
    println!("|------------------------------------------|------------------|");
    println!(
        "| signatures alone, CPU ns/session, min-max | {:>7}-{:<8} |",
        ns(signatures.iter().min()),
        ns(signatures.iter().max())
    );
    println!(
        "| one sqlx SQLite statement (SELECT 1), CPU ns | {:>13} |",
        statement.as_nanos()
    );
    for f in runs.iter().filter(|f| f.workers > 0) {
        let run = format!("TAM on {:<6}, {} worker(s)", f.store, f.workers);
        println!("| {run}, CPU ns/session | {:>16.0} |", per(f));
        println!("| {run}, sessions/s     | {:>16.1} |", rate(f));
        println!(
            "| {run}, signatures around | {:>13} |",
            f.signatures.as_nanos()
        );
        println!("| {run}, ratio to those    | {:>13.2} |", ratio(f));
        if f.timed {
            println!(
                "| {run}, signatures in place, CPU ns/session | {:>6.0} |",
                f.in_place.as_nanos() as f64 / sessions as f64
            );
        }
    }
    println!();
    if let Some(one) = runs
        .iter()
        .find(|f| f.store == SqlStore::NAME && f.workers == 1)
    {
        let ratio = ratio(one);
        let verdict = if ratio <= TARGET_RATIO {
            "meets"
        } else {
            "MISSES"
        };
        println!(
            "ratio on SQLite, 1 worker: {ratio:.2} {verdict} the target of at most {TARGET_RATIO}"
        );
        println!();
    }
}

// --- divan: each message on its own -------------------------------------------------

/// One TAM on a current-thread runtime, shared by the divan benches.
struct Shared {
    rt: Runtime,
    fleet: Fleet,
    tams: Tams<SqlStore>,
    ops: Vec<Op>,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let fleet = Fleet::new();
        let ops = record_one_session(&fleet);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let tams = rt.block_on(fleet.tam(1 << 16));
        Shared {
            rt,
            fleet,
            tams,
            ops,
        }
    })
}

impl Shared {
    fn post(&self, body: &[u8]) -> Handled {
        self.rt.block_on(post(&self.tams, body))
    }

    /// A new device's QueryResponse to its first QueryRequest.
    fn query_response(&self) -> Vec<u8> {
        let agent = self.fleet.agent();
        Fleet::respond(&agent, &self.post(&[]).reply.unwrap())
    }

    /// A new device's Success to its first Update.
    fn success(&self) -> Vec<u8> {
        let agent = self.fleet.agent();
        let qr = self.post(&[]).reply.unwrap();
        let upd = self.post(&Fleet::respond(&agent, &qr)).reply.unwrap();
        self.fleet.succeed(&agent, &upd)
    }
}

/// Empty POST: a new session and its QueryRequest, signed with both TAM keys.
#[divan::bench(sample_count = 100)]
fn connect(bencher: Bencher<'_, '_>) {
    let s = shared();
    bencher.bench_local(|| s.post(&[]));
}

/// QueryResponse with Evidence: appraisal, device record, Update with the 64 KiB TC.
#[divan::bench(sample_count = 100, sample_size = 1)]
fn query_response(bencher: Bencher<'_, '_>) {
    let s = shared();
    bencher
        .with_inputs(|| s.query_response())
        .bench_local_values(|body| s.post(&body));
}

/// Success with a SUIT report: the device's installed state.
#[divan::bench(sample_count = 100, sample_size = 1)]
fn success(bencher: Bencher<'_, '_>) {
    let s = shared();
    bencher
        .with_inputs(|| s.success())
        .bench_local_values(|body| assert_eq!(s.post(&body).event, INSTALLED));
}

/// The TAM side's signatures of one session, alone.
#[divan::bench(sample_count = 100)]
fn signatures(bencher: Bencher<'_, '_>) {
    let s = shared();
    bencher.bench_local(|| replay(&s.ops));
}
