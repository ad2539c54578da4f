//! The configuration of `teep tam serve`: flags, then `TEEP_TAM_*` environment variables
//! (clap reads both, a flag winning), then a TOML file (`--config`), then the defaults.
//! One struct is both the flags and the file, so that every option has the same name in
//! all three places (the file's keys are the long flags without `--`); a key the struct
//! does not have is refused, so that a misspelt option is never silently ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use teep_tam::http::{DEFAULT_BODY_LIMIT, RateLimit, ServerConfig};

use crate::input::read;

/// Default of `--listen`.
const DEFAULT_LISTEN: &str = "127.0.0.1:8480";
/// Default of `--data-dir`.
pub(crate) const DEFAULT_DATA_DIR: &str = "teep-tam";
/// Default of `--default-class`.
pub(crate) const DEFAULT_CLASS: &str = "default";
/// Default of `--verifier-timeout`, in seconds: a Verifier that has not answered by then
/// is treated as unreachable (the session is answered 500, the Agent retries).
const DEFAULT_VERIFIER_TIMEOUT: u64 = 10;

/// Options of `teep tam serve`. Precedence: flag > `TEEP_TAM_*` variable > `--config`
/// file (same names, e.g. `data-dir = "/var/lib/teep-tam"`) > default.
#[derive(clap::Args, serde::Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ServeArgs {
    /// TOML configuration file; its keys are the long options below (unknown keys are an
    /// error).
    #[arg(long, env = "TEEP_TAM_CONFIG")]
    #[serde(skip)]
    pub(crate) config: Option<PathBuf>,
    /// Where the TAM keeps its keys (and its SQLite database); created, with new keys, on
    /// first start. [default: teep-tam]
    #[arg(long, env = "TEEP_TAM_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Address of the TEEP-over-HTTP server. [default: 127.0.0.1:8480]
    #[arg(long, env = "TEEP_TAM_LISTEN")]
    pub(crate) listen: Option<String>,
    /// Path of the TAM URI. [default: /tam]
    #[arg(long, env = "TEEP_TAM_PATH")]
    pub(crate) path: Option<String>,
    /// Also serve older Agents (pre-26 TEEP numbering, COSE_Sign1 with ES256) on this path,
    /// e.g. `/tam/pre26`. Off unless set: older Agents cannot attest, so they are served
    /// only when the operator registered the device's key with attestation-exempt.
    #[arg(long, env = "TEEP_TAM_PRE26_PATH")]
    pub(crate) pre26_path: Option<String>,
    /// Address of the admin API (see docs/tam.md); carried for it, unused without it.
    #[arg(long, env = "TEEP_TAM_ADMIN_LISTEN")]
    pub(crate) admin_listen: Option<String>,
    /// The class of a device first seen by attestation (so that class policies apply
    /// without the operator classifying each device; `teep tam device class` changes
    /// it). [default: default]
    #[arg(long, env = "TEEP_TAM_DEFAULT_CLASS")]
    pub(crate) default_class: Option<String>,
    /// The TAM's database: `sqlite:PATH` or `postgres://...` (several TAM processes may
    /// share one PostgreSQL). [default: the SQLite file tam.sqlite3 in the data directory]
    #[arg(long, env = "TEEP_TAM_DATABASE")]
    pub(crate) database: Option<String>,
    /// Appraisal policy (JSON) of the in-process Verifier. Without it (and without
    /// --verifier) no attestation key is endorsed, so every device's Evidence is refused.
    #[arg(long, env = "TEEP_TAM_VERIFIER_POLICY")]
    pub(crate) verifier_policy: Option<PathBuf>,
    /// A remote Verifier (`teep verifier serve`) instead of the in-process one, e.g.
    /// `http://127.0.0.1:8400`; needs --verifier-token and --verifier-key.
    #[arg(long, env = "TEEP_TAM_VERIFIER")]
    pub(crate) verifier: Option<String>,
    /// The TAM's bearer token at the remote Verifier (prefer the variable or the file to
    /// the flag: a flag is visible to other users in the process list).
    #[arg(long, env = "TEEP_TAM_VERIFIER_TOKEN", hide_env_values = true)]
    pub(crate) verifier_token: Option<String>,
    /// The remote Verifier's EAR signing public key (COSE_Key or PEM): EARs are trusted
    /// only with a valid signature by it.
    #[arg(long, env = "TEEP_TAM_VERIFIER_KEY")]
    pub(crate) verifier_key: Option<PathBuf>,
    /// Seconds a request to the remote Verifier (and to --attestation-verifier) may take.
    /// [default: 10]
    #[arg(long, env = "TEEP_TAM_VERIFIER_TIMEOUT")]
    pub(crate) verifier_timeout: Option<u64>,
    /// TLS certificate chain (PEM, leaf first): serve HTTPS. Needs --tls-key.
    #[arg(long, env = "TEEP_TAM_TLS_CERT")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of --tls-cert.
    #[arg(long, env = "TEEP_TAM_TLS_KEY")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Largest request body in bytes (413 above). [default: 4194304]
    #[arg(long, env = "TEEP_TAM_BODY_LIMIT")]
    pub(crate) body_limit: Option<usize>,
    /// Seconds a client has for the TLS handshake, and again for the request head.
    /// [default: 10]
    #[arg(long, env = "TEEP_TAM_HEADER_TIMEOUT")]
    pub(crate) header_timeout: Option<u64>,
    /// Seconds a client has to send the body (408 after). [default: 30]
    #[arg(long, env = "TEEP_TAM_BODY_TIMEOUT")]
    pub(crate) body_timeout: Option<u64>,
    /// Requests a second one client IP may send on average. [default: 2]
    #[arg(long, env = "TEEP_TAM_RATE")]
    pub(crate) rate: Option<f64>,
    /// Requests one client IP may send back to back. [default: 10]
    #[arg(long, env = "TEEP_TAM_BURST")]
    pub(crate) burst: Option<u32>,
    /// Seconds requests in flight may take to finish on SIGINT/SIGTERM. [default: 30]
    #[arg(long, env = "TEEP_TAM_SHUTDOWN_GRACE")]
    pub(crate) shutdown_grace: Option<u64>,
    /// Seconds a session's token stays valid (spec §5: hours, installs are slow); an answer
    /// after that is refused. [default: 14400]
    #[arg(long, env = "TEEP_TAM_TOKEN_LIFETIME")]
    pub(crate) token_lifetime: Option<u64>,
    /// Outstanding sessions (tokens) per device; opening one more retires the oldest.
    /// [default: 4]
    #[arg(long, env = "TEEP_TAM_MAX_SESSIONS_PER_DEVICE")]
    pub(crate) max_sessions_per_device: Option<usize>,
    /// An Attestation Result about this TAM (signed EAR, `cnf` = one of its keys; made by
    /// `teep attest verify --ear-out`), sent to Agents that demand the TAM's attestation.
    /// Re-read when the file changes. Needs --attestation-verifier-key.
    #[arg(long, env = "TEEP_TAM_ATTESTATION_RESULT")]
    pub(crate) attestation_result: Option<PathBuf>,
    /// Instead of --attestation-result: a remote Verifier (`teep verifier serve`, e.g.
    /// `http://127.0.0.1:8400`) the TAM attests itself to with its attestation key
    /// (`teep tam identity`), keeping the result current in the background. Needs
    /// --attestation-verifier-token, --attestation-claims and --attestation-verifier-key.
    #[arg(long, env = "TEEP_TAM_ATTESTATION_VERIFIER")]
    pub(crate) attestation_verifier: Option<String>,
    /// The TAM's bearer token at --attestation-verifier (prefer the variable or the file
    /// to the flag: a flag is visible to other users in the process list).
    #[arg(
        long,
        env = "TEEP_TAM_ATTESTATION_VERIFIER_TOKEN",
        hide_env_values = true
    )]
    pub(crate) attestation_verifier_token: Option<String>,
    /// The TAM platform's claims (JSON, as `teep attest evidence --claims`: oemid,
    /// hwmodel, ... as the Verifier's policy expects them) for its Evidence to
    /// --attestation-verifier; `ueid`, `cnf`, `eat_nonce` and `iat` are the TAM's own.
    #[arg(long, env = "TEEP_TAM_ATTESTATION_CLAIMS")]
    pub(crate) attestation_claims: Option<PathBuf>,
    /// The public key (COSE_Key or PEM) of the Verifier that signs the TAM's results
    /// (--attestation-result or --attestation-verifier): a result not signed by it, or
    /// bound to another key, is never sent.
    #[arg(long, env = "TEEP_TAM_ATTESTATION_VERIFIER_KEY")]
    pub(crate) attestation_verifier_key: Option<PathBuf>,
    /// Seconds after its `iat` the TAM stops sending its result (replace the file before
    /// then; from --attestation-verifier it is refreshed at half this age). [default: 3600]
    #[arg(long, env = "TEEP_TAM_ATTESTATION_MAX_AGE")]
    pub(crate) attestation_max_age: Option<u64>,
    /// Send the TAM's result in every first QueryRequest, not only after an Agent's
    /// ERR_ATTESTATION_REQUIRED. [default: false]
    #[arg(long, env = "TEEP_TAM_ATTESTATION_UP_FRONT", num_args = 0..=1, default_missing_value = "true")]
    pub(crate) attestation_up_front: Option<bool>,
    /// TEEP messages the console's message log keeps in the database (the newest; older
    /// ones are deleted as new ones are recorded). [default: 10000]
    #[arg(long, env = "TEEP_TAM_MESSAGE_LOG_KEEP")]
    pub(crate) message_log_keep: Option<usize>,
}

