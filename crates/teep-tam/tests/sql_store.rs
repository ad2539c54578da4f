//! The SQL store against the in-memory one: each test body runs on MemoryStore, SQLite (a
//! temporary file) and PostgreSQL when `TEEP_TEST_DATABASE_URL` is set (each test in a
//! fresh schema of its own, dropped at the end, so tests run in parallel).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;
use teep_proto::{
    CipherSuite, ComponentId, DataItemRequested, FreshnessMechanism, SuitCoseProfile,
};
use teep_tam::messages::{Exchange, MemoryMessageLog, MessageLog};
use teep_tam::sql::{PolicyScope, SqlStore};
use teep_tam::store::{
    AdminError, AdminStore, AttestationOutcome, AttestationRecord, AttestationVerdict, AuditEntry,
    Changes, Device, DeviceId, DevicePage, ExpectQueryResponse, ExpectSuccess, Failed, Installed,
    LoadRequest, Loaded, MemoryState, OUTCOMES_PER_DEVICE, Offer, ReportRecord, SentManifest,
    SessionId, SessionRecord, SessionState, TcPolicy, TcRelease,
};
use teep_tam::{MemoryStore, Store, StoreError};

/// One of the stores under test; clones share the state (the memory store) or the
/// database (a new pool is opened by [`Fixture::open`]).
#[derive(Clone)]
enum Under {
    Memory(Arc<MemoryStore>),
    Sql(SqlStore),
}

impl Under {
    async fn load(&self, request: &LoadRequest) -> Result<Loaded, StoreError> {
        match self {
            Self::Memory(m) => m.load(request).await,
            Self::Sql(s) => s.load(request).await,
        }
    }

    async fn commit(&self, changes: &Changes) -> Result<(), StoreError> {
        match self {
            Self::Memory(m) => m.commit(changes).await,
            Self::Sql(s) => s.commit(changes).await,
        }
    }

    async fn state(&self) -> MemoryState {
        match self {
            Self::Memory(m) => m.snapshot(),
            Self::Sql(s) => s.snapshot().await.unwrap(),
        }
    }

    /// Adds the admin data (releases, policies, devices) of `seed`.
    async fn seed(&self, seed: &MemoryState) {
        match self {
            Self::Memory(m) => m.with(|s| {
                s.releases.extend(seed.releases.iter().cloned());
                s.class_policy.extend(seed.class_policy.clone());
                s.device_policy.extend(seed.device_policy.clone());
                s.devices.extend(seed.devices.clone());
            }),
            Self::Sql(s) => {
                for r in &seed.releases {
                    s.put_release(r).await.unwrap();
                }
                for (class, p) in &seed.class_policy {
                    s.put_policy(PolicyScope::Class(class), p).await.unwrap();
                }
                for (id, p) in &seed.device_policy {
                    s.put_policy(PolicyScope::Device(*id), p).await.unwrap();
                }
                for d in seed.devices.values() {
                    s.put_device(d).await.unwrap();
                }
            }
        }
    }

    async fn close(&self) {
        if let Self::Sql(s) = self {
            s.close().await;
        }
    }
}

/// Where a test's store lives.
enum Fixture {
    Memory(Arc<MemoryStore>),
    Sqlite(tempfile::TempDir),
    Postgres { base: String, schema: String },
}

static SCHEMAS: AtomicU64 = AtomicU64::new(0);

impl Fixture {
    /// MemoryStore, SQLite, and PostgreSQL if `TEEP_TEST_DATABASE_URL` is set.
    async fn all() -> Vec<Self> {
        let mut all = vec![
            Self::Memory(Arc::default()),
            Self::Sqlite(tempfile::tempdir().unwrap()),
        ];
        match std::env::var("TEEP_TEST_DATABASE_URL") {
            Ok(base) => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .subsec_nanos();
                let n = SCHEMAS.fetch_add(1, Ordering::Relaxed);
                let schema = format!("t_{}_{nanos}_{n}", std::process::id());
                let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
                sqlx::query(&format!("CREATE SCHEMA {schema}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                all.push(Self::Postgres { base, schema });
            }
            Err(_) => println!("skipped: TEEP_TEST_DATABASE_URL not set"),
        }
        all
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Sqlite(_) => "sqlite",
            Self::Postgres { .. } => "postgres",
        }
    }

    fn url(&self) -> Option<String> {
        match self {
            Self::Memory(_) => None,
            Self::Sqlite(dir) => Some(format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("tam.sqlite3").display()
            )),
            Self::Postgres { base, schema } => {
                let sep = if base.contains('?') { '&' } else { '?' };
                Some(format!("{base}{sep}options=-c%20search_path%3D{schema}"))
            }
        }
    }

    /// A handle on the store: for SQL, a new connection pool each call.
    async fn open(&self) -> Under {
        match (self, self.url()) {
            (Self::Memory(m), _) => Under::Memory(m.clone()),
            (_, Some(url)) => Under::Sql(SqlStore::connect(&url).await.unwrap()),
            (_, None) => unreachable!("every SQL fixture has a URL"),
        }
    }

    /// Drops the PostgreSQL schema (the temporary directory goes with `self`).
    async fn finish(self) {
        if let Self::Postgres { base, schema } = self {
            let mut admin = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
                .execute(&mut admin)
                .await
                .unwrap();
        }
    }
}

fn dev(n: u8) -> DeviceId {
    DeviceId([n; 32])
}

fn cid(name: &str) -> ComponentId {
    ComponentId(vec![b"TEEP-Device".to_vec(), name.as_bytes().to_vec()])
}

fn release(name: &str, sequence: u64, deps: &[&str]) -> TcRelease {
    TcRelease {
        manifest_id: cid(name),
        sequence,
        digest: [u8::try_from(sequence % 256).unwrap(); 32],
        signer: sequence.is_multiple_of(2).then_some([0x5a; 32]),
        envelope: format!("{name} v{sequence}").into_bytes().into(),
        depends_on: deps.iter().map(|d| cid(d)).collect(),
    }
}

fn device(n: u8, class: Option<&str>, installed: &[(&str, u64)]) -> Device {
    Device {
        id: dev(n),
        key: vec![0xa4, n],
        class: class.map(Into::into),
        revoked: n % 2 == 1,
        suite: Some(CipherSuite::SIGN1_ED25519),
        attested_at: Some(1_000 + u64::from(n)),
        failed: if n.is_multiple_of(3) {
            vec![Failed {
                manifest_id: cid("tc"),
                digest: [n; 32],
                failures: u32::from(n) + 1,
                at: 2_000 + u64::from(n),
            }]
        } else {
            Vec::new()
        },
        attestation_exempt: n.is_multiple_of(2),
        installed: installed
            .iter()
            .map(|(name, sequence)| Installed {
                manifest_id: cid(name),
                sequence: *sequence,
                digest: [7; 32],
            })
            .collect(),
    }
}

