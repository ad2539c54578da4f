//! `teep suit` end to end: the built binary creates, signs, verifies, inspects and
//! processes manifests, and rejects bad ones with exit 1 and the reason.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::vector;

const VENDOR: &str = "c0ddd5f1-5243-5660-87db-4f5b0aa26c2f";
const CLASS: &str = "db42f709-3d8c-55ba-a8c5-265fc5820f4e";

fn teep(args: &[&str]) -> Output {
    common::teep().args(args).output().unwrap()
}

fn signer_priv() -> String {
    vector("suit/keys/suit-example-signer-p256.private.pem")
}

fn signer_pub() -> String {
    vector("suit/keys/suit-example-signer-p256.public.pem")
}

/// A one-line hex vector file's bytes.
fn hex_vector(path: &str) -> Vec<u8> {
    hex::decode(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Creates and signs a TC manifest in `dir`; returns the signed envelope's path.
fn make(dir: &Path, name: &str, seq: u64, payload: &[u8], extra: &[&str]) -> PathBuf {
    let payload_path = dir.join(format!("{name}.bin"));
    std::fs::write(&payload_path, payload).unwrap();
    let unsigned = dir.join(format!("{name}.unsigned.suit"));
    let signed = dir.join(format!("{name}.suit"));
    let seq = seq.to_string();
    let mut args = vec![
        "suit",
        "create",
        "--component-id",
        "TEEP-Device",
        "--component-id",
        "SecureFS",
        "--component-id",
        name,
        "--component-id",
        "ta",
        "--seq",
        &seq,
        "--payload",
        p(&payload_path),
        "--vendor-id",
        VENDOR,
        "--class-id",
        CLASS,
        "--out",
        p(&unsigned),
    ];
    args.extend_from_slice(extra);
    ok(&teep(&args));
    ok(&teep(&[
        "suit",
        "sign",
        "--key",
        &signer_priv(),
        p(&unsigned),
        "--out",
        p(&signed),
    ]));
    signed
}

fn process(state: &Path, extra: &[&str]) -> (Output, serde_json::Value) {
    process_trusting(state, &[&signer_pub()], extra)
}

/// `teep suit process` with the given `--trust` values.
fn process_trusting(state: &Path, trust: &[&str], extra: &[&str]) -> (Output, serde_json::Value) {
    let mut args = vec!["suit", "process", "--state-dir", p(state)];
    for t in trust {
        args.extend(["--trust", t]);
    }
    args.extend([
        "--vendor-id",
        VENDOR,
        "--class-id",
        CLASS,
        "--nonce",
        "a0a1a2a3",
    ]);
    args.extend_from_slice(extra);
    let out = teep(&args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out, json)
}

/// Everything in a directory tree, for "nothing changed" checks.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            v.extend(snapshot(&e.path()));
        } else {
            v.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
    v.sort();
    v
}

#[test]
fn create_sign_verify_process_uninstall_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let env = make(dir.path(), "app", 1, b"trusted app v1", &[]);
    let line = ok(&teep(&["suit", "verify", "--key", &signer_pub(), p(&env)]));
    assert_eq!(line.lines().count(), 1);
    assert!(line.starts_with("valid: manifest digest "), "{line}");

    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&teep(&["suit", "inspect", p(&env)]))).unwrap();
    assert_eq!(inspect["type"], "SUIT_Envelope");
    assert_eq!(inspect["manifest"]["manifest-sequence-number"], 1);
    assert_eq!(inspect["authentication-wrapper"]["digest-matches"], true);
    assert_eq!(inspect["authentication-wrapper"]["blocks"][0]["alg"], -9);
    let sections = inspect["manifest"]["sequences"].as_object().unwrap();
    for s in ["install", "validate", "invoke", "uninstall", "shared"] {
        assert!(sections.contains_key(s), "{s}");
    }

    let state = dir.path().join("state");
    let (out, report) = process(&state, &[p(&env)]);
    ok(&out);
    assert_eq!(report["suit-report-result"], true);
    assert_eq!(report["suit-report-nonce"], "a0a1a2a3");

    // Update, then a rollback attempt that leaves the state as it was (`make` reuses the
    // file name: keep v1 aside).
    let v1 = dir.path().join("app-v1.suit");
    std::fs::copy(&env, &v1).unwrap();
    let v2 = make(dir.path(), "app", 2, b"trusted app v2", &[]);
    ok(&process(&state, &[p(&v2)]).0);
    let before = snapshot(&state);
    let (out, report) = process(&state, &[p(&v1)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        report["suit-report-result"]["result-reason"],
        "condition-failed"
    );
    assert_eq!(snapshot(&state), before);

    let (out, report) = process(&state, &["--uninstall", "TEEP-Device/SecureFS/app/suit"]);
    ok(&out);
    assert_eq!(report["suit-report-result"], true);
}