/// Default of `--token-lifetime`, in seconds (4 hours).
const DEFAULT_TOKEN_LIFETIME: u64 = 4 * 3600;
/// Default of `--max-sessions-per-device`.
const DEFAULT_MAX_SESSIONS_PER_DEVICE: usize = 4;

/// Default of `--attestation-max-age`, in seconds.
const DEFAULT_ATTESTATION_MAX_AGE: u64 = 3600;

/// Where the TAM's own Attestation Result comes from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum OwnSource {
    /// `--attestation-result`.
    File(PathBuf),
    /// `--attestation-verifier`.
    Remote {
        /// Base URL.
        url: String,
        /// `--attestation-verifier-token`.
        token: String,
        /// `--attestation-claims`.
        claims: PathBuf,
        /// `--verifier-timeout`, per request.
        timeout: Duration,
    },
}

/// The TAM's own Attestation Result, as configured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SelfAttestationSetting {
    /// Its source.
    pub(crate) source: OwnSource,
    /// `--attestation-verifier-key`.
    pub(crate) verifier_key: PathBuf,
    /// `--attestation-max-age`, seconds.
    pub(crate) max_age: u64,
    /// `--attestation-up-front`.
    pub(crate) up_front: bool,
}

/// Where appraisals come from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum VerifierSetting {
    /// The in-process Verifier with this policy (none: nothing is endorsed).
    InProcess {
        /// `--verifier-policy`.
        policy: Option<PathBuf>,
    },
    /// `teep verifier serve` at `url`.
    Remote {
        /// Base URL.
        url: String,
        /// Bearer token.
        token: String,
        /// The Verifier's EAR key.
        key: PathBuf,
        /// Per-request timeout.
        timeout: Duration,
    },
}

