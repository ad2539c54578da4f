//! The admin operations behave the same on MemoryStore, SQLite and (when
//! `TEEP_TEST_DATABASE_URL` is set) PostgreSQL, in database `test_admin` with a fresh
//! schema per run: one script of operations, every answer and the final state compared.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use sqlx::Connection;
use teep_proto::ComponentId;
use teep_tam::sql::SqlStore;
use teep_tam::store::{
    AdminError, AdminStore, AuditEntry, Changes, Device, DeviceId, DevicePage, LoadRequest, Loaded,
    MemoryState, PolicyScope, Registration, SignerRecord, TcPolicy, TcRelease,
};
use teep_tam::{MemoryStore, Store};

fn cid(name: &str) -> ComponentId {
    ComponentId(vec![b"TEEP-Device".to_vec(), name.as_bytes().to_vec()])
}

fn release(name: &str, sequence: u64, signer: u8) -> TcRelease {
    TcRelease {
        manifest_id: cid(name),
        sequence,
        digest: [sequence as u8; 32],
        signer: Some([signer; 32]),
        envelope: vec![signer, sequence as u8].into(),
        depends_on: vec![],
    }
}

/// Runs the script on `store`, returning every answer as text and the device view.
async fn script<S: AdminStore + Store>(store: &S) -> (Vec<String>, Loaded) {
    let mut out = Vec::new();
    let mut note = |what: &str, r: Result<String, AdminError>| out.push(format!("{what}: {r:?}"));
    let signer = |name: &str, n: u8| SignerRecord {
        name: name.into(),
        key: vec![n; 4],
        scope: vec![ComponentId::default()],
        ca: None,
    };
    note(
        "signer b",
        store
            .put_signer(&signer("b", 2))
            .await
            .map(|()| String::new()),
    );
    note(
        "signer a",
        store
            .put_signer(&signer("a", 1))
            .await
            .map(|()| String::new()),
    );
    note(
        "signer a again",
        store
            .put_signer(&signer("a", 3))
            .await
            .map(|()| String::new()),
    );
    note(
        "remove b",
        store.remove_signer("b").await.map(|()| String::new()),
    );
    note(
        "remove b again",
        store.remove_signer("b").await.map(|()| String::new()),
    );
    note(
        "signer ca",
        store
            .put_signer(&SignerRecord {
                name: "ca".into(),
                key: vec![],
                scope: vec![cid("vendor")],
                ca: Some(vec![0x30, 1, 2]),
            })
            .await
            .map(|()| String::new()),
    );
    note("signers", store.signers().await.map(|s| format!("{s:?}")));
    for (what, r) in [
        ("app 1", release("app", 1, 1)),
        ("app 1 again", release("app", 1, 1)),
        ("app 0", release("app", 0, 1)),
        ("app 2 other signer", release("app", 2, 9)),
        ("app 2", release("app", 2, 1)),
        ("lib 5", release("lib", 5, 2)),
        ("big", release("big", u64::MAX, 2)),
    ] {
        note(what, store.add_release(&r).await.map(|()| String::new()));
    }
    note(
        "revoke lib",
        store.revoke_tc(&cid("lib")).await.map(|()| String::new()),
    );
    note(
        "revoke lib again",
        store.revoke_tc(&cid("lib")).await.map(|()| String::new()),
    );
    note(
        "revoke none",
        store.revoke_tc(&cid("none")).await.map(|()| String::new()),
    );
    note(
        "lib 6 revoked",
        store
            .add_release(&release("lib", 6, 2))
            .await
            .map(|()| String::new()),
    );
    note("releases", store.releases().await.map(|r| format!("{r:?}")));
    note(
        "revoked",
        store.revoked_tcs().await.map(|r| format!("{r:?}")),
    );
    let policy = TcPolicy {
        install: vec![cid("app"), cid("lib")],
        requestable: vec![cid("lib")],
    };
    let dev = DeviceId([7; 32]);
    note(
        "class policy",
        store
            .set_policy(PolicyScope::Class("phone"), &policy)
            .await
            .map(|()| String::new()),
    );
    note(
        "device policy",
        store
            .set_policy(PolicyScope::Device(DeviceId([8; 32])), &TcPolicy::default())
            .await
            .map(|()| String::new()),
    );
    note("policies", store.policies().await.map(|p| format!("{p:?}")));
    note(
        "revoke unknown device",
        store.revoke_device(&dev).await.map(|()| String::new()),
    );
    store
        .commit(&Changes {
            device: Some(Device {
                id: dev,
                key: vec![1, 2, 3],
                class: Some("phone".into()),
                revoked: false,
                suite: None,
                attested_at: Some(10),
                failed: Vec::new(),
                attestation_exempt: false,
                installed: vec![],
            }),
            audit: vec![AuditEntry {
                at: 42,
                device: Some(dev),
                event: "contact".into(),
                detail: None,
            }],
            ..Changes::default()
        })
        .await
        .unwrap();
    note(
        "revoke device",
        store.revoke_device(&dev).await.map(|()| String::new()),
    );
    // Registering the revoked device again changes its class and exemption, never its
    // revocation or key; an unknown one is created unrevoked.
    let register = |id: DeviceId, class: Option<&str>, exempt: Option<bool>| Registration {
        id,
        key: vec![9, 9],
        class: class.map(Into::into),
        attestation_exempt: exempt,
    };
    for (what, r) in [
        ("register revoked", register(dev, Some("phone"), Some(true))),
        ("register revoked again", register(dev, None, None)),
        ("register new", register(DeviceId([5; 32]), None, None)),
        (
            "register new again",
            register(DeviceId([5; 32]), Some("phone"), Some(false)),
        ),
        (
            "register exempt",
            register(DeviceId([6; 32]), None, Some(true)),
        ),
    ] {
        note(what, store.register_device(&r).await.map(|c| c.to_string()));
    }
    note(
        "class of unknown",
        store
            .set_device_class(&DeviceId([4; 32]), Some("x"))
            .await
            .map(|()| String::new()),
    );
    note(
        "class cleared",
        store
            .set_device_class(&DeviceId([6; 32]), None)
            .await
            .map(|()| String::new()),
    );
    note(
        "class set",
        store
            .set_device_class(&DeviceId([6; 32]), Some("phone"))
            .await
            .map(|()| String::new()),
    );
    let ids = |page: DevicePage| async move {
        let listed = store.devices(page).await?;
        Ok(format!(
            "{:?}",
            listed.iter().map(|d| d.device.id).collect::<Vec<_>>()
        ))
    };
    note(
        "devices",
        store
            .devices(DevicePage::ALL)
            .await
            .map(|d| format!("{d:?}")),
    );
    let after = |after: Option<u8>, limit| DevicePage::After {
        after: after.map(|n| DeviceId([n; 32])),
        limit,
    };
    for (what, page) in [
        ("first page", after(None, 2)),
        ("page after 5", after(Some(5), 2)),
        ("page between ids", after(Some(5), 1)),
        ("page past the last", after(Some(0xff), 10)),
    ] {
        note(what, ids(page).await);
    }
    note("one", ids(DevicePage::One(DeviceId([6; 32]))).await);
    note("one unknown", ids(DevicePage::One(DeviceId([9; 32]))).await);
    for at in 0..5 {
        let e = AuditEntry {
            at,
            device: None,
            event: format!("admin {at}"),
            detail: (at % 2 == 0).then(|| format!("detail {at}")),
        };
        note(
            "append",
            store.append_audit(&e).await.map(|()| String::new()),
        );
    }
    note(
        "audit page",
        store.audit(2, 2).await.map(|a| format!("{a:?}")),
    );
    note(
        "audit past the end",
        store.audit(100, 2).await.map(|a| format!("{a:?}")),
    );
    let view = store
        .load(&LoadRequest::Device {
            id: dev,
            class: None,
        })
        .await
        .unwrap();
    (out, view)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_operations_agree_on_every_store() {
    let memory = MemoryStore::new();
    let (expected, view) = script(&memory).await;
    let state = memory.snapshot();
    // The repository rules and lookups answered as the rules say.
    let answers: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert!(answers.contains(&"remove b again: Err(NotFound(\"signer\"))"));
    assert!(answers.contains(&"app 1 again: Err(Rollback { latest: 1, offered: 1 })"));
    assert!(answers.contains(&"app 0: Err(Rollback { latest: 1, offered: 0 })"));
    assert!(answers.contains(&"app 2 other signer: Err(SignerChanged)"));
    assert!(answers.contains(&"app 2: Ok(\"\")"));
    assert!(answers.contains(&"revoke none: Err(NotFound(\"TC\"))"));
    assert!(answers.contains(&"lib 6 revoked: Err(TcRevoked)"));
    assert!(answers.contains(&"revoke unknown device: Err(NotFound(\"device\"))"));
    assert_eq!(state.releases.len(), 4);
    assert_eq!(state.revoked_tcs, [cid("lib")]);
    let revoked = &state.devices[&DeviceId([7; 32])];
    assert!(revoked.revoked, "registration un-revoked a device");
    assert_eq!(revoked.key, [1, 2, 3], "registration replaced a known key");
    assert_eq!(revoked.attested_at, Some(10));
    assert_eq!(revoked.class.as_deref(), Some("phone"));
    assert!(revoked.attestation_exempt);
    assert!(answers.contains(&"register revoked: Ok(\"false\")"));
    assert!(answers.contains(&"register new: Ok(\"true\")"));
    assert!(answers.contains(&"class of unknown: Err(NotFound(\"device\"))"));
    let new = &state.devices[&DeviceId([5; 32])];
    assert!(!new.revoked && !new.attestation_exempt);
    assert_eq!(new.class.as_deref(), Some("phone"));
    assert_eq!(new.key, [9, 9]);
    let exempt = &state.devices[&DeviceId([6; 32])];
    assert!(exempt.attestation_exempt);
    assert_eq!(exempt.class.as_deref(), Some("phone"));
    assert_eq!(state.audit[1].detail.as_deref(), Some("detail 0"));
    assert_eq!(state.signers["ca"].ca.as_deref(), Some(&[0x30, 1, 2][..]));
    // A revoked TC leaves the policy the engine sees (so it is unlinked), not the stored one.
    let Loaded::Device(v) = &view else {
        panic!("{view:?}")
    };
    assert_eq!(v.policy.install, [cid("app")]);
    assert!(v.policy.requestable.is_empty());
    assert_eq!(
        state.class_policy["phone"].install,
        [cid("app"), cid("lib")]
    );

    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqlStore::open_data_dir(dir.path()).await.unwrap();
    compare("sqlite", &sqlite, &expected, &view, &state).await;
    match std::env::var("TEEP_TEST_DATABASE_URL") {
        Ok(base) => {
            let (url, cleanup) = postgres(&base, "script").await;
            let pg = SqlStore::connect(&url).await.unwrap();
            compare("postgres", &pg, &expected, &view, &state).await;
            pg.close().await;
            cleanup.await;
        }
        Err(_) => println!("skipped: TEEP_TEST_DATABASE_URL not set (PostgreSQL)"),
    }
}

async fn compare(
    name: &str,
    store: &SqlStore,
    expected: &[String],
    view: &Loaded,
    state: &MemoryState,
) {
    let (answers, got_view) = script(store).await;
    assert_eq!(answers, expected, "{name}");
    assert_eq!(&got_view, view, "{name}");
    assert_eq!(&store.snapshot().await.unwrap(), state, "{name}");
}

/// A fresh schema for `test` in database `test_admin` (created if need be); the future
/// drops it.
async fn postgres(base: &str, test: &str) -> (String, impl Future<Output = ()>) {
    let mut conn = sqlx::PgConnection::connect(base).await.unwrap();
    let exists: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = 'test_admin'")
            .fetch_optional(&mut conn)
            .await
            .unwrap();
    if exists.is_none() {
        // Another run may create it at the same time: a duplicate is fine.
        let _ = sqlx::query("CREATE DATABASE test_admin")
            .execute(&mut conn)
            .await;
    }
    let (root, query) = base
        .split_once('?')
        .map_or((base, None), |(r, q)| (r, Some(q)));
    let server = root.rsplit_once('/').map_or(root, |(s, _)| s);
    let db = format!(
        "{server}/test_admin{}",
        query.map(|q| format!("?{q}")).unwrap_or_default()
    );
    let schema = format!("admin_{test}_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let sep = if db.contains('?') { '&' } else { '?' };
    let url = format!("{db}{sep}options=-c%20search_path%3D{schema}");
    let cleanup = async move {
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut conn)
            .await
            .unwrap();
    };
    (url, cleanup)
}

/// Concurrent uploads of one TC: whatever order they commit in, the versions held have
/// strictly increasing sequence numbers in the order added (the rules are checked inside
/// the write, under the store's lock).
async fn concurrent_uploads_keep_the_order(store: SqlStore) {
    let tasks: Vec<_> = [5u64, 2, 8, 1, 7, 3, 6, 4]
        .into_iter()
        .map(|seq| {
            let store = store.clone();
            tokio::spawn(async move { store.add_release(&release("app", seq, 1)).await })
        })
        .collect();
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) | Err(AdminError::Rollback { .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let held: Vec<u64> = store
        .releases()
        .await
        .unwrap()
        .iter()
        .map(|r| r.sequence)
        .collect();
    assert!(!held.is_empty());
    assert!(held.windows(2).all(|w| w[0] < w[1]), "{held:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_never_roll_back() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_uploads_keep_the_order(SqlStore::open_data_dir(dir.path()).await.unwrap()).await;
    match std::env::var("TEEP_TEST_DATABASE_URL") {
        Ok(base) => {
            let (url, cleanup) = postgres(&base, "concurrent").await;
            let pg = SqlStore::connect(&url).await.unwrap();
            concurrent_uploads_keep_the_order(pg.clone()).await;
            pg.close().await;
            cleanup.await;
        }
        Err(_) => println!("skipped: TEEP_TEST_DATABASE_URL not set (PostgreSQL)"),
    }
}
