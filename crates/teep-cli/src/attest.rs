//! `teep attest` (make and appraise EAT Evidence) and `teep verifier` (the HTTP Verifier).
//! Formats of the policy and claims files: docs/verifier-policy.md.
use std::fs;
use std::io::Write as _;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use teep_attest::{
    Cnf, Context, EatClaims, Freshness, Policy, SeenEvidence, Status, Verifier, VerifierId,
    claims::TEEP_EAT_PROFILE, sign_evidence,
};
use teep_cose::default_provider;

use crate::input::{private_key, public_key, read};

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Build TEEP EAT Evidence from a JSON claims file and sign it with the attestation key
    /// (untagged COSE_Sign1, kid = key thumbprint; manifest bodies bstr-wrapped, RFC 9711).
    Evidence {
        /// Attestation private key (COSE_Key or PEM).
        #[arg(long)]
        key: PathBuf,
        /// The challenge, in hex: becomes eat_nonce. Without it the Evidence carries no
        /// nonce and is fresh by its iat (the timestamp mechanism).
        #[arg(long)]
        nonce: Option<String>,
        /// Claims file (JSON).
        #[arg(long)]
        claims: PathBuf,
        /// Bind the Evidence to this TEEP Agent public key (see --cnf-form).
        #[arg(long)]
        cnf_key: Option<PathBuf>,
        /// How cnf names the --cnf-key: its thumbprint (the TAM already knows the key) or
        /// the whole COSE_Key (first contact: the TAM verifies the QueryResponse with it).
        #[arg(long, value_enum, default_value = "kid")]
        cnf_form: CnfForm,
        #[arg(long)]
        out: PathBuf,
    },
    /// Appraise Evidence against a policy; print the EAR as JSON (the findings go to stderr).
    /// Exit status 0 when affirming, 1 otherwise.
    Verify {
        /// Policy file (JSON).
        #[arg(long)]
        policy: PathBuf,
        /// The challenge the Evidence must carry (hex). Without it, freshness is by iat
        /// within the policy's window.
        #[arg(long)]
        nonce: Option<String>,
        /// The TEEP Agent key that signed the message carrying the Evidence: cnf must name it.
        #[arg(long)]
        teep_key: Option<PathBuf>,
        /// Also sign the EAR with this Verifier key (COSE_Key or PEM) and write it (COSE_Sign1)
        /// to --ear-out: e.g. the TAM's own Attestation Result for `teep tam serve
        /// --attestation-result`. Written only when affirming.
        #[arg(long, requires = "ear_out")]
        sign_key: Option<PathBuf>,
        /// Where --sign-key writes the signed EAR.
        #[arg(long, requires = "sign_key")]
        ear_out: Option<PathBuf>,
        evidence: PathBuf,
    },
}

/// The two forms of `cnf` (RFC 8747) the TEEP EAT profile uses.
#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum CnfForm {
    /// `{3: kid}`, the RFC 9679 thumbprint.
    Kid,
    /// `{1: COSE_Key}`.
    CoseKey,
}

#[derive(clap::Subcommand)]
pub(crate) enum VerifierCommand {
    /// Serve the challenge/verify API (POST /challenge, POST /verify) to the relying parties
    /// of the tokens file; prints the address.
    Serve {
        /// Policy file (JSON).
        #[arg(long)]
        policy: PathBuf,
        /// The Verifier's signing key for EARs (COSE_Key or PEM).
        #[arg(long)]
        key: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8400")]
        listen: String,
        /// Relying parties and their bearer tokens, `NAME TOKEN` per line. Default: KEY.tokens
        /// beside the key, created with one generated token on first start.
        #[arg(long)]
        tokens: Option<PathBuf>,
        /// Challenges one relying party may have outstanding; more evict its oldest.
        #[arg(long, default_value_t = teep_verifier::DEFAULT_MAX_CHALLENGES)]
        max_challenges: NonZeroUsize,
        /// Requests per second allowed to one relying party, on average.
        #[arg(long, default_value_t = teep_verifier::DEFAULT_RATE)]
        rate: NonZeroU32,
        /// Requests one relying party may send back to back.
        #[arg(long, default_value_t = teep_verifier::DEFAULT_BURST)]
        burst: NonZeroU32,
    },
}

pub(crate) fn load_policy(path: &Path) -> Result<Policy> {
    let text = String::from_utf8(read(path)?).context("policy is not UTF-8")?;
    Policy::from_json(&text).with_context(|| format!("policy {}", path.display()))
}

pub(crate) fn verifier_id() -> VerifierId {
    VerifierId {
        developer: "teep".into(),
        build: concat!("teep ", env!("CARGO_PKG_VERSION")).into(),
    }
}