/// The options after precedence and defaults, checked for consistency.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) data_dir: PathBuf,
    pub(crate) listen: String,
    pub(crate) admin_listen: Option<String>,
    /// The class of a device first seen by attestation.
    pub(crate) default_class: String,
    pub(crate) database: Option<String>,
    pub(crate) verifier: VerifierSetting,
    /// Certificate and key files.
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
    /// `--pre26-path`: older Agents' resource, if served.
    pub(crate) pre26_path: Option<String>,
    /// Path and limits (its `tls` is filled in by the caller from [`Settings::tls`]).
    pub(crate) server: ServerConfig,
    /// The TAM's own attestation, if configured.
    pub(crate) self_attestation: Option<SelfAttestationSetting>,
    /// Seconds a token stays valid.
    pub(crate) token_lifetime: u64,
    /// Outstanding tokens per device.
    pub(crate) max_sessions_per_device: usize,
    /// Messages the message log keeps.
    pub(crate) message_log_keep: usize,
}

impl ServeArgs {
    /// Each option this struct leaves unset, taken from `file`.
    fn or(self, file: Self) -> Self {
        Self {
            config: self.config,
            data_dir: self.data_dir.or(file.data_dir),
            listen: self.listen.or(file.listen),
            path: self.path.or(file.path),
            pre26_path: self.pre26_path.or(file.pre26_path),
            admin_listen: self.admin_listen.or(file.admin_listen),
            default_class: self.default_class.or(file.default_class),
            database: self.database.or(file.database),
            verifier_policy: self.verifier_policy.or(file.verifier_policy),
            verifier: self.verifier.or(file.verifier),
            verifier_token: self.verifier_token.or(file.verifier_token),
            verifier_key: self.verifier_key.or(file.verifier_key),
            verifier_timeout: self.verifier_timeout.or(file.verifier_timeout),
            tls_cert: self.tls_cert.or(file.tls_cert),
            tls_key: self.tls_key.or(file.tls_key),
            body_limit: self.body_limit.or(file.body_limit),
            header_timeout: self.header_timeout.or(file.header_timeout),
            body_timeout: self.body_timeout.or(file.body_timeout),
            rate: self.rate.or(file.rate),
            burst: self.burst.or(file.burst),
            shutdown_grace: self.shutdown_grace.or(file.shutdown_grace),
            token_lifetime: self.token_lifetime.or(file.token_lifetime),
            max_sessions_per_device: self
                .max_sessions_per_device
                .or(file.max_sessions_per_device),
            attestation_result: self.attestation_result.or(file.attestation_result),
            attestation_verifier: self.attestation_verifier.or(file.attestation_verifier),
            attestation_verifier_token: self
                .attestation_verifier_token
                .or(file.attestation_verifier_token),
            attestation_claims: self.attestation_claims.or(file.attestation_claims),
            attestation_verifier_key: self
                .attestation_verifier_key
                .or(file.attestation_verifier_key),
            attestation_max_age: self.attestation_max_age.or(file.attestation_max_age),
            attestation_up_front: self.attestation_up_front.or(file.attestation_up_front),
            message_log_keep: self.message_log_keep.or(file.message_log_keep),
        }
    }

