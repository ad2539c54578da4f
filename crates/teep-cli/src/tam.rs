//! `teep tam serve`: the TAM engine behind TEEP over HTTP (or HTTPS), with its keys in a
//! data directory made on first start, and an in-process or a remote Verifier. Options:
//! [`crate::tam_config`].

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use teep_attest::EatClaims;
use teep_attest::appraiser::InProcess;
use teep_attest::policy::{DEFAULT_CLOCK_SKEW, DEFAULT_FRESHNESS_WINDOW};
use teep_attest::{Policy, ReferenceValues, SigningVerifier, Verifier};
use teep_cose::{Algorithm, Curve, PrivateKey, TrustStore, default_provider};
use teep_proto::Numbering;
use teep_tam::http::{Server, ServerConfig, tls_config};
use teep_tam::own::{
    EarCheck, FileAttestation, OwnAttestation, RemoteAttestation, SelfAttestation,
};
use teep_tam::sql::SqlStore;
use teep_tam::{Tam, TamConfig};

use crate::attest::{load_policy, verifier_id, write_secret};
use crate::input::{private_key, public_key};
use crate::tam_config::{
    DEFAULT_DATA_DIR, OwnSource, SelfAttestationSetting, ServeArgs, Settings, VerifierSetting,
};

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Serve TEEP over HTTP (POST /tam) until Ctrl-C or SIGTERM. Every option can also be
    /// set by a TEEP_TAM_* variable or in the --config file (docs/operations.md).
    Serve(Box<ServeArgs>),
    /// Print the TAM's public identity (ueid, TEEP keys, attestation key), making its keys
    /// in the data directory if they are not there yet: what devices and the Verifier the
    /// TAM attests itself to need (docs/operations.md).
    Identity(IdentityArgs),
    #[command(flatten)]
    Admin(crate::tam_admin::Command),
}

#[derive(clap::Args)]
pub(crate) struct IdentityArgs {
    /// The TAM's data directory (as given to `teep tam serve`). [default: teep-tam]
    #[arg(long, env = "TEEP_TAM_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON (else a summary, with the attestation key's PEM).
    #[arg(long)]
    json: bool,
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
/// The key the TAM signs Evidence about itself with (`--attestation-verifier`), and its
/// public half for the Verifier's endorsement.
const ATTESTATION_KEY: &str = "tam-attestation.key";
const ATTESTATION_PUBLIC_KEY: &str = "tam-attestation.pub.pem";

/// The public half of each of [`KEYS`] as SubjectPublicKeyInfo PEM, beside it in the data
/// directory: what an operator hands to devices (`teep tee serve --trust-tam FILE`, which
/// takes PEM), so that the private key file never has to leave the TAM.
const PUBLIC_KEYS: [&str; 2] = ["tam-esp256.pub.pem", "tam-ed25519.pub.pem"];

pub(crate) fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Serve(args) => serve(*args),
        Command::Identity(args) => identity(&args),
        Command::Admin(cmd) => crate::tam_admin::run(cmd),
    }
}

/// The TAM's private keys, from its data directory.
struct Keys {
    esp: PrivateKey,
    ed: PrivateKey,
    encryption: PrivateKey,
    attestation: PrivateKey,
}

impl Keys {
    /// The keys in `data_dir`, made (with their public halves beside them) where missing.
    fn open(data_dir: &Path) -> Result<Self> {
        fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let [esp, ed] = KEYS.map(|(name, curve)| key(&data_dir.join(name), curve));
        let (esp, ed) = (esp?, ed?);
        let encryption = key(&data_dir.join(ENCRYPTION_KEY), Curve::P256)?;
        let attestation = key(&data_dir.join(ATTESTATION_KEY), Curve::P256)?;
        for (name, k) in PUBLIC_KEYS.iter().zip([&esp, &ed]).chain([
            (&ENCRYPTION_PUBLIC_KEY, &encryption),
            (&ATTESTATION_PUBLIC_KEY, &attestation),
        ]) {
            public_key_file(&data_dir.join(name), k)?;
        }
        Ok(Self {
            esp,
            ed,
            encryption,
            attestation,
        })
    }

    /// The `ueid` of the TAM's Evidence about itself: type RAND (0x01) and the thumbprint
    /// of its P-256 TEEP key, so it is stable for the life of that key and known before
    /// the TAM first runs.
    fn ueid(&self) -> Vec<u8> {
        [&[1u8][..], &self.esp.public_key().thumbprint()].concat()
    }
}

