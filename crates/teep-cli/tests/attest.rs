//! `teep attest evidence`, `teep attest verify` and `teep verifier serve`, run as a user would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use std::io::{BufRead, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

mod common;
use common::teep;

use teep_attest::{ResultCheck, Status, verify_ear};
use teep_cose::{Curve, PrivateKey, TrustStore, default_provider};

const NONCE: &str = "948f8860d13a463e8e0102030405060708";

struct Setup {
    dir: tempfile::TempDir,
    attestation: PrivateKey,
    teep: PrivateKey,
    verifier: PrivateKey,
}

impl Setup {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let attestation = PrivateKey::generate(Curve::P256).unwrap();
        let teep = PrivateKey::generate(Curve::P256).unwrap();
        let verifier = PrivateKey::generate(Curve::P256).unwrap();
        std::fs::write(dir.path().join("attest.pem"), attestation.to_pkcs8_pem()).unwrap();
        // The Agent's public key as a binary COSE_Key: both key forms get exercised.
        std::fs::write(
            dir.path().join("teep.pub"),
            teep.public_key().to_cose_key_bytes(),
        )
        .unwrap();
        std::fs::write(dir.path().join("verifier.pem"), verifier.to_pkcs8_pem()).unwrap();
        let policy = serde_json::json!({
            "policy_id": "policy:cli-test",
            "endorsements": [{"key": attestation.public_key().to_pem(), "ueid": "0198f50a4ff6c05861c8860d13a638ea"}],
            "reference_values": {
                "oemids": ["894823"],
                "hwmodels": ["549dcecc8b987c737b44e40f7c635ce8"],
                "hwversions": ["1.3.4"],
                "dbgstat": "disabled",
                "tc_digests": ["a7fd6593eac32eb4be578278e6540c5c09cfd7d4d234973054833b2b93030609"]
            },
            "freshness_window_seconds": 300
        });
        std::fs::write(dir.path().join("policy.json"), policy.to_string()).unwrap();
        let claims = serde_json::json!({
            "ueid": "0198f50a4ff6c05861c8860d13a638ea",
            "oemid": "894823",
            "hwmodel": "549dcecc8b987c737b44e40f7c635ce8",
            "hwversion": ["1.3.4", 1],
            "dbgstat": "disabled-permanently",
            "manifests": [{"uri": "https://example.com/manifest.cbor",
                           "sha256": "a7fd6593eac32eb4be578278e6540c5c09cfd7d4d234973054833b2b93030609"}]
        });
        std::fs::write(dir.path().join("claims.json"), claims.to_string()).unwrap();
        Self {
            dir,
            attestation,
            teep,
            verifier,
        }
    }

    fn evidence(&self, nonce: &str) -> PathBuf {
        self.evidence_with(nonce, &[])
    }

    fn evidence_with(&self, nonce: &str, args: &[&str]) -> PathBuf {
        let out = self.path(&format!("evidence-{nonce}.cbor"));
        let status = teep()
            .args(["attest", "evidence", "--nonce", nonce])
            .args(args)
            .arg("--key")
            .arg(self.path("attest.pem"))
            .arg("--claims")
            .arg(self.path("claims.json"))
            .arg("--cnf-key")
            .arg(self.path("teep.pub"))
            .arg("--out")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        out
    }

    fn verify(&self, evidence: &Path, nonce: &str) -> Output {
        teep()
            .args(["attest", "verify", "--nonce", nonce])
            .arg("--policy")
            .arg(self.path("policy.json"))
            .arg("--teep-key")
            .arg(self.path("teep.pub"))
            .arg(evidence)
            .output()
            .unwrap()
    }
}

#[test]
fn evidence_then_verify_affirms() {
    let s = Setup::new();
    let out = s.verify(&s.evidence(NONCE), NONCE);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ear: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ear["submods"]["tee"]["ear.status"], "affirming");
    assert_eq!(
        ear["submods"]["tee"]["ear.appraisal-policy-id"],
        "policy:cli-test"
    );
}

#[test]
fn verify_with_another_nonce_exits_1_and_says_why() {
    let s = Setup::new();
    let out = s.verify(&s.evidence(NONCE), "00112233445566778899");
    assert_eq!(out.status.code(), Some(1));
    let ear: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ear["submods"]["tee"]["ear.status"], "contraindicated");
    assert_eq!(
        ear["submods"]["tee"]["ear.trustworthiness-vector"]["instance-identity"],
        96
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("eat_nonce does not match"));
}

