//! `teep device`: the REE side of a device as a process (`run`: the TEEP Broker, reaching
//! the TEE process over its Unix socket, serving apps the local API and running policy
//! checks), and the app-side commands that talk to that local API.
//!
//! A component ID on the command line is its canonical text form, the same everywhere in
//! teep (docs/wire-format.md): each segment `/`-prefixed and percent-encoded,
//! `/TEEP-Device/app/ta`, `/%00/hello.wasm`; or the local API's JSON form, an array of hex
//! strings: `["00", "68656c6c6f2e7761736d"]`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use teep_broker::ipc::{self, IpcAgent, IpcConfig};
use teep_broker::{
    Agent, Broker, BrokerConfig, Capture, ComponentId, HttpConfig, PlainHttp, TaInfo, TaRequest,
    local_api,
};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::print_line;
use crate::tam::shutdown_signal;

/// The socket files in the state directory.
pub(crate) const TEE_SOCKET: &str = "tee.sock";
const API_SOCKET: &str = "broker.sock";

#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Run the Broker until Ctrl-C or SIGTERM (or, with --once, for one policy check).
    Run(RunArgs),
    /// Ask the TEE for a TA (RequestTA) and run the exchange with the TAM it asks for.
    Request(RequestArgs),
    /// Tell the TEE a TA is no longer needed (UnrequestTA) and run the exchange.
    Unrequest(IdArgs),
    /// List the TAs installed in the TEE.
    List(ListArgs),
    /// Run an installed TA on some input and print its output.
    Invoke(InvokeArgs),
    /// Print the TEE's public identity (ueid, TEEP, attestation and decryption keys) and
    /// claims, as `teep tee serve` wrote it: what the TAM operator and the Verifier need.
    Identity(IdentityArgs),
}

#[derive(clap::Args)]
pub(crate) struct IdentityArgs {
    /// The TEE's state directory (as given to `teep tee serve`).
    #[arg(long, env = "TEEP_TEE_DIR")]
    tee_dir: Option<PathBuf>,
    /// Print the JSON (else a summary, with the attestation key's PEM).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct StateDir {
    /// The device's state directory (sockets live there). Default:
    /// `$XDG_DATA_HOME/teep/device`, else `~/.local/share/teep/device`.
    #[arg(long, env = "TEEP_DEVICE_DIR")]
    state_dir: Option<PathBuf>,
}

impl StateDir {
    fn resolve(&self) -> Result<PathBuf> {
        match &self.state_dir {
            Some(dir) => Ok(dir.clone()),
            None => Ok(data_dir()?.join("device")),
        }
    }
}