fn query_session(token: u8, device: Option<DeviceId>, issued_at: u64) -> SessionRecord {
    SessionRecord {
        token: vec![token; 16],
        session: SessionId([token; 16]),
        device,
        issued_at,
        expires_at: issued_at + 100,
        consumed: false,
        state: SessionState::ExpectQueryResponse(ExpectQueryResponse {
            challenge: token.is_multiple_of(2).then(|| vec![token; 32]),
            requested: DataItemRequested::ATTESTATION.with(DataItemRequested::SUIT_REPORTS),
            offer: Offer {
                versions: vec![0],
                suites: vec![CipherSuite::SIGN1_ESP256, CipherSuite::SIGN1_ED25519],
                profiles: SuitCoseProfile::ALL_MTI.to_vec(),
                freshness: vec![FreshnessMechanism::NONCE, FreshnessMechanism::TIMESTAMP],
            },
            // Some rows carry the TAM-attested flag, so that it round-trips through SQL.
            tam_attested: token.is_multiple_of(3),
        }),
    }
}

fn update_session(token: u8, device: DeviceId, issued_at: u64) -> SessionRecord {
    SessionRecord {
        state: SessionState::ExpectSuccess(ExpectSuccess {
            sent_manifests: vec![SentManifest {
                manifest_id: cid("app"),
                sequence: u64::MAX,
                digest: [token; 32],
            }],
            unneeded: vec![cid("old")],
        }),
        ..query_session(token, Some(device), issued_at)
    }
}

/// Releases (two versions, a dependency, a tie), policies and devices.
fn seed() -> MemoryState {
    let mut s = MemoryState {
        releases: vec![
            release("app", 1, &["lib"]),
            release("app", u64::MAX, &["lib"]),
            release("app", 2, &[]),
            release("lib", 5, &[]),
            release("lib", 5, &["extra"]),
            release("extra", 9, &[]),
            release("tool", 3, &[]),
        ],
        ..MemoryState::default()
    };
    let phone = TcPolicy {
        install: vec![cid("app")],
        requestable: vec![cid("tool"), cid("missing")],
    };
    s.class_policy.insert("phone".into(), phone);
    s.class_policy.insert("watch".into(), TcPolicy::default());
    let own = TcPolicy {
        install: vec![cid("tool")],
        requestable: vec![],
    };
    s.device_policy.insert(dev(3), own);
    for d in [
        device(1, Some("phone"), &[("app", 1), ("lib", 5)]),
        device(2, None, &[]),
        device(3, Some("phone"), &[]),
    ] {
        s.devices.insert(d.id, d);
    }
    s
}

/// Every load request worth asking of `seed()` plus the sessions of `changes()`.
fn requests() -> Vec<LoadRequest> {
    let mut r: Vec<LoadRequest> = (1..=12)
        .map(|t| LoadRequest::Session(vec![t; 16]))
        .collect();
    r.extend([0, 1, 2, 3, 100].map(|keep| LoadRequest::AnonymousSessions { keep }));
    for n in 1..=5 {
        for class in [None, Some("phone".to_string()), Some("none".to_string())] {
            r.push(LoadRequest::Device { id: dev(n), class });
        }
    }
    r
}

/// A run of commits touching every kind of change.
fn changes() -> Vec<Changes> {
    let audit = |at, device: Option<DeviceId>, event: &str| AuditEntry {
        at,
        device,
        event: event.into(),
        detail: None,
    };
    vec![
        // Anonymous sessions (one with the same issue time, to order by token).
        Changes {
            new_sessions: vec![
                query_session(1, None, 10),
                query_session(2, None, 10),
                query_session(3, None, 5),
            ],
            audit: vec![audit(10, None, "open")],
            ..Changes::default()
        },
        // Answering session 1: a new device, attested, with an Update outstanding.
        Changes {
            consume: Some(vec![1; 16]),
            new_sessions: vec![
                update_session(4, dev(4), 20),
                query_session(5, Some(dev(4)), 21),
            ],
            retire: vec![vec![3; 16]],
            device: Some(device(4, Some("phone"), &[])),
            // Read as absent: the new record's revision goes from 0 to 1.
            device_revision: Some(0),
            attestation: Some(AttestationRecord {
                device: dev(4),
                at: 20,
                ear: b"ear".to_vec(),
            }),
            outcome: Some(outcome(4, 20, AttestationVerdict::Affirming)),
            audit: vec![audit(20, Some(dev(4)), "update"), audit(20, None, "x")],
            ..Changes::default()
        },
        // The Success: installed changes, reports, the session purge.
        Changes {
            consume: Some(vec![4; 16]),
            new_sessions: vec![query_session(6, Some(dev(1)), 200)],
            purge_expired_before: Some(115),
            device: Some(device(4, Some("watch"), &[("app", u64::MAX)])),
            device_revision: Some(1),
            reports: vec![
                ReportRecord {
                    device: dev(4),
                    at: 30,
                    manifest_digest: [4; 32],
                    success: true,
                    report: vec![0xa0],
                },
                ReportRecord {
                    device: dev(4),
                    at: 30,
                    manifest_digest: [5; 32],
                    success: false,
                    report: vec![0xa1, 0, 0],
                },
            ],
            ..Changes::default()
        },
        // A session record replaced under the same token, and a device changed in place.
        Changes {
            new_sessions: vec![query_session(6, Some(dev(2)), 300)],
            device: Some(device(1, None, &[("tool", 3)])),
            ..Changes::default()
        },
        // Sessions for the next step to retire.
        Changes {
            new_sessions: vec![
                query_session(7, Some(dev(2)), 400),
                query_session(8, Some(dev(2)), 401),
                query_session(9, Some(dev(2)), 402),
            ],
            ..Changes::default()
        },
        // Two tokens retired and a purge in one commit (one DELETE in SqlStore), and a
        // device with several installed rows (one INSERT).
        Changes {
            retire: vec![vec![7; 16], vec![9; 16]],
            purge_expired_before: Some(401),
            device: Some(device(2, None, &[("app", 2), ("lib", 5), ("tool", 3)])),
            ..Changes::default()
        },
        // A dropped message's failed appraisal: the outcome alone.
        Changes {
            outcome: Some(outcome(4, 25, AttestationVerdict::Rejected)),
            ..Changes::default()
        },
        // More sessions of unknown devices, for the next step.
        Changes {
            new_sessions: vec![query_session(10, None, 500), query_session(11, None, 500)],
            ..Changes::default()
        },
        // Records replaced under the same token: an unknown device's session becomes a
        // device's and a device's becomes an unknown one's (SQLite counts the unknown
        // devices' sessions with triggers: the count follows both ways).
        Changes {
            new_sessions: vec![
                query_session(10, Some(dev(3)), 501),
                query_session(8, None, 502),
            ],
            ..Changes::default()
        },
    ]
}