fn identity(args: &IdentityArgs) -> Result<ExitCode> {
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let keys = Keys::open(&data_dir)?;
    let ueid = hex::encode(keys.ueid());
    let described = |k: &PrivateKey| {
        serde_json::json!({
            "pem": k.public_key().to_pem(),
            "thumbprint": hex::encode(k.public_key().thumbprint()),
        })
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        let id = serde_json::json!({
            "ueid": ueid,
            "teep_keys": [described(&keys.esp), described(&keys.ed)],
            "attestation_key": described(&keys.attestation),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&id)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "ueid: {ueid}")?;
    for (name, k) in [
        ("teep key (P-256)", &keys.esp),
        ("teep key (Ed25519)", &keys.ed),
    ] {
        writeln!(
            out,
            "{name} thumbprint: {}",
            hex::encode(k.public_key().thumbprint())
        )?;
    }
    writeln!(
        out,
        "attestation key ({}):\n{}",
        data_dir.join(ATTESTATION_PUBLIC_KEY).display(),
        keys.attestation.public_key().to_pem().trim_end()
    )?;
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> Result<ExitCode> {
    let settings = args.resolve()?;
    let data_dir = &settings.data_dir;
    let keys = Keys::open(data_dir)?;
    let (esp, ed, encryption) = (&keys.esp, &keys.ed, &keys.encryption);
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
            Appraisal::Remote(
                teep_verifier::Client::new(url.as_str(), token, verifier_http(*timeout)?)
                    .context("the remote Verifier's client")?,
            )
        }
    };
    let own = settings
        .self_attestation
        .as_ref()
        .map(|a| own_attestation(a, &keys))
        .transpose()?;
    let self_attestation = || {
        own.as_ref().map(|(source, _)| SelfAttestation {
            source: Box::new(source.clone()),
            up_front: settings
                .self_attestation
                .as_ref()
                .is_some_and(|a| a.up_front),
        })
    };
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
            vec![signer(esp)?, signer(ed)?],
            self_attestation(),
        ),
        // Older Agents offer only COSE_Sign1 with ES256 (`[[18, -7]]`): the same P-256 key
        // under the polymorphic id they know.
        pre26: match &settings.pre26_path {
            Some(path) => Some((
                path.clone(),
                engine(
                    Numbering::Pre26,
                    vec![provider.signer(esp, Algorithm::Es256)?],
                    self_attestation(),
                ),
            )),
            None => None,
        },
    };
    tokio::runtime::Runtime::new()?.block_on(async {
        // Keeps the TAM's own result current; request handlers only read what it got.
        if let Some((_, Some(remote))) = own {
            tokio::spawn(async move { remote.run(teep_verifier::now).await });
        }
        match appraiser {
            Appraisal::InProcess(a) => serve_with(&settings, tams, *a, server_config).await,
            Appraisal::Remote(a) => serve_with(&settings, tams, a, server_config).await,
        }
    })
}

/// The TAM's own Attestation Result as configured, and the source to keep current in the
/// background when it comes from a remote Verifier.
type Own = (
    Arc<dyn OwnAttestation>,
    Option<Arc<RemoteAttestation<teep_verifier::Client>>>,
);

fn own_attestation(a: &SelfAttestationSetting, keys: &Keys) -> Result<Own> {
    let provider = default_provider();
    let mut verifiers = TrustStore::new();
    verifiers.add_key(public_key(&a.verifier_key)?);
    let check = EarCheck {
        provider,
        verifiers,
        tam_keys: vec![keys.esp.public_key().clone(), keys.ed.public_key().clone()],
        max_age: a.max_age,
    };
    match &a.source {
        OwnSource::File(path) => {
            tracing::info!(result = %path.display(), up_front = a.up_front, "TAM attests itself with an Attestation Result from a file");
            Ok((Arc::new(FileAttestation::new(path.clone(), check)), None))
        }
        OwnSource::Remote {
            url,
            token,
            claims,
            timeout,
        } => {
            let text = String::from_utf8(crate::input::read(claims)?).with_context(|| {
                format!("attestation claims {} are not UTF-8", claims.display())
            })?;
            let claims = EatClaims::from_json(&text)
                .with_context(|| format!("attestation claims {}", claims.display()))?;
            let claims = EatClaims {
                ueid: Some(keys.ueid()),
                ..claims
            };
            let client = teep_verifier::Client::new(url.as_str(), token, verifier_http(*timeout)?)
                .context("the attestation Verifier's client")?;
            let remote = Arc::new(RemoteAttestation::new(
                client,
                provider.signer(&keys.attestation, keys.attestation.default_algorithm())?,
                claims,
                keys.esp.public_key().clone(),
                check,
            ));
            tracing::info!(verifier = %url, up_front = a.up_front, "TAM attests itself to a remote Verifier");
            Ok((remote.clone(), Some(remote)))
        }
    }
}

/// The HTTP client for a remote Verifier: `timeout` per request, no redirects.
fn verifier_http(timeout: Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the Verifier's HTTP client")
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
    writeln!(
        out,
        "attestation key (for the Verifier, see teep tam identity): {}",
        data_dir.join(ATTESTATION_PUBLIC_KEY).display()
    )?;
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