/// Where the device's processes keep their state by default: `$XDG_DATA_HOME/teep`, else
/// `~/.local/share/teep` (`device/` for the Broker, `tee/` for the software TEE).
pub(crate) fn data_dir() -> Result<PathBuf> {
    // XDG: a relative XDG_DATA_HOME is invalid and ignored.
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        })
        .context("no data directory: give --state-dir, or set XDG_DATA_HOME or HOME")?;
    Ok(data.join("teep"))
}

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The device's TAM: the hint given to the TEE in RequestTA when an app names none (the
    /// TEE decides which TAM is contacted).
    #[arg(long)]
    tam: Option<String>,
    #[command(flatten)]
    state: StateDir,
    /// The TEE process's socket. Default: `tee.sock` in the state directory.
    #[arg(long)]
    tee_socket: Option<PathBuf>,
    /// Run one policy check (RequestPolicyCheck until the TEE has nothing more) and exit:
    /// 0 when every TAM it asked for was reached, 1 when some were not.
    #[arg(long)]
    once: bool,
    /// Seconds between two policy checks (the first runs at start).
    #[arg(long, default_value_t = 300, conflicts_with = "once")]
    interval: u64,
    /// The local API's Unix socket (mode 0600). Default: `broker.sock` in the state directory.
    #[arg(long, conflicts_with = "once")]
    api_socket: Option<PathBuf>,
    /// Serve the local API on this loopback TCP address instead (e.g. `127.0.0.1:7878`):
    /// any local user can reach it.
    #[arg(long, conflicts_with_all = ["api_socket", "once"])]
    api_listen: Option<String>,
    /// Accept `http://` TAM URIs (TEEP's messages are signed end to end, but the exchange
    /// is then visible and may be cut); by default only `https://`.
    #[arg(long)]
    allow_plain_http: bool,
    /// Also trust these CA certificates (PEM, one or more) for the TAMs' HTTPS server
    /// certificates, beside the platform's roots: for a TAM with a private CA; repeatable.
    #[arg(long, value_name = "CERTFILE")]
    tam_ca: Vec<PathBuf>,
    /// The TAMs are older ones (pre-26 drafts): also accept their answers' media type
    /// `application/teep+cose` (the TEE is configured with `teep tee serve --numbering
    /// pre-26`). Off: only `application/teep+cbor`.
    #[arg(long)]
    pre26: bool,
    /// Passport model: the Verifier (`teep verifier serve`, e.g. `http://127.0.0.1:8400`)
    /// that appraises the TEE's Evidence; its Attestation Result goes to the TEE, which
    /// presents it to TAMs (`teep tee serve --attestation passport`). Fetched before every
    /// policy check.
    #[arg(long, requires = "verifier_token")]
    verifier: Option<String>,
    /// The device's bearer token at that Verifier.
    #[arg(long, env = "TEEP_DEVICE_VERIFIER_TOKEN", hide_env_values = true)]
    verifier_token: Option<String>,
    /// Write every TEEP/HTTP body exchanged with the TAMs, in order, to DIR (numbered
    /// files and `index.jsonl`; owner-only; continued if DIR holds a capture), for `teep
    /// trace --capture DIR`. It holds no TEE secret, but it names the device.
    #[arg(long, value_name = "DIR")]
    capture: Option<PathBuf>,
}

/// Passport model: a challenge from the Verifier, Evidence over it from the TEE, the
/// Verifier's Attestation Result back to the TEE (which checks it before keeping it).
async fn refresh_passport<A: Agent>(agent: &A, verifier: &teep_verifier::Client) -> Result<()> {
    use teep_verifier::Appraiser as _;
    let now = teep_verifier::now();
    let challenge = verifier
        .challenge(now)
        .await
        .context("the Verifier's challenge")?;
    let evidence = agent
        .passport_evidence(challenge.nonce)
        .await
        .context("passport Evidence from the TEE")?;
    let ear = verifier
        .appraise(&evidence, now)
        .await
        .context("the Verifier's appraisal")?;
    agent
        .store_passport(ear)
        .await
        .context("the TEE refused the Attestation Result")?;
    info!("passport: the TEE keeps a fresh Attestation Result");
    Ok(())
}

/// [`refresh_passport`], failures logged only: the policy check goes on without it.
async fn try_refresh_passport<A: Agent>(agent: &A, verifier: Option<&teep_verifier::Client>) {
    if let Some(verifier) = verifier
        && let Err(e) = refresh_passport(agent, verifier).await
    {
        warn!(
            error = format!("{e:#}"),
            "passport: no fresh Attestation Result"
        );
    }
}

/// Where the app-side commands find the Broker.
#[derive(clap::Args)]
struct Api {
    #[command(flatten)]
    state: StateDir,
    /// The Broker's local API socket. Default: `broker.sock` in the state directory.
    #[arg(long)]
    api_socket: Option<PathBuf>,
    /// The Broker's local API on loopback TCP instead, e.g. `http://127.0.0.1:7878`.
    #[arg(long, conflicts_with = "api_socket")]
    api_url: Option<String>,
}

#[derive(clap::Args)]
pub(crate) struct RequestArgs {
    /// The TA's component ID (see `teep device --help`).
    id: String,
    /// A TAM URI hint for the TEE (default: the Broker's --tam).
    #[arg(long)]
    tam: Option<String>,
    #[command(flatten)]
    api: Api,
}

#[derive(clap::Args)]
pub(crate) struct IdArgs {
    /// The TA's component ID.
    id: String,
    #[command(flatten)]
    api: Api,
}

#[derive(clap::Args)]
pub(crate) struct ListArgs {
    /// Print the local API's JSON (component IDs as arrays of hex strings).
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    api: Api,
}