fn outcome(n: u8, at: u64, verdict: AttestationVerdict) -> AttestationOutcome {
    AttestationOutcome {
        device: dev(n),
        at,
        verdict,
        detail: format!("{} at {at}", verdict.name()),
    }
}

/// Asserts that `store` answers every request and holds the state the memory store does.
async fn same_as(reference: &MemoryStore, store: &Under, name: &str, step: usize) {
    for request in requests() {
        let want = reference.load(&request).await.unwrap();
        let got = store.load(&request).await.unwrap();
        assert_eq!(got, want, "{name} after commit {step}: {request:?}");
    }
    assert_eq!(
        store.state().await,
        reference.snapshot(),
        "{name} after commit {step}"
    );
}

#[tokio::test]
async fn every_change_round_trips_as_in_memory() {
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        let reference = MemoryStore::new();
        let seed = seed();
        store.seed(&seed).await;
        reference.with(|s| *s = seed.clone());
        same_as(&reference, &store, fixture.name(), 0).await;
        for (step, c) in changes().iter().enumerate() {
            reference.commit(c).await.unwrap();
            store.commit(c).await.unwrap();
            same_as(&reference, &store, fixture.name(), step + 1).await;
        }
        store.close().await;
        fixture.finish().await;
    }
}

/// Appraisal outcomes: each device keeps its newest OUTCOMES_PER_DEVICE (another device's
/// are untouched), the operator reads them newest first and the device listing carries the
/// latest, alike on every store; an unknown device's outcomes are NotFound.
#[tokio::test]
async fn appraisal_outcomes_are_bounded_per_device_and_read_newest_first() {
    let total = OUTCOMES_PER_DEVICE as u64 + 5;
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        store.seed(&seed()).await;
        for at in 0..total {
            for n in [1, 2] {
                let verdict = if at % 2 == 0 {
                    AttestationVerdict::Rejected
                } else {
                    AttestationVerdict::VerifierUnavailable
                };
                let only = Changes {
                    outcome: Some(outcome(n, at, verdict)),
                    ..Changes::default()
                };
                store.commit(&only).await.unwrap();
            }
        }
        let name = fixture.name();
        let state = store.state().await;
        assert_eq!(state.outcomes.len(), 2 * OUTCOMES_PER_DEVICE, "{name}");
        let admin: &dyn AdminStore = match &store {
            Under::Memory(m) => m.as_ref(),
            Under::Sql(s) => s,
        };
        let newest = admin.attestation_outcomes(&dev(1), 3).await.unwrap();
        let ats: Vec<u64> = newest.iter().map(|o| o.at).collect();
        assert_eq!(ats, [total - 1, total - 2, total - 3], "{name}");
        let all = admin.attestation_outcomes(&dev(2), 1000).await.unwrap();
        assert_eq!(all.len(), OUTCOMES_PER_DEVICE, "{name}");
        assert_eq!(
            all.last().unwrap().at,
            total - OUTCOMES_PER_DEVICE as u64,
            "{name}"
        );
        assert!(matches!(
            admin.attestation_outcomes(&dev(99), 10).await,
            Err(AdminError::NotFound(_))
        ));
        let listed = admin.devices(DevicePage::ALL).await.unwrap();
        let one = listed.iter().find(|d| d.device.id == dev(1)).unwrap();
        assert_eq!(
            one.last_outcome,
            Some(outcome(1, total - 1, AttestationVerdict::Rejected)),
            "{name}"
        );
        store.close().await;
        fixture.finish().await;
    }
}

/// Sessions of one device issued in the same second age in the order they were opened,
/// not in token order: tokens committed in descending order (one at a time and two in one
/// commit) are listed oldest first, and after the oldest is retired and a newer one
/// stored the list is still in opening order, on every store.
#[tokio::test]
async fn same_second_sessions_are_listed_in_the_order_opened() {
    let view = LoadRequest::Device {
        id: dev(1),
        class: None,
    };
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        store.seed(&seed()).await;
        let open = |tokens: &[u8]| Changes {
            new_sessions: tokens
                .iter()
                .map(|t| query_session(*t, Some(dev(1)), 50))
                .collect(),
            ..Changes::default()
        };
        store.commit(&open(&[9])).await.unwrap();
        store.commit(&open(&[7, 5])).await.unwrap();
        store.commit(&open(&[3])).await.unwrap();
        let outstanding = |loaded: Loaded| match loaded {
            Loaded::Device(v) => v.outstanding,
            other => panic!("{other:?}"),
        };
        let got = outstanding(store.load(&view).await.unwrap());
        let want: Vec<_> = [9, 7, 5, 3].map(|t| vec![t; 16]).to_vec();
        assert_eq!(got, want, "{}", fixture.name());
        store
            .commit(&Changes {
                retire: vec![vec![9; 16]],
                ..open(&[1])
            })
            .await
            .unwrap();
        let got = outstanding(store.load(&view).await.unwrap());
        let want: Vec<_> = [7, 5, 3, 1].map(|t| vec![t; 16]).to_vec();
        assert_eq!(got, want, "{}", fixture.name());
        store.close().await;
        fixture.finish().await;
    }
}

#[tokio::test]
async fn a_conflicting_commit_changes_nothing() {
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        store.seed(&seed()).await;
        let all = changes();
        for c in &all[..2] {
            store.commit(c).await.unwrap();
        }
        let before = store.state().await;
        // Consumed (1), retired (3), never issued (9): every other change rides along and
        // must not land.
        for token in [1, 3, 9] {
            let attempt = Changes {
                consume: Some(vec![token; 16]),
                ..all[2].clone()
            };
            assert_eq!(
                store.commit(&attempt).await,
                Err(StoreError::Conflict),
                "{}: token {token}",
                fixture.name()
            );
            assert_eq!(
                store.state().await,
                before,
                "{}: token {token}",
                fixture.name()
            );
        }
        // A live token, but the device record was written since the decision read it
        // (revision 0; the commit above made it 1).
        let stale = Changes {
            device_revision: Some(0),
            ..all[2].clone()
        };
        assert_eq!(
            store.commit(&stale).await,
            Err(StoreError::Conflict),
            "{}: stale revision",
            fixture.name()
        );
        assert_eq!(store.state().await, before, "{}", fixture.name());
        store.commit(&all[2]).await.unwrap();
        store.close().await;
        fixture.finish().await;
    }
}

