//! `teep tam serve`: the TAM engine behind TEEP over HTTP, with its keys in a data
//! directory made on first start and an in-process Verifier.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use teep_attest::appraiser::InProcess;
use teep_attest::policy::{DEFAULT_CLOCK_SKEW, DEFAULT_FRESHNESS_WINDOW};
use teep_attest::{Policy, ReferenceValues, SigningVerifier, Verifier};
use teep_cose::{Curve, PrivateKey, TrustStore, default_provider};
use teep_proto::Numbering;
use teep_tam::http::{Server, ServerConfig};
use teep_tam::sql::SqlStore;
use teep_tam::{Tam, TamConfig};

use crate::attest::{load_policy, verifier_id, write_secret};
use crate::input::private_key;

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Serve TEEP over HTTP (POST /tam) until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    #[command(flatten)]
    Admin(crate::tam_admin::Command),
}

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// Where the TAM keeps its keys; created, with new keys, on first start.
    #[arg(long, default_value = "teep-tam")]
    data_dir: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8480")]
    listen: String,
    /// The admin API (and /metrics); loopback unless told otherwise.
    #[arg(long, default_value = teep_tam::admin::DEFAULT_ADMIN_LISTEN)]
    admin_listen: String,
    /// Appraisal policy (JSON) of the in-process Verifier. Without it no attestation key is
    /// endorsed, so every device's Evidence is refused.
    #[arg(long)]
    verifier_policy: Option<PathBuf>,
    /// The TAM's database: `sqlite:PATH` or `postgres://...` (several TAM processes may
    /// share one PostgreSQL). Default: the SQLite file `tam.sqlite3` in the data directory.
    #[arg(long, env = "TEEP_TAM_DATABASE")]
    database: Option<String>,
    /// TLS certificate (PEM). Not supported yet: terminate TLS in a proxy in front.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
}

/// The TAM's keys: one per cipher suite it offers (the first QueryRequest to an unknown
/// device is signed with both), and the in-process Verifier's EAR key.
const KEYS: [(&str, Curve); 3] = [
    ("tam-esp256.key", Curve::P256),
    ("tam-ed25519.key", Curve::Ed25519),
    ("verifier.key", Curve::P256),
];

pub(crate) fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Serve(args) => serve(args),
        Command::Admin(cmd) => crate::tam_admin::run(cmd),
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    if let Some(cert) = &args.tls_cert {
        bail!(
            "--tls-cert {}: TLS is not supported yet; serve plain HTTP behind a TLS-terminating proxy",
            cert.display()
        );
    }
    fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    let [esp, ed, verifier_key] = KEYS.map(|(name, curve)| key(&args.data_dir.join(name), curve));
    let (esp, ed, verifier_key) = (esp?, ed?, verifier_key?);
    let provider = default_provider();
    let policy = match &args.verifier_policy {
        Some(path) => load_policy(path)?,
        None => Policy {
            id: Some("policy:teep/none".into()),
            endorsements: Vec::new(),
            reference: ReferenceValues::default(),
            freshness_window: DEFAULT_FRESHNESS_WINDOW,
            clock_skew: DEFAULT_CLOCK_SKEW,
        },
    };
    let mut verifiers = TrustStore::new();
    verifiers.add_key(verifier_key.public_key().clone());
    let signer = |k: &PrivateKey| provider.signer(k, k.default_algorithm());
    let tam = Tam::new(TamConfig {
        provider,
        signers: vec![signer(&esp)?, signer(&ed)?],
        verifiers,
        numbering: Numbering::Draft26,
        token_lifetime: 4 * 3600,
        max_sessions_per_device: 4,
        max_anonymous_sessions: 10_000,
        attestation_max_age: 24 * 3600,
        default_class: None,
    });
    let appraiser = InProcess::new(SigningVerifier::new(
        Verifier::new(policy, verifier_id()),
        signer(&verifier_key)?,
        provider,
    ));
    tokio::runtime::Runtime::new()?.block_on(async {
        let store = match &args.database {
            Some(url) => SqlStore::connect(url).await,
            None => SqlStore::open_data_dir(&args.data_dir).await,
        }
        .context("opening the TAM database")?;
        let metrics = Arc::new(teep_tam::metrics::Metrics::new());
        let server = Arc::new(
            Server::new(tam, store.clone(), appraiser, ServerConfig::default())
                .with_metrics(metrics.clone()),
        );
        let stop = shutdown_signal()?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "data directory: {}", args.data_dir.display())?;
        for (name, _) in &KEYS {
            writeln!(out, "key: {}", args.data_dir.join(name).display())?;
        }
        match &args.database {
            Some(_) => writeln!(out, "store: the database given by --database")?,
            None => writeln!(
                out,
                "store: {}",
                args.data_dir.join(teep_tam::sql::SQLITE_FILE).display()
            )?,
        }
        let admin = crate::tam_admin::start(
            &args.data_dir,
            &args.admin_listen,
            Arc::new(store.clone()),
            metrics,
            provider,
            &mut out,
        )
        .await?;
        writeln!(out, "listening on http://{}/tam", listener.local_addr()?)?;
        out.flush()?;
        drop(out);
        server.serve(listener, stop).await;
        admin.stop().await;
        store.close().await;
        tracing::info!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The key at `path`, made (owner-only) if there is none yet.
fn key(path: &Path, curve: Curve) -> Result<PrivateKey> {
    if path.exists() {
        return private_key(path);
    }
    let key = PrivateKey::generate(curve)?;
    write_secret(path, &key.to_cose_key_bytes())?;
    Ok(key)
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM. The handlers are installed before the server
/// starts, so a signal that comes early is not lost.
fn shutdown_signal() -> Result<impl Future<Output = ()> + Send> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let interrupt = tokio::signal::ctrl_c();
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = interrupt.await;
        tracing::info!("shutting down: finishing requests in flight");
    })
}