#[derive(clap::Args)]
pub(crate) struct InvokeArgs {
    /// The TA's component ID.
    id: String,
    /// The input, as text.
    #[arg(long, required_unless_present = "input_hex")]
    input: Option<String>,
    /// The input, as hex.
    #[arg(long, conflicts_with = "input")]
    input_hex: Option<String>,
    /// Print the output as hex (by default it is printed as text, and output that is not
    /// UTF-8 is an error).
    #[arg(long)]
    hex: bool,
    #[command(flatten)]
    api: Api,
}

pub(crate) fn run(cmd: Command) -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    match cmd {
        Command::Run(args) => runtime.block_on(run_broker(args)),
        Command::Request(args) => runtime.block_on(request(args)),
        Command::Unrequest(args) => runtime.block_on(unrequest(args)),
        Command::List(args) => runtime.block_on(list(args)),
        Command::Invoke(args) => runtime.block_on(invoke(args)),
        Command::Identity(args) => identity(&args),
    }
}

fn identity(args: &IdentityArgs) -> Result<ExitCode> {
    let path = crate::tee::tee_dir(args.tee_dir.as_deref())?.join(crate::tee::IDENTITY_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (has `teep tee serve` run?)", path.display()))?;
    let id: Value = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    if args.json {
        print_line(&serde_json::to_string_pretty(&id)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let field = |pointer: &str| {
        id.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    print_line(&format!("ueid: {}", field("/ueid")))?;
    for key in ["teep_key", "attestation_key", "decryption_key"] {
        print_line(&format!(
            "{key} thumbprint: {}",
            field(&format!("/{key}/thumbprint"))
        ))?;
    }
    print_line(&format!(
        "attestation key:\n{}",
        field("/attestation_key/pem").trim_end()
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// The DER certificates of every `--tam-ca` file (each must hold at least one).
fn tam_ca_roots(files: &[PathBuf]) -> Result<Vec<Vec<u8>>> {
    let mut roots = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        roots.extend(
            teep_cose::certificates_from_pem(&text)
                .with_context(|| format!("--tam-ca {}", file.display()))?,
        );
    }
    Ok(roots)
}

/// Makes the state directory, owner-only when this creates it.
fn create_state_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

async fn run_broker(args: RunArgs) -> Result<ExitCode> {
    let state_dir = args.state.resolve()?;
    create_state_dir(&state_dir)?;
    let tee_socket = args
        .tee_socket
        .clone()
        .unwrap_or_else(|| state_dir.join(TEE_SOCKET));
    let cfg = BrokerConfig {
        http: HttpConfig {
            plain_http: if args.allow_plain_http {
                PlainHttp::Allow
            } else {
                PlainHttp::Refuse
            },
            accept_teep_cose: args.pre26,
            extra_roots_der: tam_ca_roots(&args.tam_ca)?,
            capture: args
                .capture
                .as_deref()
                .map(|dir| {
                    Capture::open(dir).with_context(|| format!("--capture {}", dir.display()))
                })
                .transpose()?,
            ..HttpConfig::default()
        },
        policy_check_interval: Duration::from_secs(args.interval.max(1)),
        default_tam_uri: args.tam.clone(),
        ..BrokerConfig::default()
    };
    let agent = IpcAgent::new(&tee_socket, IpcConfig::default());
    let broker = Arc::new(Broker::new(agent, cfg).context("building the TEEP/HTTP client")?);
    let verifier = match (&args.verifier, &args.verifier_token) {
        (Some(url), Some(token)) => {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .context("building the Verifier's HTTP client")?;
            Some(
                teep_verifier::Client::new(url.as_str(), token, http)
                    .context("the Verifier's client")?,
            )
        }
        _ => None,
    };
    let stop = shutdown_signal()?;
    info!(tee = %tee_socket.display(), tam = ?args.tam, passport = verifier.is_some(), "broker starts");
    if args.once {
        try_refresh_passport(broker.agent(), verifier.as_ref()).await;
        let report = tokio::select! {
            report = broker.policy_check() => report.context("policy check")?,
            () = stop => bail!("interrupted"),
        };
        info!(
            completed = report.completed,
            failed = report.failed,
            "policy check done"
        );
        print_line(&format!(
            "policy check: {} TAM exchange(s) completed, {} TAM(s) not reached",
            report.completed, report.failed
        ))?;
        return Ok(if report.failed == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }

    let (stopping, stopped) = watch::channel(false);
    let wait = move || {
        let mut stopped = stopped.clone();
        async move {
            let _ = stopped.wait_for(|s| *s).await;
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "state directory: {}", state_dir.display())?;
    writeln!(out, "tee socket: {}", tee_socket.display())?;
    let (api, _socket_file) = match &args.api_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?;
            writeln!(out, "api listening on http://{}", listener.local_addr()?)?;
            let server = local_api::serve_loopback_until(Arc::clone(&broker), listener, wait());
            (tokio::spawn(server), None)
        }
        None => {
            let path = args
                .api_socket
                .clone()
                .unwrap_or_else(|| state_dir.join(API_SOCKET));
            let (listener, file) =
                ipc::bind(&path).with_context(|| format!("binding {}", path.display()))?;
            writeln!(out, "api socket: {}", path.display())?;
            let server = local_api::serve_unix_until(Arc::clone(&broker), listener, wait());
            (tokio::spawn(server), Some(file))
        }
    };
    writeln!(out, "policy checks every {} s", args.interval.max(1))?;
    out.flush()?;
    drop(out);
    let signal = async move {
        stop.await;
        let _ = stopping.send(true);
    };
    // The passport is renewed on the policy checks' interval, the first time before the first.
    try_refresh_passport(broker.agent(), verifier.as_ref()).await;
    let passport = {
        let broker = Arc::clone(&broker);
        let interval = Duration::from_secs(args.interval.max(1));
        let stopped = wait();
        async move {
            if verifier.is_none() {
                return;
            }
            tokio::pin!(stopped);
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = &mut stopped => return,
                }
                try_refresh_passport(broker.agent(), verifier.as_ref()).await;
            }
        }
    };
    let ((), (), (), served) =
        tokio::join!(broker.run_policy_checks(wait()), signal, passport, api);
    served
        .context("local API task")?
        .context("serving the local API")?;
    info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Parses a component ID: its canonical text form (`/TEEP-Device/app/ta`, percent-encoded
/// segments; docs/wire-format.md) or, as the local API prints it, a JSON array of hex
/// strings.
fn parse_component_id(text: &str) -> Result<ComponentId> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text)
            .with_context(|| format!("component ID {text}: not a JSON array of hex strings"));
    }
    if text.is_empty() {
        bail!("empty component ID");
    }
    text.parse()
        .with_context(|| format!("component ID {text:?}"))
}

impl Api {
    /// A client of the local API and the base URL to put paths on.
    fn client(&self) -> Result<(reqwest::Client, String)> {
        let builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        if let Some(url) = &self.api_url {
            return Ok((builder.build()?, url.trim_end_matches('/').to_owned()));
        }
        let socket = match &self.api_socket {
            Some(path) => path.clone(),
            None => self.state.resolve()?.join(API_SOCKET),
        };
        Ok((
            builder.unix_socket(socket).build()?,
            "http://broker".to_owned(),
        ))
    }

    /// One local API call; an error answer becomes an error naming its kind.
    async fn call<T: DeserializeOwned>(&self, path: &str, body: Option<Value>) -> Result<T> {
        let (client, base) = self.client()?;
        let url = format!("{base}{path}");
        let request = match body {
            Some(body) => client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&body)?),
            None => client.get(&url),
        };
        let response = request.send().await.with_context(|| {
            format!("reaching the Broker ({url}); is `teep device run` running?")
        })?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            let e: ApiError = serde_json::from_slice(&body)
                .with_context(|| format!("the Broker answered {status}"))?;
            bail!("the Broker answered {status}: {}: {}", e.error, e.detail);
        }
        serde_json::from_slice(&body)
            .with_context(|| format!("the Broker's answer to {path} is not what was expected"))
    }
}