/// The operator's writes to a device (revoke, class, registration) move its revision too: a
/// decision that read the record before a revocation cannot write `revoked = false` back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_write_to_a_device_spoils_a_decision_read_before_it() {
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        store.seed(&seed()).await;
        let all = changes();
        for c in &all[..2] {
            store.commit(c).await.unwrap();
        }
        // `all[2]` was decided on revision 1 and writes device 4 with `revoked = false`.
        assert!(!all[2].device.as_ref().unwrap().revoked);
        match &store {
            Under::Memory(m) => m.revoke_device(&dev(4)).await.unwrap(),
            Under::Sql(s) => s.revoke_device(&dev(4)).await.unwrap(),
        }
        let before = store.state().await;
        assert_eq!(
            store.commit(&all[2]).await,
            Err(StoreError::Conflict),
            "{}",
            fixture.name()
        );
        let after = store.state().await;
        assert_eq!(after, before, "{}", fixture.name());
        assert!(after.devices[&dev(4)].revoked, "{}", fixture.name());
        store.close().await;
        fixture.finish().await;
    }
}

/// A device the operator registers while a first contact of it is being decided (on the
/// device as absent, revision 0) keeps its registration: the decision's commit loses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_spoils_a_first_contact_decided_before_it() {
    use teep_tam::store::Registration;
    for fixture in Fixture::all().await {
        let name = fixture.name();
        let store = fixture.open().await;
        store.seed(&seed()).await;
        let all = changes();
        store.commit(&all[0]).await.unwrap();
        // `all[1]` was decided on device 4 as absent and writes its record.
        assert_eq!(all[1].device_revision, Some(0));
        let registration = Registration {
            id: dev(4),
            key: vec![0xa4, 0x44],
            class: Some("registered".into()),
            attestation_exempt: Some(true),
        };
        let created = match &store {
            Under::Memory(m) => m.register_device(&registration).await.unwrap(),
            Under::Sql(s) => s.register_device(&registration).await.unwrap(),
        };
        assert!(created, "{name}");
        let before = store.state().await;
        assert_eq!(
            store.commit(&all[1]).await,
            Err(StoreError::Conflict),
            "{name}"
        );
        let after = store.state().await;
        assert_eq!(after, before, "{name}");
        assert_eq!(after.devices[&dev(4)].class.as_deref(), Some("registered"));
        store.close().await;
        fixture.finish().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_commits_of_one_token_exactly_one_wins() {
    for fixture in Fixture::all().await {
        // Two handles: for SQL, two pools (as two replicas would have).
        let (a, b) = (fixture.open().await, fixture.open().await);
        for round in 0..20u8 {
            let token = vec![round; 16];
            let mut open = query_session(round, None, 1);
            open.token.clone_from(&token);
            a.commit(&Changes {
                new_sessions: vec![open],
                ..Changes::default()
            })
            .await
            .unwrap();
            let answer = |store: Under, issued: u8| {
                let token = token.clone();
                tokio::spawn(async move {
                    let mut next = query_session(issued, Some(dev(9)), 2);
                    next.token = vec![issued, round];
                    let c = Changes {
                        consume: Some(token),
                        new_sessions: vec![next],
                        audit: vec![AuditEntry {
                            at: 2,
                            device: None,
                            event: format!("by {issued}"),
                            detail: None,
                        }],
                        ..Changes::default()
                    };
                    store.commit(&c).await
                })
            };
            let (ra, rb) = (answer(a.clone(), 100), answer(b.clone(), 200));
            let results = [ra.await.unwrap(), rb.await.unwrap()];
            let won: Vec<_> = results.iter().filter(|r| r.is_ok()).collect();
            assert_eq!(
                won.len(),
                1,
                "{} round {round}: {results:?}",
                fixture.name()
            );
            assert!(
                results.contains(&Err(StoreError::Conflict)),
                "{} round {round}: {results:?}",
                fixture.name()
            );
            let state = a.state().await;
            let issued = [100u8, 200]
                .iter()
                .filter(|i| state.sessions.contains_key(&vec![**i, round]))
                .count();
            assert_eq!(
                issued,
                1,
                "{} round {round}: both replies' sessions",
                fixture.name()
            );
        }
        let state = a.state().await;
        assert_eq!(state.audit.len(), 20, "{}", fixture.name());
        a.close().await;
        b.close().await;
        fixture.finish().await;
    }
}

/// Many commits at once on one store, four for each token: SQLite runs those that arrive
/// together in one transaction (a savepoint each, `sql/sqlite_ops.rs`), so a losing
/// compare-and-set must roll back its own commit and nothing of the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_on_one_store_land_one_per_token_and_nothing_else() {
    const TOKENS: u8 = 10;
    const TRIES: u8 = 4;
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        let opened: Vec<_> = (1..=TOKENS).map(|t| query_session(t, None, 1)).collect();
        store
            .commit(&Changes {
                new_sessions: opened,
                ..Changes::default()
            })
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for t in 1..=TOKENS {
            for k in 0..TRIES {
                let store = store.clone();
                tasks.push(tokio::spawn(async move {
                    let mut next = query_session(t, Some(dev(9)), 2);
                    next.token = vec![t, k];
                    let c = Changes {
                        consume: Some(vec![t; 16]),
                        new_sessions: vec![next],
                        audit: vec![AuditEntry {
                            at: 2,
                            device: None,
                            event: format!("{t} by {k}"),
                            detail: None,
                        }],
                        ..Changes::default()
                    };
                    (t, store.commit(&c).await)
                }));
            }
        }
        let mut won = vec![0; usize::from(TOKENS) + 1];
        for task in tasks {
            let (t, result) = task.await.unwrap();
            match result {
                Ok(()) => won[usize::from(t)] += 1,
                Err(e) => assert_eq!(e, StoreError::Conflict, "{}", fixture.name()),
            }
        }
        assert!(
            won[1..].iter().all(|&n| n == 1),
            "{}: {won:?}",
            fixture.name()
        );
        let state = store.state().await;
        for t in 1..=TOKENS {
            let replies = (0..TRIES)
                .filter(|k| state.sessions.contains_key(&vec![t, *k]))
                .count();
            assert_eq!(replies, 1, "{}: token {t}", fixture.name());
            assert!(state.sessions[&vec![t; 16]].consumed, "{}", fixture.name());
        }
        assert_eq!(state.audit.len(), usize::from(TOKENS), "{}", fixture.name());
        store.close().await;
        fixture.finish().await;
    }
}

