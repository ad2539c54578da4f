//! The software TEE through `SimTee`: identity, install and invocation through the SUIT
//! processor, sealing (no plaintext, every flipped byte detected, blobs of one store
//! refused by the other), rollback via the counter stand-ins, root-key checks, and the
//! sandbox (install-time validation, fuel, memory, store isolation).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod sim_common;

use std::os::unix::fs::PermissionsExt;

use sim_common::*;
use teep_agent::sim::{RuntimeError, SimError, SimTee, is_ta};
use teep_cose::{SignOptions, TrustStore, VerifyContext};
use teep_suit::{ComponentId, SuitError};

/// Installs counter-v1 at `app/ta` and its greeting perso; returns the TA envelope.
fn install_counter(fx: &Fixture, tee: &mut SimTee, app: &str) -> Vec<u8> {
    let ta = fx.envelope(&ta_id(app), 1, COUNTER_V1);
    fx.install(tee, &ta).result.unwrap();
    let perso = fx.perso_envelope(&greeting_id(app), 1, GREETING, &ta);
    fx.install(tee, &perso).result.unwrap();
    ta
}

fn output(tee: &mut SimTee, id: &ComponentId, input: &[u8]) -> String {
    String::from_utf8(tee.invoke(id, input).unwrap().output).unwrap()
}

fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

/// Stores its input (when not empty) under "secret" in its own store, then outputs what
/// it finds there ("none" when nothing).
const VAULT: &str = r#"(module
  (import "teep" "input_read" (func $input_read (param i32 i32) (result i32)))
  (import "teep" "kv_put" (func $kv_put (param i32 i32 i32 i32) (result i32)))
  (import "teep" "kv_get" (func $kv_get (param i32 i32 i32 i32) (result i32)))
  (import "teep" "output_write" (func $out (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "secret")
  (data (i32.const 16) "none")
  (func (export "invoke") (result i32)
    (local $n i32)
    (local.set $n (call $input_read (i32.const 64) (i32.const 1024)))
    (if (i32.gt_s (local.get $n) (i32.const 0))
      (then (drop (call $kv_put (i32.const 0) (i32.const 6) (i32.const 64) (local.get $n)))))
    (local.set $n (call $kv_get (i32.const 0) (i32.const 6) (i32.const 2048) (i32.const 1024)))
    (if (i32.lt_s (local.get $n) (i32.const 0))
      (then (return (call $out (i32.const 16) (i32.const 4)))))
    (call $out (i32.const 2048) (local.get $n))))"#;

#[test]
fn first_start_creates_an_identity_that_later_starts_keep() {
    let fx = Fixture::new();
    let tee = fx.open();
    let ueid = tee.ueid().to_vec();
    assert_eq!(ueid.len(), 33);
    assert_eq!(ueid[0], 0x01, "RFC 9711 random UEID type");
    let public = tee.public_identity();
    let json = serde_json::to_value(&public).unwrap();
    for key in ["teep_key", "attestation_key", "decryption_key"] {
        assert!(
            json[key]["pem"]
                .as_str()
                .unwrap()
                .contains("BEGIN PUBLIC KEY")
        );
        assert_eq!(json[key]["thumbprint"].as_str().unwrap().len(), 64);
    }
    assert_eq!(json["ueid"], hex::encode(&ueid));
    // Three distinct keys.
    let keys = [
        tee.teep_public_key(),
        tee.attestation_public_key(),
        tee.decryption_public_key(),
    ];
    assert!(keys[0] != keys[1] && keys[1] != keys[2] && keys[0] != keys[2]);
    let mode = std::fs::metadata(&fx.config.root_key)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!fx.config.root_key.starts_with(fx.state_dir()));
    drop(tee);
    let again = fx.open();
    assert_eq!(again.ueid(), ueid);
    assert_eq!(again.public_identity(), public);
}

