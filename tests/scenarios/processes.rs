//! Helpers of the scenarios: further TAM processes beside a deployment's, TEEs trusting
//! several TAMs, TLS files, PostgreSQL databases, decoding what crossed the wire, and
//! waiting.

use crate::common::deployment::{Deployment, Spawned, spawn_until};

/// `teep inspect --json` of a captured body (written to `name` in `dir`).
pub fn inspect(dir: &std::path::Path, name: &str, body: &[u8]) -> serde_json::Value {
    std::fs::write(dir.join(name), body).unwrap();
    let out = crate::common::run(&["inspect", "--json", name], dir);
    serde_json::from_str(&out).unwrap()
}

/// The TEEP message type (`query-request`, `update`, ...) of a captured COSE body.
pub fn message_type(dir: &std::path::Path, body: &[u8]) -> String {
    let v = inspect(dir, "message.cbor", body);
    v["payload"]["type"].as_str().unwrap().to_owned()
}

/// A further `teep tam serve` beside a [`Deployment`]'s: in the deployment's working
/// directory, with its own data directory.
pub struct Tam {
    /// Its TEEP/HTTP URI.
    pub uri: String,
    /// Its admin API.
    pub admin_url: String,
    /// Its data directory.
    pub data: String,
    /// The process.
    pub process: Spawned,
}

impl Tam {
    /// Starts it on the data directory `name` with `extra` options (`--database`,
    /// `--verifier` ...); unless they name a Verifier, its in-process Verifier has the
    /// deployment's policy, endorsing the device.
    pub fn start(d: &Deployment, name: &str, extra: &[&str]) -> Self {
        Self::start_on(d, "127.0.0.1:0", name, extra)
    }

    /// [`Tam::start`] with its TEEP/HTTP server on `listen`.
    pub fn start_on(d: &Deployment, listen: &str, name: &str, extra: &[&str]) -> Self {
        let data = d.work().join(name).to_str().unwrap().to_owned();
        let process = d.spawn_tam_on(listen, &data, name, extra);
        Self {
            uri: process.after("listening on ").to_owned(),
            admin_url: process.after("admin API on ").to_owned(),
            data,
            process,
        }
    }

    /// Registers the deployment's TC signer (`signer.key.pub`) at this TAM.
    pub fn with_signer(self, d: &Deployment) -> Self {
        self.admin(
            d,
            &[
                "signer",
                "add",
                "--name",
                "vendor",
                "--key",
                "signer.key.pub",
            ],
        );
        self
    }

    /// `teep tam ARGS` against its admin API, unjudged.
    pub fn admin_output(&self, d: &Deployment, args: &[&str]) -> std::process::Output {
        let mut all = vec!["tam"];
        all.extend(args);
        all.extend(["--admin-url", &self.admin_url, "--data-dir", &self.data]);
        d.output(&all)
    }

    /// `teep tam ARGS` against its admin API; must succeed.
    pub fn admin(&self, d: &Deployment, args: &[&str]) -> String {
        crate::common::ok(self.admin_output(d, args))
    }

    /// Its record of the deployment's device: each installed manifest with its sequence.
    pub fn installed(&self, d: &Deployment) -> Vec<(String, u64)> {
        installed_of(&self.admin(d, &["devices", "--json"]), &d.device_id)
    }
}

/// The record of `device` in a `teep tam devices --json` listing, if there is one.
pub fn find_device(devices_json: &str, device: &str) -> Option<serde_json::Value> {
    let devices: serde_json::Value = serde_json::from_str(devices_json).unwrap();
    devices
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == device)
        .cloned()
}

/// The installed manifests of `device` in a `teep tam devices --json` listing (empty when the
/// TAM does not know the device).
pub fn installed_of(devices_json: &str, device: &str) -> Vec<(String, u64)> {
    find_device(devices_json, device)
        .map(|r| {
            r["installed"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| (m[0].as_str().unwrap().to_owned(), m[1].as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `teep tee serve` for the deployment's device, trusting the TAM keys of
/// `tam_data_dirs` and the TC signer, contacting `tams` (the first is the default), with
/// `extra` options.
pub fn start_tee_with(
    d: &Deployment,
    tam_data_dirs: &[&str],
    tams: &[&str],
    extra: &[&str],
) -> Spawned {
    start_tee_at(d, (&d.tee_dir, &d.socket), tam_data_dirs, tams, extra)
}

/// [`start_tee_with`] for another TEE of the device: its state directory and socket.
pub fn start_tee_at(
    d: &Deployment,
    (tee_dir, socket): (&str, &str),
    tam_data_dirs: &[&str],
    tams: &[&str],
    extra: &[&str],
) -> Spawned {
    let keys: Vec<String> = tam_data_dirs
        .iter()
        .map(|dir| format!("{dir}/tam-esp256.pub.pem"))
        .collect();
    let mut args = vec![
        "tee",
        "serve",
        "--state-dir",
        tee_dir,
        "--socket",
        socket,
        "--trust-signer",
        "signer.key.pub",
    ];
    for key in &keys {
        args.extend(["--trust-tam", key]);
    }
    for tam in tams {
        args.extend(["--tam", tam]);
    }
    args.extend(extra);
    spawn_until(&args, d.work(), "tee socket: ", &d.log("tee"))
}

/// Writes a private CA (`NAME-ca.pem`) and a TLS certificate by it for `127.0.0.1`
/// (`NAME.crt`, key `NAME.key`) in `dir`: what `teep tam serve --tls-cert --tls-key` and
/// `teep device run --tam-ca` take.
pub fn tls_files(dir: &std::path::Path, name: &str) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} CA"));
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join(format!("{name}-ca.pem")), ca_cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.crt")), leaf.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
}

/// A PostgreSQL database of its own on the server of `TEEP_TEST_DATABASE_URL` (`None`, with a
/// note printed, when it is not set); dropped (its connections ended) on drop.
pub struct PgDatabase {
    /// The server's URL (the database the variable names).
    base: String,
    /// This database's name.
    name: String,
    /// Its URL (what `teep tam serve --database` takes).
    pub url: String,
}

impl PgDatabase {
    /// Creates `teep_PREFIX_PID_NANOS`.
    pub fn create(prefix: &str) -> Option<Self> {
        let Ok(base) = std::env::var("TEEP_TEST_DATABASE_URL") else {
            println!("skipped: TEEP_TEST_DATABASE_URL not set (PostgreSQL)");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("teep_{prefix}_{}_{nanos}", std::process::id());
        pg_execute(&base, &format!("CREATE DATABASE {name}"));
        let (server, _) = base.rsplit_once('/').unwrap();
        let url = format!("{server}/{name}");
        Some(Self { base, name, url })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        pg_execute(
            &self.base,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs one statement on the database at `url`.
fn pg_execute(url: &str, statement: &str) {
    use sqlx::Connection as _;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::query(statement).execute(&mut conn).await.unwrap();
        });
}

/// Waits (up to a minute: the machine may be loaded) until `done` holds.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
