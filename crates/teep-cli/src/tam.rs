//! `teep tam serve`: the TAM engine behind TEEP over HTTP (or HTTPS), with its keys in a
//! data directory made on first start, and an in-process or a remote Verifier. Options:
//! [`crate::tam_config`].

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use teep_attest::appraiser::InProcess;
use teep_attest::policy::{DEFAULT_CLOCK_SKEW, DEFAULT_FRESHNESS_WINDOW};
use teep_attest::{Policy, ReferenceValues, SigningVerifier, Verifier};
use teep_cose::{Algorithm, Curve, PrivateKey, TrustStore, default_provider};
use teep_proto::Numbering;
use teep_tam::http::{Server, ServerConfig, tls_config};
use teep_tam::own::{FileAttestation, SelfAttestation};
use teep_tam::sql::SqlStore;
use teep_tam::{Tam, TamConfig};

use crate::attest::{load_policy, verifier_id, write_secret};
use crate::input::{private_key, public_key};
use crate::tam_config::{ServeArgs, Settings, VerifierSetting};

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Serve TEEP over HTTP (POST /tam) until Ctrl-C or SIGTERM. Every option can also be
    /// set by a TEEP_TAM_* variable or in the --config file (docs/operations.md).
    Serve(Box<ServeArgs>),
    #[command(flatten)]
    Admin(crate::tam_admin::Command),
}

/// The TAM's keys: one per cipher suite it offers (the first QueryRequest to an unknown
/// device is signed with both).
const KEYS: [(&str, Curve); 2] = [
    ("tam-esp256.key", Curve::P256),
    ("tam-ed25519.key", Curve::Ed25519),
];
/// The P-256 key Agents encrypt Evidence and SUIT reports to (§12), and its public half
/// for the devices (`teep tee serve --tam-encryption-key`).
const ENCRYPTION_KEY: &str = "tam-encryption.key";
const ENCRYPTION_PUBLIC_KEY: &str = "tam-encryption.pub.pem";
/// The in-process Verifier's EAR key (not made when the Verifier is remote).
const VERIFIER_KEY: &str = "verifier.key";

/// The public half of each of [`KEYS`] as SubjectPublicKeyInfo PEM, beside it in the data
/// directory: what an operator hands to devices (`teep tee serve --trust-tam FILE`, which
/// takes PEM), so that the private key file never has to leave the TAM.
const PUBLIC_KEYS: [&str; 2] = ["tam-esp256.pub.pem", "tam-ed25519.pub.pem"];

pub(crate) fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Serve(args) => serve(*args),
        Command::Admin(cmd) => crate::tam_admin::run(cmd),
    }
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    let settings = args.resolve()?;
    let data_dir = &settings.data_dir;
    fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let [esp, ed] = KEYS.map(|(name, curve)| key(&data_dir.join(name), curve));
    let (esp, ed) = (esp?, ed?);
    let encryption = key(&data_dir.join(ENCRYPTION_KEY), Curve::P256)?;
    let public = data_dir.join(ENCRYPTION_PUBLIC_KEY);
    fs::write(&public, encryption.public_key().to_pem())
        .with_context(|| format!("writing {}", public.display()))?;
    for (name, k) in PUBLIC_KEYS.iter().zip([&esp, &ed]) {
        public_key_file(&data_dir.join(name), k)?;
    }
    let provider = default_provider();
    let signer = |k: &PrivateKey| provider.signer(k, k.default_algorithm());
    let mut server_config = settings.server.clone();
    if let Some((cert, key)) = &settings.tls {
        server_config.tls = Some(tls_config(cert, key)?);
    }
    let mut verifiers = TrustStore::new();
    let appraiser = match &settings.verifier {
        VerifierSetting::InProcess { policy } => {
            let verifier_key = key(&data_dir.join(VERIFIER_KEY), Curve::P256)?;
            verifiers.add_key(verifier_key.public_key().clone());
            let policy = match policy {
                Some(path) => load_policy(path)?,
                None => Policy {
                    id: Some("policy:teep/none".into()),
                    endorsements: Vec::new(),
                    reference: ReferenceValues::default(),
                    freshness_window: DEFAULT_FRESHNESS_WINDOW,
                    clock_skew: DEFAULT_CLOCK_SKEW,
                },
            };
            Appraisal::InProcess(Box::new(InProcess::new(SigningVerifier::new(
                Verifier::new(policy, verifier_id()),
                signer(&verifier_key)?,
                provider,
            ))))
        }
        VerifierSetting::Remote {
            url,
            token,
            key,
            timeout,
        } => {
            verifiers.add_key(public_key(key)?);
            let http = reqwest::Client::builder()
                .timeout(*timeout)
                .connect_timeout(*timeout)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .context("building the Verifier's HTTP client")?;
            Appraisal::Remote(
                teep_verifier::Client::new(url.as_str(), token, http)
                    .context("the remote Verifier's client")?,
            )
        }
    };
    let tam_keys = vec![esp.public_key().clone(), ed.public_key().clone()];
    let self_attestation = |tam_keys: Vec<teep_cose::PublicKey>| -> Result<_> {
        let Some(a) = &settings.self_attestation else {
            return Ok(None);
        };
        let mut trust = TrustStore::new();
        trust.add_key(public_key(&a.verifier_key)?);
        Ok(Some(SelfAttestation {
            source: Box::new(FileAttestation::new(
                a.result.clone(),
                provider,
                trust,
                tam_keys,
                a.max_age,
            )),
            up_front: a.up_front,
        }))
    };
    if let Some(a) = &settings.self_attestation {
        tracing::info!(result = %a.result.display(), up_front = a.up_front, "TAM attests itself with an Attestation Result from a file");
    }
    // The pre-26 engine takes passport EARs fresh by age (its Agents obtain them ahead of
    // time); the -26 engine wants the session's token as their nonce.
    let engine = |numbering, signers, self_attestation| {
        Tam::new(TamConfig {
            provider,
            signers,
            verifiers: verifiers.clone(),
            numbering,
            token_lifetime: settings.token_lifetime,
            max_sessions_per_device: settings.max_sessions_per_device,
            max_anonymous_sessions: 10_000,
            attestation_max_age: 24 * 3600,
            default_class: Some(settings.default_class.clone()),
            encryption_key: Some(encryption.clone()),
            self_attestation,
            passport_by_age: numbering == Numbering::Pre26,
        })
    };
    let tams = Engines {
        current: engine(
            Numbering::Draft26,
            vec![signer(&esp)?, signer(&ed)?],
            self_attestation(tam_keys.clone())?,
        ),
        // Older Agents offer only COSE_Sign1 with ES256 (`[[18, -7]]`): the same P-256 key
        // under the polymorphic id they know.
        pre26: match &settings.pre26_path {
            Some(path) => Some((
                path.clone(),
                engine(
                    Numbering::Pre26,
                    vec![provider.signer(&esp, Algorithm::Es256)?],
                    self_attestation(tam_keys)?,
                ),
            )),
            None => None,
        },
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        match appraiser {
            Appraisal::InProcess(a) => serve_with(&settings, tams, *a, server_config).await,
            Appraisal::Remote(a) => serve_with(&settings, tams, a, server_config).await,
        }
    })
}