#[test]
fn the_teep_and_attestation_signers_sign_with_the_exported_keys() {
    let fx = Fixture::new();
    let tee = fx.open();
    for (signer, key) in [
        (tee.teep_signer(), tee.teep_public_key()),
        (tee.attestation_signer(), tee.attestation_public_key()),
    ] {
        let signed = teep_cose::sign1(signer, b"payload", &SignOptions::default()).unwrap();
        let mut trust = TrustStore::new();
        trust.add_key(key.clone());
        let cx = VerifyContext::new(tee.provider(), &trust);
        assert_eq!(
            teep_cose::verify_sign1(&signed, &cx).unwrap().payload,
            b"payload"
        );
    }
    // The TEEP key does not verify what the attestation key signed.
    let signed = teep_cose::sign1(tee.attestation_signer(), b"x", &SignOptions::default()).unwrap();
    let mut trust = TrustStore::new();
    trust.add_key(tee.teep_public_key().clone());
    assert!(teep_cose::verify_sign1(&signed, &VerifyContext::new(tee.provider(), &trust)).is_err());
}

#[test]
fn installed_tas_run_with_their_perso_and_keep_their_store_across_restarts_and_updates() {
    let fx = Fixture::new();
    let mut tee = fx.open();
    install_counter(&fx, &mut tee, "app");
    let id = ta_id("app");
    assert_eq!(output(&mut tee, &id, b"hi"), "Hello from perso, call #1");
    assert_eq!(output(&mut tee, &id, b"hi"), "Hello from perso, call #2");
    drop(tee);
    let mut tee = fx.open();
    assert_eq!(output(&mut tee, &id, b"hi"), "Hello from perso, call #3");
    let v2 = fx.envelope(&id, 2, COUNTER_V2);
    fx.install(&mut tee, &v2).result.unwrap();
    assert_eq!(
        output(&mut tee, &id, b"hi"),
        "v2: HELLO FROM PERSO, call #5"
    );
}

#[test]
fn an_encrypted_tc_is_decrypted_with_the_device_key() {
    let fx = Fixture::new();
    let mut tee = fx.open();
    let id = ta_id("secret");
    let mut spec = spec(&id, 1, &wasm(VAULT));
    spec.encrypt_to = Some(tee.decryption_public_key().clone());
    let envelope = fx.envelope_with(spec);
    assert!(
        !contains(&envelope, &wasm(VAULT)[8..]),
        "the envelope is encrypted"
    );
    fx.install(&mut tee, &envelope).result.unwrap();
    assert_eq!(output(&mut tee, &id, b"kept"), "kept");
}

#[test]
fn one_ta_cannot_read_another_tas_store() {
    let fx = Fixture::new();
    let mut tee = fx.open();
    for app in ["a", "b"] {
        let env = fx.envelope(&ta_id(app), 1, &wasm(VAULT));
        fx.install(&mut tee, &env).result.unwrap();
    }
    assert_eq!(output(&mut tee, &ta_id("a"), b"A's secret"), "A's secret");
    // Same module, same key, another component: another store.
    assert_eq!(output(&mut tee, &ta_id("b"), b""), "none");
    assert_eq!(output(&mut tee, &ta_id("b"), b"B's"), "B's");
    assert_eq!(output(&mut tee, &ta_id("a"), b""), "A's secret");
    drop(tee);
    let mut tee = fx.open();
    assert_eq!(output(&mut tee, &ta_id("a"), b""), "A's secret");
    assert_eq!(output(&mut tee, &ta_id("b"), b""), "B's");
}