#[test]
fn manifest_id_option_names_where_the_manifest_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let extra = [
        "--manifest-id",
        "TEEP-Device",
        "--manifest-id",
        "SecureFS",
        "--manifest-id",
        "custom.suit",
    ];
    let env = make(dir.path(), "app", 1, b"payload", &extra);
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&teep(&["suit", "inspect", p(&env)]))).unwrap();
    assert_eq!(
        inspect["manifest"]["manifest-component-id"],
        serde_json::json!([
            "544545502d446576696365",
            "5365637572654653",
            "637573746f6d2e73756974"
        ])
    );
    let state = dir.path().join("state");
    ok(&process(&state, &[p(&env)]).0);
    // Stored under the given ID, not the default one.
    let (out, _) = process(&state, &["--uninstall", "TEEP-Device/SecureFS/app/suit"]);
    assert_eq!(out.status.code(), Some(1));
    let (out, report) = process(&state, &["--uninstall", "TEEP-Device/SecureFS/custom.suit"]);
    ok(&out);
    assert_eq!(report["suit-report-result"], true);
}

#[test]
fn a_manifest_id_over_or_under_a_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.bin"), b"payload").unwrap();
    let payload = dir.path().join("p.bin");
    let out_path = dir.path().join("out.suit");
    let tee_pub = vector("suit/keys/fwenc-receiver-esdh-p256.cose-key-public.hex");
    let create = |manifest_id: &[&str], extra: &[&str]| {
        let mut args = vec![
            "suit",
            "create",
            "--component-id",
            "D",
            "--component-id",
            "app",
            "--seq",
            "1",
            "--payload",
            p(&payload),
            "--out",
            p(&out_path),
        ];
        for m in manifest_id {
            args.extend(["--manifest-id", m]);
        }
        args.extend_from_slice(extra);
        teep(&args)
    };
    for (manifest_id, extra) in [
        (&["D", "app", "suit"][..], &[][..]),
        (&["D"][..], &[][..]),
        (&["D", "app"][..], &[][..]),
        (
            &["D", "app.encrypted", "m"][..],
            &["--encrypt-to", tee_pub.as_str()][..],
        ),
    ] {
        let out = create(manifest_id, extra);
        assert_eq!(out.status.code(), Some(2), "{manifest_id:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("overlaps component"),
            "{manifest_id:?}"
        );
        assert!(!out_path.exists(), "{manifest_id:?}");
    }
    ok(&create(&["D", "app.suit"], &["--encrypt-to", &tee_pub]));
}