/// A device view read, then a newer release added (here and through a second store on the
/// same database), then the view read again: the new view names the newer release with
/// its own envelope, never the one read before (SQLite holds envelopes it read, by row).
#[tokio::test]
async fn a_newer_release_replaces_the_envelope_a_view_read_before() {
    let view = LoadRequest::Device {
        id: dev(1),
        class: None,
    };
    let releases = |loaded: Loaded| match loaded {
        Loaded::Device(v) => v
            .releases
            .into_iter()
            .map(|r| (r.sequence, String::from_utf8(r.envelope.to_vec()).unwrap()))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        let name = fixture.name();
        store.seed(&seed()).await;
        let before = releases(store.load(&view).await.unwrap());
        assert!(before.contains(&(5, "lib v5".into())), "{name}: {before:?}");
        let other = fixture.open().await;
        let newer = MemoryState {
            releases: vec![release("lib", 6, &["extra"])],
            ..MemoryState::default()
        };
        other.seed(&newer).await;
        let after = releases(store.load(&view).await.unwrap());
        assert!(after.contains(&(6, "lib v6".into())), "{name}: {after:?}");
        assert!(!after.iter().any(|(n, _)| *n == 5), "{name}: {after:?}");
        // The rest of the view is what it was.
        let rest = |v: &[(u64, String)]| {
            v.iter()
                .filter(|(_, e)| !e.starts_with("lib"))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(rest(&after), rest(&before), "{name}");
        other.close().await;
        store.close().await;
        fixture.finish().await;
    }
}

/// Commits dropped at their first wait (on SQLite: the one that would wake the sleeping
/// writer thread, `sql/sqlite_ops.rs`) each land whole or not at all, and never leave the
/// store unable to commit: the next commit still lands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_dropped_at_their_first_wait_leave_the_store_committing() {
    let audit = |n: usize| Changes {
        audit: vec![AuditEntry {
            at: 1,
            device: None,
            event: format!("commit {n}"),
            detail: None,
        }],
        ..Changes::default()
    };
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        let name = fixture.name();
        for n in 0..20 {
            let _ = tokio::time::timeout(std::time::Duration::ZERO, store.commit(&audit(n))).await;
        }
        let last =
            tokio::time::timeout(std::time::Duration::from_secs(30), store.commit(&audit(20)))
                .await
                .unwrap_or_else(|_| panic!("{name}: a dropped commit left the store stuck"));
        assert_eq!(last, Ok(()), "{name}");
        let state = store.state().await;
        let events: Vec<_> = state.audit.iter().map(|a| a.event.as_str()).collect();
        assert_eq!(events.last(), Some(&"commit 20"), "{name}");
        assert!(
            events
                .iter()
                .all(|e| (0..=20).any(|n| *e == format!("commit {n}"))),
            "{name}: {events:?}"
        );
        store.close().await;
        fixture.finish().await;
    }
}

#[tokio::test]
async fn migrations_run_twice_and_reopening_keeps_everything() {
    for fixture in Fixture::all().await {
        if matches!(fixture, Fixture::Memory(_)) {
            continue;
        }
        let store = fixture.open().await;
        store.seed(&seed()).await;
        for c in &changes() {
            store.commit(c).await.unwrap();
        }
        let before = store.state().await;
        if let Fixture::Sqlite(dir) = &fixture {
            // WAL mode: the write-ahead log sits beside the open database.
            assert!(dir.path().join("tam.sqlite3-wal").exists());
        }
        let Under::Sql(sql) = &store else {
            unreachable!("SQL fixture")
        };
        sql.migrate().await.unwrap();
        sql.migrate().await.unwrap();
        assert_eq!(store.state().await, before, "{}", fixture.name());
        store.close().await;
        // A new pool (connect migrates again) sees everything.
        let reopened = fixture.open().await;
        assert_eq!(reopened.state().await, before, "{}", fixture.name());
        reopened.close().await;
        if let Fixture::Sqlite(dir) = &fixture {
            let again = SqlStore::open_data_dir(dir.path()).await.unwrap();
            assert_eq!(again.snapshot().await.unwrap(), before);
            again.close().await;
        }
        fixture.finish().await;
    }
}

#[tokio::test]
async fn unknown_url_schemes_are_refused() {
    for url in ["mysql://localhost/x", "tam.sqlite3", ""] {
        assert!(matches!(
            SqlStore::connect(url).await,
            Err(StoreError::Backend(_))
        ));
    }
}

mod common;

/// One message through the engine of `w`, on `store` instead of the world's memory store.
async fn post(
    w: &mut common::World,
    store: &SqlStore,
    body: &[u8],
) -> Result<teep_tam::Handled, teep_tam::Dropped> {
    let mut cx = teep_tam::Context {
        now: w.now,
        rng: &mut w.rng,
    };
    teep_tam::driver::drive(&w.tam, store, &w.verifier, body, None, &mut cx).await
}