#[test]
fn only_installed_ta_components_are_invoked() {
    let fx = Fixture::new();
    let mut tee = fx.open();
    install_counter(&fx, &mut tee, "app");
    let perso = greeting_id("app");
    assert!(matches!(tee.invoke(&perso, b""), Err(SimError::NotATa(id)) if id == perso));
    let missing = ta_id("missing");
    assert!(matches!(
        tee.invoke(&missing, b""),
        Err(SimError::NotInstalled(_))
    ));
    assert!(is_ta(&ComponentId::from_strs(&["x", "app.wasm"])));
    assert!(!is_ta(&ComponentId::from_strs(&["x", "ta.encrypted"])));
    assert!(!is_ta(&ComponentId::from_strs(&["ta", "config"])));
    assert!(!is_ta(&ComponentId(Vec::new())));
}

#[test]
fn a_ta_image_that_is_no_valid_module_fails_the_install_and_changes_nothing() {
    let fx = Fixture::new();
    let mut tee = fx.open();
    install_counter(&fx, &mut tee, "app");
    let before = tee.snapshot().unwrap();
    let hostile: [(&str, Vec<u8>); 5] = [
        ("an ELF image", b"\x7fELF\x02\x01\x01\0not wasm".to_vec()),
        (
            "the text format",
            br#"(module (func (export "invoke") (result i32) i32.const 0))"#.to_vec(),
        ),
        (
            "truncated wasm",
            COUNTER_V1[..COUNTER_V1.len() / 2].to_vec(),
        ),
        (
            "a forbidden import",
            wasm(
                r#"(module (import "wasi_snapshot_preview1" "fd_write"
                    (func (param i32 i32 i32 i32) (result i32)))
                  (memory (export "memory") 1)
                  (func (export "invoke") (result i32) i32.const 0))"#,
            ),
        ),
        (
            "no invoke export",
            wasm(r#"(module (memory (export "memory") 1))"#),
        ),
    ];
    for (what, image) in &hostile {
        // A new TA, and an update of the installed one: both refused.
        for (id, seq) in [(ta_id("new"), 1), (ta_id("app"), 2)] {
            let outcome = fx.install(&mut tee, &fx.envelope(&id, seq, image));
            let failure = outcome.result.unwrap_err();
            assert!(
                matches!(&failure.error, SuitError::ComponentRejected { component, .. } if *component == id),
                "{what}: {failure:?}"
            );
            assert_eq!(
                failure.error.teep_err_code(),
                teep_suit::TeepErrCode::ManifestProcessingFailed
            );
            assert_eq!(tee.snapshot().unwrap(), before, "{what}");
        }
    }
    assert_eq!(
        output(&mut tee, &ta_id("app"), b""),
        "Hello from perso, call #1"
    );
    drop(tee);
    let tee = fx.open();
    let mut after = tee.snapshot().unwrap();
    // Only the TA's counter changed (the invocation above).
    after[1] = before[1].clone();
    assert_eq!(after, before);
    // The same bytes under a name that is no TA are data, and install.
    let mut tee = tee;
    let data = ComponentId::from_strs(&["TEEP-Device", "SecureFS", "app", "notes.bin"]);
    fx.install(&mut tee, &fx.envelope(&data, 1, &hostile[0].1))
        .result
        .unwrap();
}

#[test]
fn fuel_and_memory_limits_hold_through_the_simtee_and_leave_the_store_unchanged() {
    let fx = Fixture::new();
    let mut tee = fx.open();
    let spin = wasm(
        r#"(module
          (import "teep" "kv_put" (func $kv_put (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "invoke") (result i32)
            (drop (call $kv_put (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)))
            (loop $l (br $l))
            (i32.const 0)))"#,
    );
    let grow = wasm(
        r#"(module
          (import "teep" "kv_put" (func $kv_put (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "invoke") (result i32)
            (drop (call $kv_put (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)))
            (drop (memory.grow (i32.const 1000)))
            (i32.const 0)))"#,
    );
    for (app, image) in [("spin", &spin), ("grow", &grow)] {
        fx.install(&mut tee, &fx.envelope(&ta_id(app), 1, image))
            .result
            .unwrap();
    }
    let before = tee.snapshot().unwrap();
    assert!(matches!(
        tee.invoke(&ta_id("spin"), b""),
        Err(SimError::Runtime(RuntimeError::OutOfFuel))
    ));
    assert!(matches!(
        tee.invoke(&ta_id("grow"), b""),
        Err(SimError::Runtime(RuntimeError::MemoryLimit))
    ));
    assert_eq!(tee.snapshot().unwrap(), before);
}