#[test]
fn verify_rejects_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let env = make(dir.path(), "app", 1, b"payload", &[]);
    let reject = |key: &str, file: &str, want: &str| {
        let out = teep(&["suit", "verify", "--key", key, file]);
        assert_eq!(out.status.code(), Some(1), "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{file}: {err}");
    };
    // Wrong key: our manifests carry a kid, so an unknown signer is named as such.
    reject(
        &vector("suit/keys/fwenc-dependent-signer-p256.cose-key-public.hex"),
        p(&env),
        "not trusted",
    );
    // Bad signature: flip one byte of the signature (found through inspect).
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&teep(&["suit", "inspect", p(&env)]))).unwrap();
    let sig = hex::decode(
        inspect["authentication-wrapper"]["blocks"][0]["signature"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let mut bytes = std::fs::read(&env).unwrap();
    let at = bytes
        .windows(sig.len())
        .position(|w| w == sig.as_slice())
        .unwrap();
    bytes[at + 10] ^= 1;
    let bad_sig = dir.path().join("bad-sig.suit");
    std::fs::write(&bad_sig, &bytes).unwrap();
    reject(&signer_pub(), p(&bad_sig), "signature does not verify");
    // Digest mismatch (the vector's signature covers the old digest).
    reject(
        &signer_pub(),
        &vector("suit/negative/teep-tc-uri.seq-tampered.hex"),
        "does not match the authenticated digest",
    );
    // Severed element tampered.
    reject(
        &signer_pub(),
        &vector("suit/negative/manifest-ex2.install-element-tampered.hex"),
        "does not match its digest",
    );
    // Malformed.
    let garbage = dir.path().join("garbage");
    std::fs::write(&garbage, b"\xa1\x02").unwrap();
    reject(&signer_pub(), p(&garbage), "malformed");
    // The published vectors verify (hex input, COSE_Key or PEM keys).
    for f in [
        "teep/suit_uri.hex",
        "teep/suit_integrated.hex",
        "teep/suit_personalization.hex",
        "suit/manifest/manifest-ex2-severable-text.hex",
    ] {
        ok(&teep(&[
            "suit",
            "verify",
            "--key",
            &signer_pub(),
            &vector(f),
        ]));
    }
}

#[test]
fn process_fetches_from_a_directory_and_fails_without_changing_state() {
    let dir = tempfile::tempdir().unwrap();
    let fetch = dir.path().join("www");
    std::fs::create_dir(&fetch).unwrap();
    let tc = hex_vector(&vector("suit/teep/teep-tc-binary.hex"));
    std::fs::write(fetch.join("8d82573a-926d-4754-9353-32dc29997f74.ta"), tc).unwrap();
    let state = dir.path().join("state");
    // Another TC is installed first, so the state is not empty.
    ok(&process(&state, &[p(&make(dir.path(), "other", 1, b"other", &[]))]).0);
    let before = snapshot(&state);
    // The tampered integrated payload fails image-match; nothing changes.
    let (out, report) = process(
        &state,
        &[&vector(
            "suit/negative/teep-tc-integrated.payload-tampered.hex",
        )],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        report["suit-report-result"]["result-record"]["section-name"],
        "install"
    );
    assert_eq!(
        report["suit-report-result"]["result-reason"],
        "condition-failed"
    );
    assert_eq!(snapshot(&state), before);
    let (out, _) = process(
        &state,
        &["--fetch-dir", p(&fetch), &vector("teep/suit_uri.hex")],
    );
    ok(&out);
    let (out, _) = process(
        &state,
        &[
            "--uninstall",
            "TEEP-Device/SecureFS/hex:8d82573a926d4754935332dc29997f74/suit",
        ],
    );
    ok(&out);
}

#[test]
fn encrypted_and_dependent_manifests_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let tee_pub = vector("suit/keys/fwenc-receiver-esdh-p256.cose-key-public.hex");
    let tee_priv = vector("suit/keys/fwenc-receiver-esdh-p256.cose-key-private.hex");
    let enc = make(
        dir.path(),
        "secret",
        1,
        b"secret payload",
        &["--encrypt-to", &tee_pub],
    );
    let state = dir.path().join("state");
    let (out, _) = process(&state, &[p(&enc)]);
    assert_eq!(out.status.code(), Some(1), "no decryption key");
    let (out, report) = process(&state, &["--decrypt-key", &tee_priv, p(&enc)]);
    ok(&out);
    assert_eq!(report["suit-report-result"], true);
    // The ciphertext is staged beside the TC, not under it.
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&teep(&["suit", "inspect", p(&enc)]))).unwrap();
    let hex_ids = |ids: &[&[&str]]| {
        serde_json::json!(
            ids.iter()
                .map(|id| id.iter().map(hex::encode).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        )
    };
    assert_eq!(
        inspect["manifest"]["common"]["components"],
        hex_ids(&[
            &["TEEP-Device", "SecureFS", "secret", "ta"],
            &["TEEP-Device", "SecureFS", "secret", "ta.encrypted"],
        ])
    );

    let lib = make(dir.path(), "lib", 1, b"library", &[]);
    let app = make(
        dir.path(),
        "user",
        1,
        b"user app",
        &["--depends-on", p(&lib)],
    );
    ok(&teep(&["suit", "verify", "--key", &signer_pub(), p(&app)]));
    let (out, _) = process(&state, &[p(&app)]);
    ok(&out);
    let (out, _) = process(&state, &["--uninstall", "TEEP-Device/SecureFS/user/suit"]);
    ok(&out);
}