    /// The settings: flags and environment (already in `self`), then the `--config` file,
    /// then the defaults.
    pub(crate) fn resolve(self) -> Result<Settings> {
        let merged = match &self.config {
            Some(path) => self.clone().or(parse_file(path)?),
            None => self,
        };
        merged.settings()
    }

    fn settings(self) -> Result<Settings> {
        let defaults = ServerConfig::default();
        let path = self.path.unwrap_or(defaults.path);
        if !path.starts_with('/') {
            bail!("path {path:?} must start with '/'");
        }
        if let Some(pre26) = &self.pre26_path
            && (!pre26.starts_with('/') || *pre26 == path)
        {
            bail!("pre26-path {pre26:?} must start with '/' and differ from path");
        }
        let rate = RateLimit {
            per_second: self.rate.unwrap_or(defaults.rate.per_second),
            burst: self.burst.unwrap_or(defaults.rate.burst),
            ..defaults.rate
        };
        if !(rate.per_second.is_finite() && rate.per_second > 0.0) || rate.burst == 0 {
            bail!("rate must be more than 0 and burst at least 1");
        }
        let secs = |v: Option<u64>, d: Duration| v.map_or(d, Duration::from_secs);
        let server = ServerConfig {
            path,
            body_limit: self.body_limit.unwrap_or(DEFAULT_BODY_LIMIT),
            header_timeout: secs(self.header_timeout, defaults.header_timeout),
            body_timeout: secs(self.body_timeout, defaults.body_timeout),
            rate,
            shutdown_grace: secs(self.shutdown_grace, defaults.shutdown_grace),
            tls: None,
        };
        let default_class = self
            .default_class
            .unwrap_or_else(|| DEFAULT_CLASS.to_owned());
        if default_class.is_empty() || default_class.chars().any(char::is_control) {
            bail!("default-class {default_class:?} must be non-empty, without control characters");
        }
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (Some(_), None) => bail!("tls-cert needs tls-key"),
            (None, Some(_)) => bail!("tls-key needs tls-cert"),
        };
        let timeout =
            Duration::from_secs(self.verifier_timeout.unwrap_or(DEFAULT_VERIFIER_TIMEOUT));
        let verifier = match (self.verifier, self.verifier_token, self.verifier_key) {
            (None, None, None) => VerifierSetting::InProcess {
                policy: self.verifier_policy,
            },
            (Some(url), Some(token), Some(key)) => {
                if self.verifier_policy.is_some() {
                    bail!(
                        "verifier-policy is for the in-process Verifier; with verifier the remote Verifier's own policy applies"
                    );
                }
                VerifierSetting::Remote {
                    url,
                    token,
                    key,
                    timeout,
                }
            }
            _ => bail!("verifier, verifier-token and verifier-key go together"),
        };
        let source = match (
            self.attestation_result,
            self.attestation_verifier,
            self.attestation_verifier_token,
            self.attestation_claims,
        ) {
            (Some(_), Some(_), _, _) => {
                bail!("attestation-result and attestation-verifier exclude each other")
            }
            (Some(result), None, None, None) => Some(OwnSource::File(result)),
            (None, Some(url), Some(token), Some(claims)) => Some(OwnSource::Remote {
                url,
                token,
                claims,
                timeout,
            }),
            (None, None, None, None) => None,
            _ => bail!(
                "attestation-verifier, attestation-verifier-token and attestation-claims go together, without attestation-result"
            ),
        };
        let self_attestation = match (source, self.attestation_verifier_key) {
            (Some(source), Some(verifier_key)) => Some(SelfAttestationSetting {
                source,
                verifier_key,
                max_age: self
                    .attestation_max_age
                    .unwrap_or(DEFAULT_ATTESTATION_MAX_AGE),
                up_front: self.attestation_up_front.unwrap_or(false),
            }),
            (None, None) => {
                if self.attestation_max_age.is_some() || self.attestation_up_front.is_some() {
                    bail!(
                        "attestation-max-age and attestation-up-front need attestation-result or attestation-verifier"
                    );
                }
                None
            }
            _ => bail!(
                "attestation-verifier-key goes with attestation-result or attestation-verifier"
            ),
        };
        let token_lifetime = self.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        let max_sessions_per_device = self
            .max_sessions_per_device
            .unwrap_or(DEFAULT_MAX_SESSIONS_PER_DEVICE);
        if token_lifetime == 0 || max_sessions_per_device == 0 {
            bail!("token-lifetime and max-sessions-per-device must be at least 1");
        }
        let message_log_keep = self
            .message_log_keep
            .unwrap_or(teep_tam::messages::MESSAGE_LOG_LIMIT);
        if message_log_keep == 0 {
            bail!("message-log-keep must be at least 1");
        }
        Ok(Settings {
            data_dir: self
                .data_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            listen: self.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            admin_listen: self.admin_listen,
            default_class,
            database: self.database,
            verifier,
            tls,
            pre26_path: self.pre26_path,
            server,
            self_attestation,
            token_lifetime,
            max_sessions_per_device,
            message_log_keep,
        })
    }
}