struct Server(Child);

impl Server {
    /// Stops the server with SIGTERM, which it must take as a clean shutdown (exit 0);
    /// what it wrote to stderr.
    fn stop(mut self) -> String {
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = self.0.wait().unwrap();
        assert!(status.success(), "verifier serve on SIGTERM: {status}");
        let mut stderr = String::new();
        self.0
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        stderr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `teep verifier serve` with `args`; its base URL once it listens.
fn serve(s: &Setup, args: &[&str]) -> (Server, String) {
    let mut child = teep()
        .args(["verifier", "serve", "--listen", "127.0.0.1:0"])
        .arg("--policy")
        .arg(s.path("policy.json"))
        .arg("--key")
        .arg(s.path("verifier.pem"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{line}");
    (server, base)
}

fn client(base: &str, token: &str) -> teep_verifier::Client {
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .unwrap();
    teep_verifier::Client::new(base, token, http).unwrap()
}

/// The background-check flow against `base` with `token`: affirming.
fn background_check(s: &Setup, base: &str, token: &str) {
    use teep_verifier::Appraiser as _;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = client(base, token);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let nonce = rt.block_on(client.challenge(now)).unwrap().nonce;
    let evidence = std::fs::read(s.evidence(&hex::encode(&nonce))).unwrap();
    let signed_ear = rt.block_on(client.appraise(&evidence, now)).unwrap();

    let mut trust = TrustStore::new();
    trust.add_key(s.verifier.public_key().clone());
    let check = ResultCheck {
        provider: default_provider(),
        verifiers: &trust,
        nonce: Some(&nonce),
        now,
        max_age: 60,
        teep_key: s.teep.public_key(),
    };
    assert_eq!(
        verify_ear(&signed_ear, &check).unwrap().status(),
        Status::Affirming
    );
}

/// The generated token of a `KEY.tokens` file.
fn default_token(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let token = text.lines().find_map(|l| l.strip_prefix("default "));
    token.unwrap().to_owned()
}

/// First start without `--tokens`: a token is generated into `KEY.tokens` (owner-only), its
/// place, not the token, is printed; the flow works with it and not without it. A restart
/// keeps the file.
#[test]
fn verifier_serve_runs_the_background_check_flow() {
    let s = Setup::new();
    let tokens = s.path("verifier.pem.tokens");
    let (server, base) = serve(&s, &[]);
    let token = default_token(&tokens);
    background_check(&s, &base, &token);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let refused = rt
        .block_on(
            reqwest::Client::new()
                .post(format!("{base}/challenge"))
                .send(),
        )
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let stderr = server.stop();
    assert!(!stderr.contains(&token), "{stderr}");
    // The place of the token first, then the log: the appraisal and the refusal.
    assert_eq!(
        stderr.lines().next(),
        Some(
            format!(
                "generated a bearer token for relying party \"default\" in {}",
                tokens.display()
            )
            .as_str()
        )
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("appraised Evidence") && l.contains("affirming")),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("refused a request without a known token")),
        "{stderr}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&tokens).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let before = std::fs::read(&tokens).unwrap();
    // `--log-level warn` leaves only warnings: an affirming appraisal is not one.
    let (server, base) = serve(&s, &["--log-level", "warn"]);
    background_check(&s, &base, &token);
    assert_eq!(server.stop(), "");
    assert_eq!(std::fs::read(&tokens).unwrap(), before);
}

/// A bad log filter is a usage error naming where it came from.
#[test]
fn a_bad_log_filter_is_a_usage_error() {
    let out = teep()
        .args(["--log-level", "teep=notalevel", "keys", "thumbprint", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--log-level") && stderr.contains("notalevel"),
        "{stderr}"
    );
    let out = teep()
        .env("RUST_LOG", "teep=notalevel")
        .args(["keys", "thumbprint", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RUST_LOG"));
}

/// An explicit `--tokens` file names the relying parties; a missing or malformed one stops
/// start-up (exit 2) with a message naming the file and line, never the token.
#[test]
fn verifier_serve_reads_tokens_and_refuses_bad_files() {
    let s = Setup::new();
    let token = "tam-0123456789abcdef0123456789abcdef";
    std::fs::write(s.path("rp.tokens"), format!("# ours\ntam-1 {token}\n")).unwrap();
    let rp = s.path("rp.tokens");
    let (_server, base) = serve(&s, &["--tokens", rp.to_str().unwrap(), "--rate", "5"]);
    background_check(&s, &base, token);
    assert!(!s.path("verifier.pem.tokens").exists());

    let start = |tokens: &Path| {
        teep()
            .args(["verifier", "serve", "--listen", "127.0.0.1:0"])
            .arg("--policy")
            .arg(s.path("policy.json"))
            .arg("--key")
            .arg(s.path("verifier.pem"))
            .arg("--tokens")
            .arg(tokens)
            .output()
            .unwrap()
    };
    let missing = s.path("missing.tokens");
    let out = start(&missing);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.tokens"));
    assert!(
        !missing.exists(),
        "an explicit tokens file is never generated"
    );

    let short = "tam-0123456789";
    std::fs::write(
        s.path("bad.tokens"),
        format!("tam-1 {token}\ntam-2 {short}\n"),
    )
    .unwrap();
    let out = start(&s.path("bad.tokens"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.tokens") && stderr.contains("line 2"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(short) && !stderr.contains(token),
        "{stderr}"
    );
}

/// `manifests` entry head in our Evidence: key 272, a one-entry list, `[60, ...]`.
const MANIFESTS_ENTRY: [u8; 7] = [0x19, 0x01, 0x10, 0x81, 0x82, 0x18, 0x3c];

fn payload(evidence: &[u8], key: &PrivateKey) -> Vec<u8> {
    let mut trust = TrustStore::new();
    trust.add_key(key.public_key().clone());
    teep_cose::verify_sign1(
        evidence,
        &teep_cose::VerifyContext::new(default_provider(), &trust),
    )
    .unwrap()
    .payload
}

/// RFC 9711 carries a CBOR manifest body as `bytes .cbor`: the CLI writes the SUIT_Reference
/// wrapped (a bstr head, 0x58 len, before its array), and `verify` still reads the inline
/// form of the TEEP draft's D.2 example.
#[test]
fn evidence_wraps_manifest_bodies_and_verify_reads_both_forms() {
    let s = Setup::new();
    let path = s.evidence(NONCE);
    let claims = payload(&std::fs::read(&path).unwrap(), &s.attestation);
    let at = claims
        .windows(MANIFESTS_ENTRY.len())
        .position(|w| w == MANIFESTS_ENTRY)
        .expect("manifests entry")
        + MANIFESTS_ENTRY.len();
    // 0x58 0x48: a 72-byte bstr holding [uri, [-16, digest]] (0x82 ...).
    assert_eq!(
        claims[at..at + 3],
        [0x58, 0x48, 0x82],
        "body not bstr-wrapped"
    );
    assert_eq!(s.verify(&path, NONCE).status.code(), Some(0));

    // The same claims with the body inline, signed by the attestation key.
    let mut inline = claims.clone();
    inline.drain(at..at + 2);
    let signer = default_provider()
        .signer(&s.attestation, s.attestation.default_algorithm())
        .unwrap();
    let opts = teep_cose::SignOptions {
        tagged: false,
        ..Default::default()
    };
    let evidence = teep_cose::sign1(signer.as_ref(), &inline, &opts).unwrap();
    let inline_path = s.path("inline.cbor");
    std::fs::write(&inline_path, evidence).unwrap();
    let out = s.verify(&inline_path, NONCE);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `--cnf-form cose-key` puts the Agent's whole key in cnf, so a TAM on first contact can
/// take the key from the Evidence; the default is the thumbprint.
#[test]
fn cnf_form_selects_key_or_kid() {
    let s = Setup::new();
    let cose_key = s.teep.public_key().to_cose_key_bytes();
    let with_key = s.evidence_with(NONCE, &["--cnf-form", "cose-key"]);
    let claims = payload(&std::fs::read(&with_key).unwrap(), &s.attestation);
    let parsed = teep_attest::EatClaims::from_cbor(&claims).unwrap();
    assert_eq!(parsed.cnf_key().as_ref(), Ok(s.teep.public_key()));
    assert!(claims.windows(cose_key.len()).any(|w| w == cose_key));
    assert_eq!(s.verify(&with_key, NONCE).status.code(), Some(0));

    let with_kid = s.evidence(NONCE);
    let parsed = teep_attest::EatClaims::from_cbor(&payload(
        &std::fs::read(&with_kid).unwrap(),
        &s.attestation,
    ))
    .unwrap();
    assert_eq!(
        parsed.cnf_key(),
        Err(teep_attest::CnfKeyError::KidOnly(
            s.teep.public_key().thumbprint().to_vec()
        ))
    );
}