#[test]
fn the_agent_state_is_kept_sealed_across_restarts() {
    let fx = Fixture::new();
    let mut tee = fx.open();
    assert_eq!(tee.agent_state().unwrap(), None);
    tee.set_agent_state(b"agent state v1").unwrap();
    tee.set_agent_state(b"agent state v2").unwrap();
    drop(tee);
    assert_eq!(
        fx.open().agent_state().unwrap().as_deref(),
        Some(&b"agent state v2"[..])
    );
}

/// A SimTee holding a TA, perso, a TA store value and agent state.
fn populated() -> (Fixture, Vec<u8>) {
    let fx = Fixture::new();
    let mut tee = fx.open();
    install_counter(&fx, &mut tee, "app");
    assert_eq!(
        output(&mut tee, &ta_id("app"), b""),
        "Hello from perso, call #1"
    );
    let vault = wasm(VAULT);
    fx.install(&mut tee, &fx.envelope(&ta_id("vault"), 1, &vault))
        .result
        .unwrap();
    output(&mut tee, &ta_id("vault"), b"the vault's stored value");
    tee.set_agent_state(b"the agent's own state").unwrap();
    let ueid = tee.ueid().to_vec();
    (fx, ueid)
}

#[test]
fn the_state_directory_holds_no_plaintext() {
    let (fx, ueid) = populated();
    let tee = fx.open();
    let root_key = std::fs::read(&fx.config.root_key).unwrap();
    let mut known: Vec<(&str, Vec<u8>)> = vec![
        ("TA module", COUNTER_V1[8..40].to_vec()),
        ("TA data segment", b"greeting".to_vec()),
        ("perso data", GREETING.to_vec()),
        ("TA store value", b"the vault's stored value".to_vec()),
        ("agent state", b"the agent's own state".to_vec()),
        ("ueid", ueid),
        ("root key", root_key),
        ("component id", b"SecureFS".to_vec()),
    ];
    for (what, key) in [
        ("TEEP key", tee.teep_public_key()),
        ("attestation key", tee.attestation_public_key()),
        ("decryption key", tee.decryption_public_key()),
    ] {
        // The sealed identity holds each key as a COSE_Key; its public x would show.
        known.push((what, key.as_bytes()[1..33].to_vec()));
    }
    let files = files(fx.state_dir());
    assert!(files.len() > 6, "{files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for (what, needle) in &known {
            assert!(
                !contains(&bytes, needle),
                "{what} in plaintext in {}",
                file.display()
            );
        }
    }
}

/// Opens the TEE and reads everything in it.
fn open_and_read_all(fx: &Fixture) -> Result<(), SimError> {
    let mut tee = SimTee::open(&fx.config)?;
    tee.snapshot()?;
    tee.agent_state()?;
    tee.invoke(&ta_id("vault"), b"")?;
    Ok(())
}

#[test]
fn a_flipped_byte_in_any_sealed_file_is_detected() {
    let (fx, _) = populated();
    let files = files(fx.state_dir());
    for (k, file) in files.iter().enumerate() {
        let rel = file.strip_prefix(fx.dir.path()).unwrap();
        let len = std::fs::metadata(file).unwrap().len() as usize;
        // The nonce, the ciphertext and the tag.
        for at in [0, len / 2, len - 1] {
            let copy = fx.copy();
            let target = copy.dir.path().join(rel);
            let mut bytes = std::fs::read(&target).unwrap();
            bytes[at] ^= 0x01;
            std::fs::write(&target, &bytes).unwrap();
            let result = open_and_read_all(&copy);
            assert!(
                matches!(result, Err(SimError::Store(SuitError::StateTampered(_)))),
                "file {k} {} byte {at}: {result:?}",
                rel.display()
            );
        }
    }
    open_and_read_all(&fx).unwrap();
}