/// The `--config` file; unknown keys and wrong types are errors that name the file, the
/// key and the line.
fn parse_file(path: &Path) -> Result<ServeArgs> {
    let text = String::from_utf8(read(path)?)
        .with_context(|| format!("config {} is not UTF-8", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tam.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn defaults_without_anything() {
        let s = ServeArgs::default().resolve().unwrap();
        assert_eq!(s.listen, DEFAULT_LISTEN);
        assert_eq!(s.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(s.server.path, "/tam");
        assert_eq!(s.server.body_limit, DEFAULT_BODY_LIMIT);
        assert_eq!(s.verifier, VerifierSetting::InProcess { policy: None });
        assert!(s.tls.is_none() && s.database.is_none() && s.admin_listen.is_none());
        assert_eq!(s.default_class, DEFAULT_CLASS);
        assert_eq!(s.token_lifetime, 4 * 3600);
        assert_eq!(s.max_sessions_per_device, 4);
        assert_eq!(s.message_log_keep, 10_000);
        assert_eq!(
            s.pre26_path, None,
            "older Agents are served only when asked for"
        );
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let (_dir, path) = file(
            "listen = \"127.0.0.1:9000\"\npath = \"/from-file\"\nbody-limit = 1024\nheader-timeout = 3\nadmin-listen = \"127.0.0.1:9001\"\npre26-path = \"/old\"\ndefault-class = \"phones\"\ntoken-lifetime = 60\n",
        );
        let args = ServeArgs {
            config: Some(path),
            path: Some("/from-flag".into()),
            max_sessions_per_device: Some(2),
            ..ServeArgs::default()
        };
        let s = args.resolve().unwrap();
        assert_eq!(s.server.path, "/from-flag");
        assert_eq!(s.pre26_path.as_deref(), Some("/old"));
        assert_eq!(s.listen, "127.0.0.1:9000");
        assert_eq!(s.server.body_limit, 1024);
        assert_eq!(s.server.header_timeout, Duration::from_secs(3));
        assert_eq!(s.server.body_timeout, ServerConfig::default().body_timeout);
        assert_eq!(s.admin_listen.as_deref(), Some("127.0.0.1:9001"));
        assert_eq!(s.default_class, "phones");
        assert_eq!(s.token_lifetime, 60);
        assert_eq!(s.max_sessions_per_device, 2);
    }

    #[test]
    fn token_lifetime_and_session_cap_of_zero_are_refused() {
        for args in [
            ServeArgs {
                token_lifetime: Some(0),
                ..ServeArgs::default()
            },
            ServeArgs {
                max_sessions_per_device: Some(0),
                ..ServeArgs::default()
            },
            ServeArgs {
                message_log_keep: Some(0),
                ..ServeArgs::default()
            },
        ] {
            let err = args.resolve().unwrap_err();
            assert!(format!("{err}").contains("at least 1"), "{err}");
        }
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_refused() {
        for (text, needle) in [
            ("lisen = \"127.0.0.1:1\"\n", "lisen"),
            ("config = \"other.toml\"\n", "config"),
            ("[tls]\ncert = \"a\"\n", "tls"),
            ("body-limit = \"big\"\n", "body-limit"),
        ] {
            let (_dir, path) = file(text);
            let err = ServeArgs {
                config: Some(path),
                ..ServeArgs::default()
            }
            .resolve()
            .unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains(needle) && msg.contains("tam.toml"), "{msg}");
        }
    }

    #[test]
    fn options_that_go_together_are_checked() {
        let cases = [
            ServeArgs {
                tls_cert: Some("c.pem".into()),
                ..ServeArgs::default()
            },
            ServeArgs {
                tls_key: Some("k.pem".into()),
                ..ServeArgs::default()
            },
            ServeArgs {
                verifier: Some("http://127.0.0.1:8400".into()),
                ..ServeArgs::default()
            },
            ServeArgs {
                verifier: Some("http://127.0.0.1:8400".into()),
                verifier_token: Some("t".into()),
                verifier_key: Some("v.pem".into()),
                verifier_policy: Some("p.json".into()),
                ..ServeArgs::default()
            },
            ServeArgs {
                path: Some("tam".into()),
                ..ServeArgs::default()
            },
            ServeArgs {
                pre26_path: Some("/tam".into()),
                ..ServeArgs::default()
            },
            ServeArgs {
                pre26_path: Some("pre26".into()),
                ..ServeArgs::default()
            },
            ServeArgs {
                rate: Some(0.0),
                ..ServeArgs::default()
            },
            ServeArgs {
                burst: Some(0),
                ..ServeArgs::default()
            },
            ServeArgs {
                attestation_result: Some("ear.cbor".into()),
                ..ServeArgs::default()
            },
            ServeArgs {
                attestation_verifier_key: Some("v.pem".into()),
                ..ServeArgs::default()
            },
            ServeArgs {
                attestation_up_front: Some(true),
                ..ServeArgs::default()
            },
            ServeArgs {
                default_class: Some(String::new()),
                ..ServeArgs::default()
            },
        ];
        for args in cases {
            assert!(args.clone().resolve().is_err(), "{args:?}");
        }
        let remote = ServeArgs {
            verifier: Some("http://127.0.0.1:8400".into()),
            verifier_token: Some("t".into()),
            verifier_key: Some("v.pem".into()),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert!(matches!(
            remote.verifier,
            VerifierSetting::Remote { timeout, .. } if timeout == Duration::from_secs(DEFAULT_VERIFIER_TIMEOUT)
        ));
    }

    #[test]
    fn the_tams_own_attestation_from_the_file_with_defaults() {
        let (_dir, path) = file(
            "attestation-result = \"ear.cbor\"\nattestation-verifier-key = \"v.pem\"\nattestation-up-front = true\n",
        );
        let s = ServeArgs {
            config: Some(path),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            s.self_attestation,
            Some(SelfAttestationSetting {
                source: OwnSource::File("ear.cbor".into()),
                verifier_key: "v.pem".into(),
                max_age: DEFAULT_ATTESTATION_MAX_AGE,
                up_front: true,
            })
        );
        assert_eq!(
            ServeArgs::default().resolve().unwrap().self_attestation,
            None
        );
    }

    #[test]
    fn the_tams_own_attestation_from_a_remote_verifier() {
        let (_dir, path) = file(
            "attestation-verifier = \"http://127.0.0.1:8400\"\nattestation-verifier-token = \"t\"\nattestation-claims = \"tam-claims.json\"\nattestation-verifier-key = \"v.pem\"\nverifier-timeout = 3\n",
        );
        let s = ServeArgs {
            config: Some(path.clone()),
            attestation_max_age: Some(120),
            ..ServeArgs::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(
            s.self_attestation,
            Some(SelfAttestationSetting {
                source: OwnSource::Remote {
                    url: "http://127.0.0.1:8400".into(),
                    token: "t".into(),
                    claims: "tam-claims.json".into(),
                    timeout: Duration::from_secs(3),
                },
                verifier_key: "v.pem".into(),
                max_age: 120,
                up_front: false,
            })
        );
        // Not with a file result as well (from the flags or the file), nor half-given.
        let remote = || ServeArgs {
            attestation_verifier: Some("http://127.0.0.1:8400".into()),
            attestation_verifier_token: Some("t".into()),
            attestation_claims: Some("c.json".into()),
            attestation_verifier_key: Some("v.pem".into()),
            ..ServeArgs::default()
        };
        let both = ServeArgs {
            attestation_result: Some("ear.cbor".into()),
            ..remote()
        };
        let err = both.resolve().unwrap_err();
        assert!(format!("{err}").contains("exclude each other"), "{err}");
        let both_via_file = ServeArgs {
            config: Some(path),
            attestation_result: Some("ear.cbor".into()),
            ..ServeArgs::default()
        };
        assert!(both_via_file.resolve().is_err());
        for half in [
            ServeArgs {
                attestation_verifier_token: None,
                ..remote()
            },
            ServeArgs {
                attestation_claims: None,
                ..remote()
            },
            ServeArgs {
                attestation_verifier_key: None,
                ..remote()
            },
            ServeArgs {
                attestation_verifier: None,
                ..remote()
            },
        ] {
            assert!(half.clone().resolve().is_err(), "{half:?}");
        }
    }
}