/// The local API's error answer.
#[derive(Deserialize)]
struct ApiError {
    error: String,
    #[serde(default)]
    detail: String,
}

/// The local API's answer to request and unrequest.
#[derive(Deserialize)]
struct Outcome {
    outcome: String,
    exchanges: usize,
}

#[derive(Deserialize)]
struct TaList {
    tas: Vec<TaInfo>,
}

#[derive(Deserialize)]
struct Invoked {
    /// Base64.
    output: String,
}

fn print_outcome(what: &str, id: &ComponentId, answer: &Outcome) -> Result<ExitCode> {
    let line = match answer.outcome.as_str() {
        "completed" => format!(
            "{what} {id}: completed ({} TAM exchange(s))",
            answer.exchanges
        ),
        _ => format!("{what} {id}: nothing to do"),
    };
    print_line(&line)?;
    Ok(ExitCode::SUCCESS)
}

async fn request(args: RequestArgs) -> Result<ExitCode> {
    let id = parse_component_id(&args.id)?;
    let body = serde_json::to_value(TaRequest {
        component_id: id.clone(),
        tam_uri: args.tam,
    })?;
    let answer = args.api.call("/v1/tas/request", Some(body)).await?;
    print_outcome("requested", &id, &answer)
}

async fn unrequest(args: IdArgs) -> Result<ExitCode> {
    let id = parse_component_id(&args.id)?;
    let answer = args
        .api
        .call("/v1/tas/unrequest", Some(json!({ "component_id": id })))
        .await?;
    print_outcome("unrequested", &id, &answer)
}