/// The engine for `-26` Agents, and the one for older Agents with its path.
struct Engines {
    current: Tam,
    pre26: Option<(String, Tam)>,
}

/// The two kinds of Verifier (the server is generic over its [`teep_attest::Appraiser`]).
enum Appraisal {
    InProcess(Box<InProcess>),
    Remote(teep_verifier::Client),
}

/// Opens the store, listens, says where everything is, and serves until a signal.
async fn serve_with<A>(
    settings: &Settings,
    tams: Engines,
    appraiser: A,
    server_config: ServerConfig,
) -> Result<ExitCode>
where
    A: teep_attest::Appraiser + Send + Sync + 'static,
{
    let data_dir = &settings.data_dir;
    let store = match &settings.database {
        Some(url) => SqlStore::connect(url).await,
        None => SqlStore::open_data_dir(data_dir).await,
    }
    .context("opening the TAM database")?;
    let scheme = if server_config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let path = server_config.path.clone();
    let metrics = Arc::new(teep_tam::metrics::Metrics::new());
    // The messages exchanged, for the console's sessions: in the database, so that every
    // replica's console shows every session and a restart keeps them.
    let messages: Arc<dyn teep_tam::messages::MessageLog> =
        Arc::new(store.message_log(settings.message_log_keep));
    let mut server = Server::new(tams.current, store.clone(), appraiser, server_config)
        .with_metrics(metrics.clone())
        .with_messages(messages.clone());
    let pre26 = tams.pre26.as_ref().map(|(path, _)| path.clone());
    if let Some((path, tam)) = tams.pre26 {
        server = server.with_pre26(path, tam);
    }
    let server = Arc::new(server);
    let stop = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "data directory: {}", data_dir.display())?;
    for name in KEYS.iter().map(|(name, _)| *name).chain(
        matches!(settings.verifier, VerifierSetting::InProcess { .. }).then_some(VERIFIER_KEY),
    ) {
        writeln!(out, "key: {}", data_dir.join(name).display())?;
    }
    writeln!(
        out,
        "encryption key for devices (--tam-encryption-key): {}",
        data_dir.join(ENCRYPTION_PUBLIC_KEY).display()
    )?;
    for name in PUBLIC_KEYS {
        writeln!(
            out,
            "public key (for teep tee serve --trust-tam): {}",
            data_dir.join(name).display()
        )?;
    }
    writeln!(out, "default class: {}", settings.default_class)?;
    match &settings.database {
        Some(_) => writeln!(out, "store: the database given by --database")?,
        None => writeln!(
            out,
            "store: {}",
            data_dir.join(teep_tam::sql::SQLITE_FILE).display()
        )?,
    }
    match &settings.verifier {
        VerifierSetting::InProcess { .. } => writeln!(out, "verifier: in-process")?,
        VerifierSetting::Remote { url, .. } => writeln!(out, "verifier: {url}")?,
    }
    let admin_listen = settings
        .admin_listen
        .as_deref()
        .unwrap_or(teep_tam::admin::DEFAULT_ADMIN_LISTEN);
    let admin = crate::tam_admin::start(
        data_dir,
        admin_listen,
        Arc::new(store.clone()),
        metrics,
        messages,
        default_provider(),
        &mut out,
    )
    .await?;
    writeln!(
        out,
        "listening on {scheme}://{}{path}",
        listener.local_addr()?
    )?;
    if let Some(pre26) = pre26 {
        writeln!(
            out,
            "older Agents (pre-26): {scheme}://{}{pre26}",
            listener.local_addr()?
        )?;
    }
    out.flush()?;
    drop(out);
    server.serve(listener, stop).await;
    admin.stop().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Writes `key`'s public half as PEM to `path` unless the file already holds exactly that
/// (a file left from another key is replaced, so it never names a key the TAM lacks).
fn public_key_file(path: &Path, key: &PrivateKey) -> Result<()> {
    let pem = key.public_key().to_pem();
    if fs::read(path).is_ok_and(|held| held == pem.as_bytes()) {
        return Ok(());
    }
    fs::write(path, pem.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "TAM public key written");
    Ok(())
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
pub(crate) fn shutdown_signal() -> Result<impl Future<Output = ()> + Send> {
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
