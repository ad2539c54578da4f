//! `teep tam tc|policy|devices|device|signer|audit`: clients of the TAM's admin API (JSON
//! over HTTP, bearer token), and the admin listener `teep tam serve` starts.
//!
//! Component IDs are written in their canonical text form, as the admin API writes them
//! (docs/wire-format.md): `/TEEP-Device/app/suit`, each segment percent-encoded.
//! The token comes from `--admin-token`, else `TEEP_TAM_ADMIN_TOKEN`, else the data
//! directory's token file, which `teep tam serve` creates (owner-only) on first start.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use teep_cose::CryptoProvider;
use teep_tam::admin::{
    Admin, AuditLine, DEVICES_PAGE_MAX, DeviceInfo, DeviceRef, DeviceRegistration, PolicyList,
    SignerBody, TcInfo,
};
use teep_tam::metrics::Metrics;
use teep_tam::store::AdminStore;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::attest::write_secret;
use crate::input::{public_key, read};
use crate::print_line;

/// The admin token's file in the data directory.
pub(crate) const TOKEN_FILE: &str = "admin.token";

/// Where the admin API is and how to authenticate (every admin command takes these).
#[derive(clap::Args)]
pub(crate) struct Conn {
    /// The TAM's admin API.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8481")]
    admin_url: String,
    /// The bearer token (default: `TEEP_TAM_ADMIN_TOKEN`, else DATA_DIR/admin.token).
    #[arg(
        long,
        global = true,
        env = "TEEP_TAM_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,
    /// The TAM's data directory, to read the token file from.
    #[arg(long, global = true, default_value = "teep-tam")]
    data_dir: PathBuf,
}