#[test]
fn a_scoped_trust_anchor_installs_only_under_its_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let app = make(dir.path(), "app", 1, b"app", &[]);
    let other = make(dir.path(), "other", 1, b"other", &[]);
    let state = dir.path().join("state");
    let scoped = format!("{}=TEEP-Device/SecureFS/app", signer_pub());
    ok(&process_trusting(&state, &[&scoped], &[p(&app)]).0);
    let before = snapshot(&state);
    let (out, report) = process_trusting(&state, &[&scoped], &[p(&other)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        report["suit-report-result"]["result-reason"],
        "component-unauthorised"
    );
    assert_eq!(snapshot(&state), before);
    // The very envelope again (a TAM re-delivery) succeeds and changes nothing.
    let (out, report) = process_trusting(&state, &[&scoped], &[p(&app)]);
    ok(&out);
    assert_eq!(report["suit-report-result"], true);
    assert_eq!(snapshot(&state), before);
    // A second prefix for the same key widens its scope.
    let wider = format!("{}=TEEP-Device/SecureFS/other", signer_pub());
    ok(&process_trusting(&state, &[&scoped, &wider], &[p(&other)]).0);
    // An empty prefix is a usage error, not "everything".
    let empty = format!("{}=", signer_pub());
    let (out, _) = process_trusting(&state, &[&empty], &[p(&other)]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_tc_whose_signer_is_no_longer_trusted_can_still_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let app = make(dir.path(), "app", 1, b"app", &[]);
    let state = dir.path().join("state");
    ok(&process(&state, &[p(&app)]).0);
    // The TC signer's anchor is gone; another key is trusted instead.
    let other = vector("suit/keys/fwenc-dependent-signer-p256.cose-key-public.hex");
    let (out, report) = process_trusting(
        &state,
        &[&other],
        &["--uninstall", "TEEP-Device/SecureFS/app/suit"],
    );
    ok(&out);
    assert_eq!(report["suit-report-result"], true);
    let objects = std::fs::read_dir(state.join("objects")).unwrap().count();
    assert_eq!(objects, 0);
}

fn fwenc(name: &str) -> String {
    vector(&format!("suit/firmware-encryption/{name}"))
}

/// Writes `hex` (a hand-made COSE_Key) to `dir/name`; its path.
fn key_file(dir: &Path, name: &str, hex: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, hex).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The COSE_Mac0 (HMAC 256/256) and A128KW vectors of draft-ietf-suit-firmware-encryption
/// verify and install from the command line with symmetric COSE_Keys; keys of the wrong
/// type, algorithm, size or operations are refused before anything runs.
#[test]
fn mac_and_a128kw_envelopes_verify_and_process_with_symmetric_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mac = vector("suit/keys/fwenc-mac-hmac256.cose-key.hex");
    let write = fwenc("fwenc-manifest-aeskw-write.hex");
    let line = ok(&teep(&["suit", "verify", "--mac-key", &mac, &write]));
    assert!(line.contains("authenticated by a MAC key"), "{line}");
    // Without the MAC key, or with another one, the envelope does not verify.
    let out = teep(&["suit", "verify", "--key", &signer_pub(), &write]);
    assert_eq!(out.status.code(), Some(1));
    let other_mac = dir.path().join("other.mac");
    ok(&teep(&[
        "keys",
        "generate",
        "--alg",
        "hmac256",
        "--out",
        p(&other_mac),
    ]));
    let out = teep(&["suit", "verify", "--mac-key", p(&other_mac), &write]);
    assert_eq!(out.status.code(), Some(1));

    // The vector's KEK says alg -4 (A192KW) around a 16-byte k: refused; the same k as an
    // A128KW COSE_Key decrypts.
    let kek = key_file(
        dir.path(),
        "kek",
        &format!("a30104032220 50{}", "61".repeat(16)),
    );
    let state = dir.path().join("state");
    let mac_trust = ["--mac-key", mac.as_str()];
    let run = |state: &Path, extra: &[&str]| {
        let mut args = vec!["suit", "process", "--state-dir", p(state)];
        args.extend_from_slice(&mac_trust);
        args.extend_from_slice(extra);
        let out = teep(&args);
        let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        (out, json)
    };
    let (out, _) = run(
        &state,
        &[
            "--kek",
            &vector("suit/keys/fwenc-kek-a128kw.cose-key.hex"),
            &write,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("alg -4"));
    assert!(!state.exists(), "nothing ran");
    // A wrong KEK fails the install and changes nothing.
    let (out, report) = run(&state, &["--kek", p(&other_mac), &write]);
    assert_eq!(out.status.code(), Some(2), "an HMAC key is no KEK");
    assert_eq!(report, serde_json::Value::Null);
    let wrong = key_file(
        dir.path(),
        "wrong",
        &format!("a30104032220 50{}", "62".repeat(16)),
    );
    ok(&process_trusting(
        &state,
        &[&signer_pub()],
        &[p(&make(dir.path(), "a", 1, b"a", &[]))],
    )
    .0);
    let before = snapshot(&state);
    let (out, report) = run(&state, &["--kek", &wrong, &write]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        report["suit-report-result"]["error"],
        "decryption failed: COSE decryption failed"
    );
    assert_eq!(snapshot(&state), before);

    let plaintext = hex_vector(&fwenc("fwenc-plaintext.hex"));
    let (out, report) = run(&state, &["--kek", &kek, &write]);
    ok(&out);
    assert_eq!(report["suit-report-result"], true);
    assert!(snapshot(&state).iter().any(|(_, data)| *data == plaintext));

    // Fetch into a staging component, then copy with decryption.
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    let ciphertext = hex_vector(&fwenc("fwenc-ciphertext-aeskw-a128gcm.hex"));
    std::fs::write(www.join("encrypted-firmware"), ciphertext).unwrap();
    let fresh = dir.path().join("fresh");
    let (out, report) = run(
        &fresh,
        &[
            "--kek",
            &kek,
            "--fetch-dir",
            p(&www),
            &fwenc("fwenc-manifest-aeskw-fetch-copy.hex"),
        ],
    );
    ok(&out);
    assert_eq!(report["suit-report-result"], true);
    assert!(snapshot(&fresh).iter().any(|(_, data)| *data == plaintext));

    // Keys that are not what the option needs, each refused with the reason (exit 2).
    let k32 = "61".repeat(32);
    for (option, key, reason) in [
        ("--mac-key", signer_pub(), "not a COSE_Key"),
        (
            "--mac-key",
            vector("suit/keys/fwenc-receiver-esdh-p256.cose-key-public.hex"),
            "not a symmetric COSE_Key",
        ),
        ("--mac-key", kek.clone(), "alg -3"),
        // kty 4 without alg, k of 16 bytes: too short for HMAC 256/256.
        (
            "--mac-key",
            key_file(
                dir.path(),
                "short",
                &format!("a2010420 50{}", "61".repeat(16)),
            ),
            "16 bytes",
        ),
        // key_ops [MAC create] only: not for verifying.
        (
            "--mac-key",
            key_file(dir.path(), "ops", &format!("a40104030504810920 5820{k32}")),
            "key_ops",
        ),
        // No k at all.
        ("--kek", key_file(dir.path(), "nok", "a201040322"), "no k"),
        ("--kek", mac.clone(), "alg 5"),
    ] {
        // A MAC key is checked by verify; a KEK only by process.
        let out = match option {
            "--kek" => run(&fresh, &[option, &key, &write]).0,
            _ => teep(&["suit", "verify", option, &key, &write]),
        };
        assert_eq!(out.status.code(), Some(2), "{key}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(reason), "{key}: {stderr}");
    }
}

/// A CBOR byte string header and contents (hand-made envelopes).
fn bstr(bytes: &[u8]) -> Vec<u8> {
    let mut out = match u16::try_from(bytes.len()).unwrap() {
        n @ 0..=23 => vec![0x40 | n as u8],
        n @ 24..=255 => vec![0x58, n as u8],
        n => vec![0x59, (n >> 8) as u8, n as u8],
    };
    out.extend_from_slice(bytes);
    out
}

/// `teep suit inspect` and `teep inspect` show members they do not know (an extension a
/// newer or other implementation wrote) as `unknown-KEY`; verify and process still refuse
/// them, with the state unchanged.
#[test]
fn unknown_members_are_shown_by_inspect_and_refused_by_processing() {
    let provider = teep_cose::default_provider();
    // {1: 1, 2: 7, 3: << {2: [[h'00']]} >>, 99: [1, "abc"]}
    let value = "820163616263";
    let manifest =
        hex::decode(format!("a401010207 03 46a10281814100 1863{value}").replace(' ', "")).unwrap();
    let unsigned = teep_suit::builder::unsigned_envelope(&manifest, &[], provider).unwrap();
    let env = teep_suit::Envelope::decode(&unsigned).unwrap();
    let key = teep_cose::PrivateKey::from_any(&std::fs::read(signer_priv()).unwrap()).unwrap();
    let signer = provider.signer(&key, key.default_algorithm()).unwrap();
    let opts = teep_cose::SignOptions {
        detached: true,
        ..teep_cose::SignOptions::default()
    };
    let block = teep_cose::sign1(signer.as_ref(), env.authentication.digest_cbor, &opts).unwrap();
    let auth = [
        vec![0x82],
        bstr(env.authentication.digest_cbor),
        bstr(&block),
    ]
    .concat();
    let with_extra = |extra: &str| {
        let head = if extra.is_empty() { 0xa2 } else { 0xa3 };
        let mut out = vec![head, 0x02];
        out.extend(bstr(&auth));
        out.push(0x03);
        out.extend_from_slice(env.manifest_bstr);
        out.extend(hex::decode(extra).unwrap());
        out
    };
    let dir = tempfile::tempdir().unwrap();
    let in_manifest = dir.path().join("m99.suit");
    std::fs::write(&in_manifest, with_extra("")).unwrap();
    let in_both = dir.path().join("e99.suit");
    std::fs::write(&in_both, with_extra(&format!("1863{value}"))).unwrap();

    for args in [&["suit", "inspect"][..], &["inspect"][..]] {
        let mut args = args.to_vec();
        args.push(p(&in_both));
        let view: serde_json::Value = serde_json::from_str(&ok(&teep(&args))).unwrap();
        assert_eq!(view["type"], "SUIT_Envelope", "{args:?}");
        assert_eq!(view["unknown-99"], value, "{args:?}");
        assert_eq!(view["manifest"]["unknown-99"], value, "{args:?}");
        assert_eq!(view["manifest"]["manifest-sequence-number"], 7, "{args:?}");
    }

    for (file, container) in [(&in_manifest, "manifest"), (&in_both, "envelope")] {
        let out = teep(&["suit", "verify", "--key", &signer_pub(), p(file)]);
        assert_eq!(out.status.code(), Some(1));
        let want = format!("unsupported {container} member 99");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(&want),
            "{want}"
        );
    }
    let state = dir.path().join("state");
    ok(&process(&state, &[p(&make(dir.path(), "a", 1, b"a", &[]))]).0);
    let before = snapshot(&state);
    let (out, report) = process(&state, &[p(&in_manifest)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        report["suit-report-result"]["error"],
        "unsupported manifest member 99"
    );
    assert_eq!(snapshot(&state), before);
}