pub(crate) fn run(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Evidence {
            key,
            nonce,
            claims,
            cnf_key,
            cnf_form,
            out,
        } => {
            let text = String::from_utf8(read(&claims)?).context("claims file is not UTF-8")?;
            let mut c = EatClaims::from_json(&text)
                .with_context(|| format!("claims {}", claims.display()))?;
            c.nonce = nonce
                .map(|n| hex::decode(n.trim()))
                .transpose()
                .context("--nonce is not hex")?;
            c.profile.get_or_insert_with(|| TEEP_EAT_PROFILE.into());
            c.iat.get_or_insert(i64::try_from(teep_verifier::now())?);
            if let Some(path) = cnf_key {
                let agent = public_key(&path)?;
                c.cnf = Some(match cnf_form {
                    CnfForm::Kid => Cnf::Kid(agent.thumbprint().to_vec()),
                    CnfForm::CoseKey => Cnf::CoseKey(agent.to_cose_key_bytes()),
                });
            }
            let key = private_key(&key)?;
            let signer = default_provider().signer(&key, key.default_algorithm())?;
            let evidence = sign_evidence(&c, signer.as_ref())?;
            fs::write(&out, evidence).with_context(|| format!("writing {}", out.display()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            policy,
            nonce,
            teep_key,
            sign_key,
            ear_out,
            evidence,
        } => {
            let verifier = Verifier::new(load_policy(&policy)?, verifier_id());
            let evidence = read(&evidence)?;
            let nonce = nonce
                .map(|n| hex::decode(n.trim()))
                .transpose()
                .context("--nonce is not hex")?;
            let teep_key = teep_key.map(|p| public_key(&p)).transpose()?;
            let mut seen = SeenEvidence::new();
            let freshness = match &nonce {
                Some(n) => Freshness::Nonce(n.as_slice()),
                None => Freshness::Timestamp(&mut seen),
            };
            let mut cx = Context {
                now: teep_verifier::now(),
                freshness,
                teep_key: teep_key.as_ref(),
            };
            let outcome = verifier.appraise(default_provider(), &evidence, &mut cx);
            for finding in &outcome.findings {
                eprintln!("finding: {finding}");
            }
            let mut stdout = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut stdout, &outcome.ear.to_json())?;
            writeln!(stdout)?;
            if let (Some(key), Some(out), Status::Affirming) = (sign_key, ear_out, outcome.status())
            {
                let key = private_key(&key)?;
                let signer = default_provider().signer(&key, key.default_algorithm())?;
                let signed = teep_attest::sign_ear(&outcome.ear, signer.as_ref())?;
                fs::write(&out, signed).with_context(|| format!("writing {}", out.display()))?;
            }
            Ok(if outcome.status() == Status::Affirming {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

pub(crate) fn run_verifier(cmd: VerifierCommand) -> Result<ExitCode> {
    match cmd {
        VerifierCommand::Serve {
            policy,
            key,
            listen,
            tokens,
            max_challenges,
            rate,
            burst,
        } => {
            let verifier = Verifier::new(load_policy(&policy)?, verifier_id());
            let provider = default_provider();
            let relying_parties = relying_parties(tokens, &key, provider)?;
            let key = private_key(&key)?;
            let signer = provider.signer(&key, key.default_algorithm())?;
            let config = teep_verifier::Config {
                max_challenges,
                rate: teep_verifier::RateLimit::per_second(rate, burst),
                ..teep_verifier::Config::new(relying_parties)
            };
            let service = Arc::new(teep_verifier::Service::new(
                teep_attest::SigningVerifier::new(verifier, signer, provider),
                config,
            ));
            tokio::runtime::Runtime::new()?.block_on(async {
                // Before the socket exists: a signal that comes early is not lost.
                let stop = crate::tam::shutdown_signal()?;
                let listener = tokio::net::TcpListener::bind(&listen)
                    .await
                    .with_context(|| format!("listening on {listen}"))?;
                let mut stdout = std::io::stdout().lock();
                writeln!(stdout, "listening on http://{}", listener.local_addr()?)?;
                stdout.flush()?;
                drop(stdout);
                teep_verifier::serve_until(listener, service, stop).await?;
                tracing::info!("stopped");
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

/// The relying parties from `--tokens`, or from `KEY.tokens`, which is created on first
/// start with one generated token (readable by the owner only). The token is never printed:
/// where it is, is.
fn relying_parties(
    tokens: Option<PathBuf>,
    key: &Path,
    provider: &'static dyn teep_cose::CryptoProvider,
) -> Result<teep_verifier::RelyingParties> {
    let path = match tokens {
        Some(path) => path,
        None => {
            let mut path = key.as_os_str().to_owned();
            path.push(".tokens");
            let path = PathBuf::from(path);
            if !path.exists() {
                write_secret(&path, teep_verifier::new_tokens_file(provider)?.as_bytes())?;
                eprintln!(
                    "generated a bearer token for relying party \"default\" in {}",
                    path.display()
                );
            }
            path
        }
    };
    let text = String::from_utf8(read(&path)?).context("tokens file is not UTF-8")?;
    teep_verifier::RelyingParties::parse(&text)
        .with_context(|| format!("tokens file {}", path.display()))
}

/// Creates `path` (never overwriting) with owner-only permissions where the OS has them.
pub(crate) fn write_secret(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}