/// The admin commands, beside `teep tam serve`.
#[derive(clap::Subcommand)]
pub(crate) enum Command {
    /// Trusted Components: upload, list, revoke.
    Tc {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: TcCommand,
    },
    /// Which TCs a device class or a device gets.
    Policy {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: PolicyCommand,
    },
    /// List the known devices with their TCs, last attestation, reports and contact.
    Devices {
        #[command(flatten)]
        conn: Conn,
        /// Print the admin API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// One device.
    Device {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: DeviceCommand,
    },
    /// TC-signer trust anchors (whose envelopes `tc add` accepts).
    Signer {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        cmd: SignerCommand,
    },
    /// The audit log (every admin call and what it affected, every device contact),
    /// oldest first.
    Audit {
        #[command(flatten)]
        conn: Conn,
        /// Entries to skip.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Entries to show (the API gives at most 1000).
        #[arg(long, default_value_t = 100)]
        limit: u64,
        /// Print the admin API's JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Subcommand)]
pub(crate) enum TcCommand {
    /// Upload a signed SUIT envelope (a new TC, or a later version of one).
    Add { file: PathBuf },
    /// List TCs and their versions.
    List {
        /// Print the admin API's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke every version of a TC: devices unlink it at their next contact.
    Revoke { manifest_id: String },
}

#[derive(clap::Subcommand)]
pub(crate) enum PolicyCommand {
    /// Set the TCs of a device class or of one device (replacing what it had).
    Set {
        /// The device class.
        #[arg(long, required_unless_present = "device", conflicts_with = "device")]
        class: Option<String>,
        /// The device id (hex, as `teep tam devices` lists it).
        #[arg(long)]
        device: Option<String>,
        /// A TC to install (manifest ID); repeatable.
        #[arg(long = "tc")]
        tc: Vec<String>,
        /// A TC the device may request; repeatable.
        #[arg(long)]
        requestable: Vec<String>,
    },
    /// Show every policy (JSON).
    Show,
}

#[derive(clap::Subcommand)]
pub(crate) enum DeviceCommand {
    /// Revoke a device: it gets nothing more, whatever its Evidence says.
    Revoke { id: String },
    /// Register a device before its first contact, by its TEEP key (a known device keeps
    /// its key and revocation; only the class and exemption given change). Prints its id.
    Add {
        /// Its TEEP key: `teep device identity --json` output, a public key PEM, or a
        /// COSE_Key (binary or hex).
        #[arg(long)]
        key: PathBuf,
        /// Its device class (the class's policy applies to it).
        #[arg(long)]
        class: Option<String>,
        /// Serve it without attestation (an older Agent that cannot produce Evidence).
        #[arg(long)]
        attestation_exempt: bool,
    },
    /// Set a known device's class.
    Class {
        /// The device id (hex, as `teep tam devices` lists it).
        id: String,
        /// The class.
        class: String,
    },
}

#[derive(clap::Subcommand)]
pub(crate) enum SignerCommand {
    /// Add (or replace) a TC-signer anchor.
    Add {
        /// The anchor's name.
        #[arg(long)]
        name: String,
        /// Its public key (COSE_Key binary or hex, or PEM).
        #[arg(long, required_unless_present = "ca", conflicts_with = "ca")]
        key: Option<PathBuf>,
        /// A CA certificate (PEM) instead: envelopes signed by a leaf whose x5chain
        /// verifies to it are accepted, within the scope.
        #[arg(long)]
        ca: Option<PathBuf>,
        /// A manifest-ID prefix it may write; repeatable (default: everything).
        #[arg(long)]
        scope: Vec<String>,
    },
    /// List the anchors.
    List,
    /// Remove an anchor.
    Remove { name: String },
}

pub(crate) fn run(cmd: Command) -> Result<ExitCode> {
    tokio::runtime::Runtime::new()?.block_on(async {
        match cmd {
            Command::Tc { conn, cmd } => tc(&Client::new(conn)?, cmd).await,
            Command::Policy { conn, cmd } => policy(&Client::new(conn)?, cmd).await,
            Command::Devices { conn, json } => devices(&Client::new(conn)?, json).await,
            Command::Device { conn, cmd } => device(&Client::new(conn)?, cmd).await,
            Command::Signer { conn, cmd } => signer(&Client::new(conn)?, cmd).await,
            Command::Audit {
                conn,
                offset,
                limit,
                json,
            } => audit(&Client::new(conn)?, offset, limit, json).await,
        }?;
        Ok(ExitCode::SUCCESS)
    })
}

/// An admin API client.
struct Client {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Client {
    fn new(conn: Conn) -> Result<Self> {
        let token = match conn.admin_token {
            Some(t) => t,
            None => {
                let path = conn.data_dir.join(TOKEN_FILE);
                let text = fs::read_to_string(&path).with_context(|| {
                    format!(
                        "no --admin-token or TEEP_TAM_ADMIN_TOKEN, and reading {}",
                        path.display()
                    )
                })?;
                text.trim().to_owned()
            }
        };
        Ok(Self {
            http: reqwest::Client::new(),
            url: conn.admin_url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// Sends a request and returns the JSON answer (`Null` for none); a refusal is an
    /// error carrying the API's message.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Value> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("calling the admin API at {}", self.url))?;
        let status = response.status();
        let body = response.bytes().await?;
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            let message = value
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            bail!("admin API: {status}: {message}");
        }
        Ok(value)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(self.http.get(format!("{}{path}", self.url)))
            .await
    }

    async fn send(&self, method: &str, path: &str, body: Value) -> Result<Value> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let request = self.http.request(method, format!("{}{path}", self.url));
        let body = serde_json::to_vec(&body)?;
        self.call(request.header(CONTENT_TYPE, "application/json").body(body))
            .await
    }
}

fn print_json(value: &Value) -> Result<()> {
    print_line(&serde_json::to_string_pretty(value)?)
}

async fn tc(client: &Client, cmd: TcCommand) -> Result<()> {
    match cmd {
        TcCommand::Add { file } => {
            let envelope = read(&file)?;
            let request = client
                .http
                .post(format!("{}/admin/tcs", client.url))
                .header(CONTENT_TYPE, "application/suit-envelope+cose")
                .body(envelope);
            let v = client.call(request).await?;
            let added: teep_tam::admin::TcVersion = serde_json::from_value(v)?;
            print_line(&format!(
                "added {} sequence {}",
                added.manifest_id, added.sequence
            ))
        }
        TcCommand::List { json } => {
            let value = client.get("/admin/tcs").await?;
            if json {
                return print_json(&value);
            }
            let tcs: Vec<TcInfo> = serde_json::from_value(value)?;
            for tc in tcs {
                let sequences: Vec<String> =
                    tc.versions.iter().map(|v| v.sequence.to_string()).collect();
                let revoked = if tc.revoked { " revoked" } else { "" };
                print_line(&format!(
                    "{} versions {}{revoked}",
                    tc.manifest_id,
                    sequences.join(",")
                ))?;
            }
            Ok(())
        }
        TcCommand::Revoke { manifest_id } => {
            let body = json!({ "manifest_id": manifest_id });
            client.send("POST", "/admin/tcs/revoke", body).await?;
            print_line(&format!("revoked {manifest_id}"))
        }
    }
}

async fn policy(client: &Client, cmd: PolicyCommand) -> Result<()> {
    match cmd {
        PolicyCommand::Set {
            class,
            device,
            tc,
            requestable,
        } => {
            let (path, whom) = match (class, device) {
                (Some(c), _) => (format!("/admin/policy/class/{c}"), format!("class {c}")),
                (None, Some(d)) => (format!("/admin/policy/device/{d}"), format!("device {d}")),
                (None, None) => bail!("--class or --device is needed"),
            };
            let body = json!({ "install": tc, "requestable": requestable });
            client.send("PUT", &path, body).await?;
            print_line(&format!("policy of {whom} set"))
        }
        PolicyCommand::Show => {
            let value = client.get("/admin/policy").await?;
            // Checked against the API's type, so a changed API fails here, not in a script.
            let _: PolicyList = serde_json::from_value(value.clone())?;
            print_json(&value)
        }
    }
}

/// Every device, a page of [`DEVICES_PAGE_MAX`] at a time (each page after the last id of
/// the one before): printed as each page comes, or with `--json` as one array at the end.
async fn devices(client: &Client, json: bool) -> Result<()> {
    let mut all = Vec::new();
    let mut after = String::new();
    loop {
        let mut path = format!("/admin/devices?limit={DEVICES_PAGE_MAX}");
        if !after.is_empty() {
            path.push_str("&after=");
            path.push_str(&after);
        }
        let page = client.get(&path).await?;
        let devices: Vec<DeviceInfo> = serde_json::from_value(page.clone())?;
        let full = devices.len() == DEVICES_PAGE_MAX;
        if let Some(last) = devices.last() {
            after.clone_from(&last.id);
        }
        if json {
            all.extend(page.as_array().into_iter().flatten().cloned());
        } else {
            print_devices(devices)?;
        }
        if !full {
            break;
        }
    }
    if json {
        print_json(&Value::Array(all))?;
    }
    Ok(())
}

fn print_devices(devices: Vec<DeviceInfo>) -> Result<()> {
    for d in devices {
        let installed: Vec<String> = d
            .installed
            .iter()
            .map(|(id, seq)| format!("{id}@{seq}"))
            .collect();
        let contact = d
            .last_contact
            .map_or_else(|| "never".into(), |t| t.to_string());
        // Releases it failed to install: manifest ID, digest prefix, failures in a row and
        // the time before which the TAM does not send it again.
        let failed: String = d
            .failed
            .iter()
            .map(|f| {
                let digest = f.digest.get(..16).unwrap_or(&f.digest);
                let (id, n, until) = (&f.manifest_id, f.failures, f.held_until);
                format!(" failed={id}#{digest}x{n}<{until}")
            })
            .collect();
        print_line(&format!(
            "{} class={} revoked={} installed=[{}]{failed} last_contact={contact}",
            d.id,
            d.class.as_deref().unwrap_or("-"),
            d.revoked,
            installed.join(" ")
        ))?;
    }
    Ok(())
}

async fn device(client: &Client, cmd: DeviceCommand) -> Result<()> {
    match cmd {
        DeviceCommand::Revoke { id } => {
            let path = format!("/admin/devices/{id}/revoke");
            client.send("POST", &path, json!({})).await?;
            print_line(&format!("device {id} revoked"))
        }
        DeviceCommand::Add {
            key,
            class,
            attestation_exempt,
        } => {
            let body = DeviceRegistration {
                key: teep_key_pem(&key)?,
                class,
                // Only a flag given changes a known device's exemption.
                attestation_exempt: attestation_exempt.then_some(true),
            };
            let value = client
                .send("POST", "/admin/devices", serde_json::to_value(body)?)
                .await?;
            let added: DeviceRef = serde_json::from_value(value)?;
            let how = if added.created {
                "registered"
            } else {
                "known; updated"
            };
            print_line(&format!("device {} {how}", added.id))
        }
        DeviceCommand::Class { id, class } => {
            let path = format!("/admin/devices/{id}/class");
            client.send("PUT", &path, json!({ "class": class })).await?;
            print_line(&format!("device {id} class {class}"))
        }
    }
}

/// The TEEP key of a `device add --key` file as PEM: the `teep_key` of `teep device
/// identity --json` output, else any public key file `public_key` reads. The summary
/// `teep device identity` prints is refused: the PEM in it is the attestation key, which
/// would register the wrong device.
fn teep_key_pem(path: &Path) -> Result<String> {
    let bytes = read(path)?;
    if let Ok(identity) = serde_json::from_slice::<Value>(&bytes) {
        let pem = identity
            .pointer("/teep_key/pem")
            .and_then(Value::as_str)
            .with_context(|| format!("{}: JSON without teep_key.pem", path.display()))?;
        return Ok(pem.to_owned());
    }
    if std::str::from_utf8(&bytes).is_ok_and(|t| t.contains("teep_key thumbprint:")) {
        bail!(
            "{}: the summary of `teep device identity` names the TEEP key by thumbprint only              (its PEM is the attestation key); give `teep device identity --json` output",
            path.display()
        );
    }
    Ok(public_key(path)?.to_pem())
}

async fn audit(client: &Client, offset: u64, limit: u64, json: bool) -> Result<()> {
    let value = client
        .get(&format!("/admin/audit?offset={offset}&limit={limit}"))
        .await?;
    if json {
        return print_json(&value);
    }
    let lines: Vec<AuditLine> = serde_json::from_value(value)?;
    for l in lines {
        let device = l.device.map(|d| format!(" device={d}")).unwrap_or_default();
        let detail = l.detail.map(|d| format!(": {d}")).unwrap_or_default();
        print_line(&format!("{} {}{device}{detail}", l.at, l.event))?;
    }
    Ok(())
}

async fn signer(client: &Client, cmd: SignerCommand) -> Result<()> {
    match cmd {
        SignerCommand::Add {
            name,
            key,
            ca,
            scope,
        } => {
            let scope = if scope.is_empty() {
                vec![String::new()]
            } else {
                scope
            };
            let (key, ca) = match (key, ca) {
                (Some(key), None) => (hex::encode(public_key(&key)?.to_cose_key_bytes()), None),
                (None, Some(ca)) => {
                    let pem = String::from_utf8(read(&ca)?)
                        .with_context(|| format!("{} is not PEM text", ca.display()))?;
                    (String::new(), Some(pem))
                }
                _ => bail!("give --key or --ca"),
            };
            let body = SignerBody {
                name: name.clone(),
                key,
                scope,
                ca,
            };
            client
                .send("POST", "/admin/signers", serde_json::to_value(body)?)
                .await?;
            print_line(&format!("signer {name} added"))
        }
        SignerCommand::List => {
            let value = client.get("/admin/signers").await?;
            let signers: Vec<SignerBody> = serde_json::from_value(value)?;
            for s in signers {
                let scope: Vec<String> = s
                    .scope
                    .iter()
                    .map(|p| if p.is_empty() { "*".into() } else { p.clone() })
                    .collect();
                let kind = if s.ca.is_some() { "ca" } else { "key" };
                print_line(&format!("{} {kind} scope={}", s.name, scope.join(",")))?;
            }
            Ok(())
        }
        SignerCommand::Remove { name } => {
            client
                .send("DELETE", &format!("/admin/signers/{name}"), json!({}))
                .await?;
            print_line(&format!("signer {name} removed"))
        }
    }
}

/// The admin token of `data_dir`, made (32 random bytes, hex, owner-only file) if there
/// is none yet; `true` when it was just made.
fn token(data_dir: &Path, provider: &dyn CryptoProvider) -> Result<(String, bool)> {
    let path = data_dir.join(TOKEN_FILE);
    if path.exists() {
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        return Ok((text.trim().to_owned(), false));
    }
    let mut bytes = [0; 32];
    provider.fill_random(&mut bytes)?;
    let token = hex::encode(bytes);
    write_secret(&path, token.as_bytes())?;
    Ok((token, true))
}

/// The admin listener `teep tam serve` runs beside the TEEP one.
pub(crate) struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops the admin listener and waits for it.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "admin listener failed"),
            Err(e) => tracing::error!(error = %e, "admin listener task failed"),
        }
    }
}

/// Starts the admin API on `listen`, telling `out` where it is and (once, when the token
/// is made) the token.
pub(crate) async fn start(
    data_dir: &Path,
    listen: &str,
    store: Arc<dyn AdminStore>,
    metrics: Arc<Metrics>,
    messages: Arc<dyn teep_tam::messages::MessageLog>,
    provider: &'static dyn CryptoProvider,
    out: &mut impl std::io::Write,
) -> Result<Running> {
    let (token, made) = token(data_dir, provider)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("admin API listening on {listen}"))?;
    let addr: SocketAddr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the admin API listens beyond loopback");
    }
    if made {
        writeln!(out, "admin token (printed once): {token}")?;
    }
    writeln!(
        out,
        "admin token file: {}",
        data_dir.join(TOKEN_FILE).display()
    )?;
    writeln!(out, "admin API on http://{addr}")?;
    writeln!(out, "console on http://{addr}/console")?;
    let admin = Arc::new(Admin::new(store, &token, metrics, provider).with_messages(messages));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(teep_tam::admin::serve(admin, listener, async {
        let _ = stopped.await;
    }));
    Ok(Running { stop, task })
}