#[test]
fn a_blob_of_one_store_does_not_open_in_the_other() {
    let (fx, _) = populated();
    let copy = fx.copy();
    let state = copy.state_dir();
    std::fs::copy(state.join("tee/index"), state.join("suit/index")).unwrap();
    assert!(matches!(
        SimTee::open(&copy.config),
        Err(SimError::Store(SuitError::StateTampered(_)))
    ));
}

#[test]
fn restoring_an_older_copy_of_the_state_is_detected() {
    let fx = Fixture::new();
    let mut tee = fx.open();
    install_counter(&fx, &mut tee, "app");
    drop(tee);
    let old = fx.copy();
    let mut tee = fx.open();
    fx.install(&mut tee, &fx.envelope(&ta_id("app"), 2, COUNTER_V2))
        .result
        .unwrap();
    assert_eq!(
        output(&mut tee, &ta_id("app"), b""),
        "v2: HELLO FROM PERSO, call #2"
    );
    drop(tee);
    // The host puts back the whole old state directory (or only one store of it).
    for part in ["suit", "tee"] {
        let attacked = fx.copy();
        let dir = attacked.state_dir().join(part);
        std::fs::remove_dir_all(&dir).unwrap();
        copy_dir(&old.state_dir().join(part), &dir);
        let result = SimTee::open(&attacked.config);
        assert!(
            matches!(
                result,
                Err(SimError::Store(SuitError::StateRolledBack { .. }))
            ),
            "{part}: {result:?}"
        );
    }
    let attacked = fx.copy();
    std::fs::remove_dir_all(attacked.state_dir()).unwrap();
    copy_dir(old.state_dir(), attacked.state_dir());
    assert!(matches!(
        SimTee::open(&attacked.config),
        Err(SimError::Store(SuitError::StateRolledBack { .. }))
    ));
    // Without the counters it would have opened: the check is the counter's.
    let mut tee = old.open();
    assert_eq!(
        output(&mut tee, &ta_id("app"), b""),
        "Hello from perso, call #1"
    );
}

#[test]
fn a_root_key_others_can_read_or_of_the_wrong_size_is_refused() {
    let fx = Fixture::new();
    drop(fx.open());
    let key = &fx.config.root_key;
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(
        SimTee::open(&fx.config),
        Err(SimError::RootKeyExposed { mode: 0o640, .. })
    ));
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let good = std::fs::read(key).unwrap();
    std::fs::write(key, &good[..31]).unwrap();
    assert!(matches!(
        SimTee::open(&fx.config),
        Err(SimError::RootKeyInvalid(_))
    ));
    // Another key of the right size: nothing opens.
    std::fs::write(key, [7u8; 32]).unwrap();
    assert!(matches!(
        SimTee::open(&fx.config),
        Err(SimError::Store(SuitError::StateTampered(_)))
    ));
    std::fs::write(key, &good).unwrap();
    fx.open();
}

#[test]
fn a_missing_counter_is_refused_while_the_root_key_exists() {
    let fx = Fixture::new();
    drop(fx.open());
    for name in ["suit", "tee"] {
        let copy = fx.copy();
        std::fs::remove_file(copy.config.counters.join(name)).unwrap();
        assert!(matches!(
            SimTee::open(&copy.config),
            Err(SimError::Counter(_))
        ));
        let copy = fx.copy();
        std::fs::write(copy.config.counters.join(name), [0u8; 7]).unwrap();
        assert!(matches!(
            SimTee::open(&copy.config),
            Err(SimError::Counter(_))
        ));
    }
}

#[test]
fn the_simtee_can_move_to_a_blocking_task() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<SimTee>();
}