async fn list(args: ListArgs) -> Result<ExitCode> {
    let TaList { tas } = args.api.call("/v1/tas", None).await?;
    if args.json {
        print_line(&serde_json::to_string_pretty(&tas)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for ta in &tas {
        let id = ta.component_id.to_string();
        match ta.sequence_number {
            Some(n) => print_line(&format!("{id}\tsequence {n}"))?,
            None => print_line(&id)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn invoke(args: InvokeArgs) -> Result<ExitCode> {
    let id = parse_component_id(&args.id)?;
    let input = match (&args.input, &args.input_hex) {
        (_, Some(h)) => hex::decode(h).context("--input-hex is not hex")?,
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, None) => bail!("--input or --input-hex is required"),
    };
    let body = json!({ "component_id": id, "input": BASE64.encode(input) });
    let answer: Invoked = args.api.call("/v1/tas/invoke", Some(body)).await?;
    let output = BASE64
        .decode(answer.output)
        .context("the Broker's output is not base64")?;
    if args.hex {
        print_line(&hex::encode(output))?;
    } else {
        let text = String::from_utf8(output)
            .map_err(|_| anyhow::anyhow!("the TA's output is not UTF-8 text; use --hex"))?;
        print_line(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_ids_round_trip_through_their_text() {
        for (text, segments) in [
            ("/ta.wasm", vec![b"ta.wasm".to_vec()]),
            ("/%00/hello.wasm", vec![vec![0], b"hello.wasm".to_vec()]),
            ("/a/", vec![b"a".to_vec(), vec![]]),
            ("/%2F/hex%3Ax", vec![b"/".to_vec(), b"hex:x".to_vec()]),
        ] {
            let id = parse_component_id(text).unwrap();
            assert_eq!(id.0, segments, "{text}");
            assert_eq!(id.to_string(), text);
        }
        let json = parse_component_id(r#"["00", "7461"]"#).unwrap();
        assert_eq!(json.0, [vec![0], b"ta".to_vec()]);
        assert_eq!(json.to_string(), "/%00/ta");
        for bad in ["", "hex:zz", "ta.wasm", "/%ff", "[\"zz\"]", "[1]"] {
            assert!(parse_component_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tam_ca_files_give_their_certificates_and_refuse_files_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["tam.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, format!("{}{}", cert.pem(), cert.pem())).unwrap();
        let roots = tam_ca_roots(std::slice::from_ref(&ca)).unwrap();
        assert_eq!(roots, vec![cert.der().to_vec(); 2]);
        // A key is not a certificate; a missing file is an error too.
        let not_cert = dir.path().join("key.pem");
        std::fs::write(&not_cert, key.serialize_pem()).unwrap();
        assert!(tam_ca_roots(&[not_cert]).is_err());
        assert!(tam_ca_roots(&[dir.path().join("missing.pem")]).is_err());
    }
}