/// The engine's first-contact scenario (engine.rs) with the state in SQLite: connect,
/// attest, install two TCs, and a replayed QueryResponse dropped with nothing changed.
#[tokio::test]
async fn the_engine_runs_on_sqlite() {
    use common::{World, report, update};
    let mut w = World::new();
    let lib = w.release("lib", 1, &[]);
    let app = w.release("app", 2, &["lib"]);
    w.class_policy(&["app"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let sql = SqlStore::open_data_dir(dir.path()).await.unwrap();
    Under::Sql(sql.clone()).seed(&w.snapshot()).await;
    let agent = w.agent(teep_cose::Curve::P256);

    let qr = post(&mut w, &sql, &[]).await.unwrap().reply.unwrap();
    let qr = agent.read_query(&qr);
    let resp = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
    let reply = post(&mut w, &sql, &resp).await.unwrap().reply.unwrap();
    let u = update(agent.read(&reply));
    assert_eq!(
        u.manifest_list,
        Some(vec![lib.envelope.to_vec(), app.envelope.to_vec()])
    );
    let token = u.token.unwrap();

    let before = sql.snapshot().await.unwrap();
    assert!(post(&mut w, &sql, &resp).await.is_err(), "replay accepted");
    assert_eq!(
        sql.snapshot().await.unwrap(),
        before,
        "a replay changed the store"
    );

    let reports = vec![
        report(lib.digest, &token, true),
        report(app.digest, &token, true),
    ];
    let done = post(&mut w, &sql, &agent.success(&token, Some(reports)))
        .await
        .unwrap();
    assert_eq!(
        done.event,
        teep_tam::Event::Installed {
            manifests: 2,
            unlinked: 0
        }
    );
    sql.close().await;
    // Everything is in the file: a new store on it sees the device and what it holds.
    let state = SqlStore::open_data_dir(dir.path())
        .await
        .unwrap()
        .snapshot()
        .await
        .unwrap();
    let device = state.devices.get(&agent.id()).unwrap();
    let installed: Vec<_> = device.installed.iter().map(|i| i.sequence).collect();
    assert_eq!(installed, vec![1, 2]);
    assert_eq!(device.key, agent.key.public_key().to_cose_key_bytes());
    assert_eq!((state.attestations.len(), state.reports.len()), (1, 2));
    assert!(w.snapshot().devices.is_empty(), "the memory store was used");
}

/// One exchange as the TEEP resource records it: request, reply, device, why dropped.
struct Recorded {
    request: Vec<u8>,
    reply: Option<Vec<u8>>,
    device: Option<DeviceId>,
    dropped: Option<String>,
    at: u64,
}

/// The exchanges of one real session of a new agent, run by the engine on the world's
/// memory store: open, attested QueryResponse and its Update, a Success carrying `msg`
/// and `reports`, then the QueryResponse replayed (dropped). Recorded into a log afterwards, so every log
/// under test gets the same bytes.
fn session_exchanges(
    w: &mut common::World,
    msg: &str,
    reports: Option<Vec<Vec<u8>>>,
) -> (DeviceId, Vec<Recorded>) {
    let agent = w.agent(teep_cose::Curve::P256);
    let mut out = Vec::new();
    let mut post = |w: &mut common::World, request: Vec<u8>, device: Option<DeviceId>| {
        w.now += 1;
        let (reply, dropped) = match w.post(&request) {
            Ok(h) => (h.reply, None),
            Err(e) => (None, Some(e.to_string())),
        };
        out.push(Recorded {
            request,
            reply: reply.clone(),
            device,
            dropped,
            at: w.now,
        });
        reply
    };
    let qr = post(w, Vec::new(), None).unwrap();
    let qr = agent.read_query(&qr);
    let resp = agent.attested_response(&qr, qr.challenge.as_deref().unwrap());
    let update = post(w, resp.clone(), Some(agent.id())).unwrap();
    let token = common::update(agent.read(&update)).token.unwrap();
    let success = agent.sign(teep_proto::Message::Success(teep_proto::Success {
        token: Some(token),
        msg: Some(msg.to_owned()),
        suit_reports: reports,
        ..teep_proto::Success::default()
    }));
    assert!(post(w, success, Some(agent.id())).is_none());
    post(w, resp, None);
    assert!(
        out.last().unwrap().dropped.is_some(),
        "the replay was taken"
    );
    (agent.id(), out)
}

/// A world whose class policy installs one TC (so a session has an Update).
fn log_world() -> common::World {
    let w = common::World::new();
    w.release("app", 1, &[]);
    w.class_policy(&["app"], &[]);
    w
}

/// Records `exchanges` into `log`.
async fn record_all(log: &dyn MessageLog, w: &common::World, exchanges: &[Recorded]) {
    for e in exchanges {
        log.record(&Exchange {
            request: &e.request,
            reply: e.reply.as_deref(),
            device: e.device,
            dropped: e.dropped.clone(),
            at: e.at,
            numbering: w.tam.config().numbering,
        })
        .await
        .unwrap();
    }
}

impl Under {
    /// The message log of this store keeping `keep` messages: in its database for SQL, a
    /// new in-memory one for the memory store.
    fn message_log(&self, keep: usize) -> Arc<dyn MessageLog> {
        match self {
            Self::Memory(_) => Arc::new(MemoryMessageLog::keeping(keep)),
            Self::Sql(s) => Arc::new(s.message_log(keep)),
        }
    }
}

/// The message-log contract, the same on memory, SQLite and PostgreSQL: sessions by the
/// token chain (the dropped replay joins its session), the device known later set on
/// every message, newest first, limits, and a device with no sessions.
#[tokio::test]
async fn the_message_log_keeps_sessions_alike_everywhere() {
    let mut w = log_world();
    let (a, first) = session_exchanges(&mut w, "installed", None);
    let (b, second) = session_exchanges(&mut w, "installed too", None);
    let mut reference = None;
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        let log = store.message_log(1000);
        record_all(&*log, &w, &first).await;
        record_all(&*log, &w, &second).await;
        let latest = log.latest_sessions(10).await.unwrap();
        let name = fixture.name();
        assert_eq!(latest.len(), 2, "{name}");
        let b_hex = hex::encode(b.0);
        assert_eq!(latest[0].device.as_deref(), Some(b_hex.as_str()), "{name}");
        let of_a = log.device_sessions(&a, 10).await.unwrap();
        assert_eq!(of_a, latest[1..].to_vec(), "{name}");
        let types: Vec<_> = of_a[0]
            .messages
            .iter()
            .map(|m| (m.direction, m.message_type.as_str(), m.dropped.is_some()))
            .collect();
        use teep_tam::messages::Direction::{ToAgent, ToTam};
        assert_eq!(
            types,
            [
                (ToTam, "empty", false),
                (ToAgent, "query-request", false),
                (ToTam, "query-response", false),
                (ToAgent, "update", false),
                (ToTam, "success", false),
                (ToTam, "query-response", true),
            ],
            "{name}"
        );
        let a_hex = hex::encode(a.0);
        assert!(
            of_a[0]
                .messages
                .iter()
                .all(|m| m.device.as_deref() == Some(a_hex.as_str())),
            "{name}: the device is set on every message of its session"
        );
        assert_eq!(log.latest_sessions(1).await.unwrap(), latest[..1], "{name}");
        assert!(log.device_sessions(&dev(9), 10).await.unwrap().is_empty());
        match &reference {
            None => reference = Some(latest),
            Some(r) => assert_eq!(&latest, r, "{name} differs from memory"),
        }
        store.close().await;
        fixture.finish().await;
    }
}

/// Two handles on one database (two replicas): a session whose first half was recorded
/// through one and its second half through the other is one session through either, and
/// it is still there after both are closed and the database reopened (a restart).
#[tokio::test]
async fn replicas_share_the_message_log_and_it_survives_a_restart() {
    let mut w = log_world();
    let (a, exchanges) = session_exchanges(&mut w, "ok", None);
    for fixture in Fixture::all().await {
        if let Fixture::Memory(_) = &fixture {
            continue;
        };
        let (one, two) = (fixture.open().await, fixture.open().await);
        let (half, rest) = exchanges.split_at(2);
        record_all(&*one.message_log(100), &w, half).await;
        record_all(&*two.message_log(100), &w, rest).await;
        let through_one = one.message_log(100).device_sessions(&a, 10).await.unwrap();
        let through_two = two.message_log(100).latest_sessions(10).await.unwrap();
        let name = fixture.name();
        assert_eq!(through_one, through_two, "{name}");
        assert_eq!(through_one.len(), 1, "{name}: one session, not two");
        assert_eq!(through_one[0].messages.len(), 6, "{name}");
        one.close().await;
        two.close().await;
        let again = fixture.open().await;
        let after = again.message_log(100).latest_sessions(10).await.unwrap();
        assert_eq!(after, through_one, "{name}: lost on restart");
        again.close().await;
        fixture.finish().await;
    }
}

/// Retention: a log keeping 4 messages holds the newest 4 after two sessions (11
/// messages), the older session is forgotten with its tokens (a later message on its
/// token starts a session of its own), alike on every store.
#[tokio::test]
async fn the_message_log_keeps_only_the_newest() {
    let mut w = log_world();
    let (a, first) = session_exchanges(&mut w, "one", None);
    let (b, second) = session_exchanges(&mut w, "two", None);
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        let log = store.message_log(4);
        record_all(&*log, &w, &first).await;
        record_all(&*log, &w, &second).await;
        let name = fixture.name();
        let latest = log.latest_sessions(10).await.unwrap();
        assert_eq!(latest.len(), 1, "{name}: the older session is gone");
        let kept: Vec<_> = latest[0]
            .messages
            .iter()
            .map(|m| m.message_type.as_str())
            .collect();
        assert_eq!(
            kept,
            ["query-response", "update", "success", "query-response"],
            "{name}"
        );
        assert_eq!(latest[0].device.as_deref(), Some(hex::encode(b.0).as_str()));
        assert!(
            log.device_sessions(&a, 10).await.unwrap().is_empty(),
            "{name}"
        );
        // The first session's Success again: its token's mapping went with it.
        record_all(&*log, &w, &first[2..3]).await;
        let latest = log.latest_sessions(10).await.unwrap();
        assert_eq!(latest.len(), 2, "{name}");
        assert_ne!(latest[0].session, latest[1].session, "{name}");
        assert_eq!(latest[0].messages.len(), 1, "{name}");
        let total: usize = latest.iter().map(|s| s.messages.len()).sum();
        assert_eq!(total, 4, "{name}: more than kept");
        store.close().await;
        fixture.finish().await;
    }
}

/// Hostile content: a Success whose `msg` is markup and quotes and whose SUIT reports are
/// half a megabyte of markup bytes, and a body that does not decode (markup bytes), are
/// stored and returned as data, the same JSON on every store.
#[tokio::test]
async fn hostile_message_views_are_stored_as_data() {
    let mut w = log_world();
    let markup = "<script>alert('x')</script>\"'); DROP TABLE session_messages; --\u{0}";
    let huge = markup.repeat(8 * 1024).into_bytes();
    let reports = vec![huge.clone(); 8];
    let (a, mut exchanges) = session_exchanges(&mut w, markup, Some(reports));
    exchanges.push(Recorded {
        request: b"<img src=x onerror=alert(1)>".to_vec(),
        reply: None,
        device: None,
        dropped: Some("<b>not CBOR</b>".into()),
        at: w.now + 1,
    });
    let mut reference = None;
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        let log = store.message_log(100);
        record_all(&*log, &w, &exchanges).await;
        let name = fixture.name();
        let latest = log.latest_sessions(10).await.unwrap();
        assert_eq!(latest.len(), 2, "{name}");
        let junk = &latest[0].messages[0];
        assert_eq!(junk.message_type, "malformed", "{name}");
        assert_eq!(junk.dropped.as_deref(), Some("<b>not CBOR</b>"), "{name}");
        let session = &log.device_sessions(&a, 1).await.unwrap()[0];
        let success = &session.messages[4];
        assert_eq!(success.message_type, "success", "{name}");
        let text = serde_json::to_string(&success.json).unwrap();
        let escaped = serde_json::to_string(markup).unwrap();
        assert!(text.contains(&escaped), "{name}: the msg came back changed");
        // The reports' long strings are cut to the view limit (the size bound of the log),
        // saying how long they were; the structure stays.
        assert!(
            text.len() < huge.len(),
            "{name}: the reports were kept whole"
        );
        assert_eq!(
            text.matches("characters in all").count(),
            8,
            "{name}: one cut per report"
        );
        match &reference {
            None => reference = Some(latest),
            Some(r) => assert_eq!(&latest, r, "{name} differs from memory"),
        }
        store.close().await;
        fixture.finish().await;
    }
}

/// A commit dropped part way (its client went away: the future is cancelled at some point
/// of its run) lands all of its changes or none, and leaves no pooled connection inside a
/// transaction: every later transaction on the store goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_dropped_part_way_lands_all_or_nothing() {
    for fixture in Fixture::all().await {
        let store = fixture.open().await;
        store.seed(&seed()).await;
        let all = changes();
        store.commit(&all[0]).await.unwrap();
        let before = store.state().await;
        let mut landed = None;
        for micros in [0, 5, 20, 50, 100, 200, 400, 800, 1600, 3200, 6400] {
            let cut = std::time::Duration::from_micros(micros);
            let _ = tokio::time::timeout(cut, store.commit(&all[1])).await;
            let state = store.state().await;
            if state != before {
                landed = Some(state);
                break;
            }
        }
        let name = fixture.name();
        let after = match landed {
            Some(state) => {
                // The compare-and-set landed, so everything else must have too.
                assert_eq!(
                    store.commit(&all[1]).await,
                    Err(StoreError::Conflict),
                    "{name}"
                );
                state
            }
            None => {
                // The last cut commit may still land after its state was read: a commit the
                // SQLite writer took before its caller stopped waiting runs to the end.
                // Then this one conflicts, and the state below must be that commit's whole.
                match store.commit(&all[1]).await {
                    Ok(()) => {}
                    Err(StoreError::Conflict) => assert_ne!(store.state().await, before, "{name}"),
                    Err(e) => panic!("{name}: {e}"),
                }
                store.state().await
            }
        };
        let token = all[1].consume.as_ref().unwrap();
        assert!(after.sessions[token].consumed, "{name}");
        for s in &all[1].new_sessions {
            assert_eq!(after.sessions[&s.token].state, s.state, "{name}");
        }
        assert_eq!(
            after.audit.len(),
            before.audit.len() + all[1].audit.len(),
            "{name}"
        );
        if let Some(d) = &all[1].device {
            assert_eq!(&after.devices[&d.id], d, "{name}");
        }
        // More transactions than the pool has connections: none finds one left open.
        for _ in 0..12 {
            assert_eq!(store.state().await, after, "{name}");
        }
        store.commit(&all[2]).await.unwrap();
        store.close().await;
        fixture.finish().await;
    }
}

/// Commit `k` of a chain that rewrites one device: its installed `app` becomes version
/// `k`, its session `k - 1` is consumed and session `k` opened, and one audit entry is
/// added; so a consistent read sees installed version `k` beside exactly session `k`
/// outstanding and `k + 1` audit entries.
fn chained(k: u8) -> Changes {
    Changes {
        consume: k.checked_sub(1).map(|t| vec![t; 16]),
        new_sessions: vec![query_session(k, Some(dev(8)), 1_000 + u64::from(k))],
        device: Some(device(8, Some("phone"), &[("app", u64::from(k))])),
        device_revision: Some(u64::from(k)),
        audit: vec![AuditEntry {
            at: 1_000 + u64::from(k),
            device: Some(dev(8)),
            event: format!("step {k}"),
            detail: None,
        }],
        ..Changes::default()
    }
}

/// Reads taken while commits land see each commit whole or not at all: the snapshot (its
/// tables read one after another) and the engine's device view (the device record, then
/// its outstanding sessions) are each read at one point in time, even on PostgreSQL,
/// where every statement of a READ COMMITTED transaction sees the commits done before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_during_commits_see_each_commit_whole() {
    const STEPS: u8 = 120;
    for fixture in Fixture::all().await {
        let name = fixture.name();
        let store = fixture.open().await;
        store.commit(&chained(0)).await.unwrap();
        let writer = store.clone();
        let commits = tokio::spawn(async move {
            for k in 1..STEPS {
                writer.commit(&chained(k)).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let request = LoadRequest::Device {
            id: dev(8),
            class: None,
        };
        let mut reads = 0;
        while !commits.is_finished() {
            let state = store.state().await;
            let device = &state.devices[&dev(8)];
            let k = device.installed[0].sequence;
            assert_eq!(
                u64::try_from(state.audit.len()).unwrap(),
                k + 1,
                "{name}: audit beside v{k}"
            );
            let open: Vec<_> = state.sessions.values().filter(|s| !s.consumed).collect();
            assert_eq!(open.len(), 1, "{name}: sessions beside v{k}");
            assert_eq!(
                open[0].token,
                vec![u8::try_from(k).unwrap(); 16],
                "{name}: session beside v{k}"
            );
            let Loaded::Device(view) = store.load(&request).await.unwrap() else {
                panic!("{name}: not a device view");
            };
            let k = view.device.as_ref().unwrap().installed[0].sequence;
            assert_eq!(view.revision, k + 1, "{name}: revision beside v{k}");
            assert_eq!(
                view.outstanding,
                vec![vec![u8::try_from(k).unwrap(); 16]],
                "{name}: view of v{k}"
            );
            reads += 1;
        }
        commits.await.unwrap();
        println!("{name}: {reads} pairs of reads during {STEPS} commits");
        store.close().await;
        fixture.finish().await;
    }
}

/// On SQLite the writer runs a group of commits without savepoints (conflicts are found
/// before a commit writes). A commit that fails after writing part of itself (here a
/// trigger refuses its audit line, after its token was consumed) must still leave nothing
/// while the commits grouped with it land: the group is rolled back and run again with
/// each commit in a savepoint of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_failing_part_way_in_a_group_leaves_nothing_and_the_rest_land() {
    let fixture = Fixture::Sqlite(tempfile::tempdir().unwrap());
    let store = fixture.open().await;
    let mut admin = sqlx::SqliteConnection::connect(&fixture.url().unwrap())
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER refuse_boom BEFORE INSERT ON audit_log WHEN NEW.event = 'boom' \
         BEGIN SELECT RAISE(ABORT, 'boom refused'); END",
    )
    .execute(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
    let consume = |token: u8, event: &str| Changes {
        consume: Some(vec![token; 16]),
        new_sessions: vec![query_session(token + 100, None, 50)],
        audit: vec![AuditEntry {
            at: 50,
            device: None,
            event: event.into(),
            detail: None,
        }],
        ..Changes::default()
    };
    for round in 0..8_u8 {
        let (bad, good, other) = (3 * round + 1, 3 * round + 2, 3 * round + 3);
        let open = Changes {
            new_sessions: [bad, good, other]
                .iter()
                .map(|t| query_session(*t, None, 10))
                .collect(),
            ..Changes::default()
        };
        store.commit(&open).await.unwrap();
        let before = store.state().await;
        let (first, refused, last) = (
            consume(good, "fine"),
            consume(bad, "boom"),
            consume(other, "fine"),
        );
        let (first, refused, last) = tokio::join!(
            store.commit(&first),
            store.commit(&refused),
            store.commit(&last),
        );
        assert_eq!((first, last), (Ok(()), Ok(())), "round {round}");
        match refused {
            Err(StoreError::Backend(why)) => assert!(why.contains("boom refused"), "{why}"),
            other => panic!("round {round}: the refused commit gave {other:?}"),
        }
        let after = store.state().await;
        assert!(!after.sessions[&vec![bad; 16]].consumed, "round {round}");
        assert!(!after.sessions.contains_key(&vec![bad + 100; 16]));
        for t in [good, other] {
            assert!(after.sessions[&vec![t; 16]].consumed, "round {round}");
            assert!(after.sessions.contains_key(&vec![t + 100; 16]));
        }
        assert_eq!(after.audit.len(), before.audit.len() + 2, "round {round}");
        assert!(after.audit.iter().all(|a| a.event != "boom"));
    }
    store.close().await;
}
