//! Two TAM replicas (separate engines and connection pools) on one database: a device's
//! session may hop between them, and when both receive the same QueryResponse at once the
//! store's compare-and-set on the token lets exactly one Update out.
//!
//! PostgreSQL tests run when `TEEP_TEST_DATABASE_URL` is set (each in a database of its
//! own, `test_bench_*`, dropped at the end) and print "skipped" otherwise; the SQLite race
//! runs two engines on one file.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
#![cfg(feature = "server")]

mod common;

use std::future::{Future, ready};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{
    Agent, CLASS, Expect, World, manifest_id, provider, report, update, verifier_id,
    verifier_policy,
};
use sqlx::Connection;
use teep_attest::appraiser::{Challenge, InProcess, InProcessError};
use teep_attest::{Appraiser, EVIDENCE_FORMAT, SigningVerifier, Verifier, sign_evidence};
use teep_proto::Message;
use teep_tam::http::{Server, ServerConfig, TEEP_CBOR};
use teep_tam::sql::{PolicyScope, SqlStore};
use teep_tam::store::{MemoryState, SessionState, TcPolicy, TcRelease};
use teep_tam::{Context, Dropped, ProviderRandom, Tam, driver};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The Verifier service both replicas ask (a Verifier is one service, not one per replica).
#[derive(Clone)]
enum Service {
    /// A real Verifier: each challenge is redeemed once.
    OneUse(Arc<InProcess>),
    /// Accepts its one challenge any number of times, so that two replicas racing on one
    /// QueryResponse both get an affirming EAR and only the store decides which one wins.
    Reusable(Arc<SigningVerifier>, Vec<u8>),
}

impl Appraiser for Service {
    type Error = InProcessError;

    fn challenge(&self, now: u64) -> impl Future<Output = Result<Challenge, Self::Error>> + Send {
        ready(match self {
            Self::OneUse(v) => v.issue(now),
            Self::Reusable(v, nonce) => Ok(Challenge {
                nonce: nonce.clone(),
                expires_in: v.verifier().policy().freshness_window,
            }),
        })
    }

    fn appraise(
        &self,
        evidence: &[u8],
        now: u64,
    ) -> impl Future<Output = Result<Vec<u8>, Self::Error>> + Send {
        let appraised = match self {
            Self::OneUse(v) => v.appraise_now(evidence, now),
            Self::Reusable(v, nonce) => v.appraise(evidence, now, &mut Expect(nonce.clone())),
        };
        ready(appraised.signed.map_err(InProcessError::Sign))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The Verifier service, a device and the release it gets (beside two engines with the
/// same keys, from [`Replicas::new`]).
struct Replicas {
    service: Service,
    agent: Agent,
    release: TcRelease,
}

impl Replicas {
    fn new(reusable: bool) -> (Self, Tam, Tam) {
        let w = World::new();
        let agent = w.agent(teep_cose::Curve::P256);
        let (a, b) = (w.replica(), w.replica());
        let release = w.release("app", 1, &[]);
        let World {
            verifier,
            verifier_signer,
            attestation,
            ..
        } = w;
        let service = if reusable {
            let verifier = SigningVerifier::new(
                Verifier::new(verifier_policy(attestation.public_key()), verifier_id()),
                verifier_signer,
                provider(),
            );
            Service::Reusable(Arc::new(verifier), vec![0x3c; 32])
        } else {
            Service::OneUse(Arc::new(verifier))
        };
        let replicas = Self {
            service,
            agent,
            release,
        };
        (replicas, a, b)
    }

    /// Adds the release and the class policy that installs it.
    async fn seed(&self, store: &SqlStore) {
        store.put_release(&self.release).await.unwrap();
        let policy = TcPolicy {
            install: vec![manifest_id("app")],
            requestable: vec![],
        };
        store
            .put_policy(PolicyScope::Class(CLASS), &policy)
            .await
            .unwrap();
    }

    /// The Agent's QueryResponse, with Evidence issued now, to a QueryRequest.
    fn respond(&self, query_request: &[u8]) -> Vec<u8> {
        let agent = &self.agent;
        let qr = agent.read_query(query_request);
        let mut claims = agent.claims(qr.challenge.as_deref().unwrap());
        claims.iat = Some(i64::try_from(unix_now()).unwrap());
        let evidence = sign_evidence(&claims, agent.attestation.as_ref()).unwrap();
        let response = agent.response_with(&qr, Some((EVIDENCE_FORMAT, evidence)));
        agent.sign(Message::QueryResponse(response))
    }

    /// The Agent's Success, with a report for the release, to an Update.
    fn succeed(&self, update_bytes: &[u8]) -> Vec<u8> {
        let u = update(self.agent.read(update_bytes));
        let token = u.token.unwrap();
        let reports = vec![report(self.release.digest, &token, true)];
        self.agent.success(&token, Some(reports))
    }
}

/// The sessions waiting for a Success (an Update is out for them).
fn expecting_success(state: &MemoryState) -> Vec<Vec<u8>> {
    state
        .sessions
        .values()
        .filter(|s| !s.consumed && matches!(s.state, SessionState::ExpectSuccess(_)))
        .map(|s| s.token.clone())
        .collect()
}

/// A PostgreSQL database of this test's own, dropped by [`Database::drop_now`].
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    /// A fresh database, or `None` (after printing "skipped") without a server to use.
    async fn create(test: &str) -> Option<Self> {
        let Ok(admin) = std::env::var("TEEP_TEST_DATABASE_URL") else {
            println!("{test}: skipped (TEEP_TEST_DATABASE_URL is not set)");
            return None;
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("test_bench_{}_{nanos}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let (server, _) = admin.rsplit_once('/').unwrap();
        let url = format!("{server}/{name}");
        Some(Self { admin, name, url })
    }

    async fn store(&self) -> SqlStore {
        SqlStore::connect(&self.url).await.unwrap()
    }

    async fn drop_now(self) {
        let mut conn = sqlx::PgConnection::connect(&self.admin).await.unwrap();
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
}

/// One replica serving on loopback until [`Running::stop`].
struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn start(tam: Tam, store: SqlStore, service: Service) -> Self {
        let server = Arc::new(Server::new(tam, store, service, ServerConfig::default()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self { addr, stop, task }
    }

    /// A TEEP POST as a Broker sends it: the status and the body.
    async fn post(&self, body: &[u8]) -> (u16, Vec<u8>) {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/tam", self.addr))
            .header("accept", TEEP_CBOR);
        if !body.is_empty() {
            request = request.header("content-type", TEEP_CBOR);
        }
        let response = request.body(body.to_vec()).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap().to_vec())
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Two replicas serving on loopback over one PostgreSQL database, and a pool of the test's
/// own to read the store.
struct Cluster {
    db: Database,
    r: Replicas,
    store: SqlStore,
    a: Running,
    b: Running,
}

impl Cluster {
    /// `None` (after printing "skipped") without a PostgreSQL server to use.
    async fn start(test: &str, reusable: bool) -> Option<Self> {
        let db = Database::create(test).await?;
        let (r, tam_a, tam_b) = Replicas::new(reusable);
        let store = db.store().await;
        r.seed(&store).await;
        let a = Running::start(tam_a, db.store().await, r.service.clone()).await;
        let b = Running::start(tam_b, db.store().await, r.service.clone()).await;
        Some(Self { db, r, store, a, b })
    }

    async fn stop(self) {
        self.a.stop().await;
        self.b.stop().await;
        self.store.close().await;
        self.db.drop_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_session_alternates_between_replicas_and_installs() {
    let Some(c) = Cluster::start("postgres_session_alternates", false).await else {
        return;
    };
    let (r, store, a, b) = (&c.r, &c.store, &c.a, &c.b);

    let (status, query_request) = a.post(&[]).await;
    assert_eq!(status, 200);
    let (status, update_bytes) = b.post(&r.respond(&query_request)).await;
    assert_eq!(status, 200, "replica B continues the session A opened");
    let token = update(r.agent.read(&update_bytes)).token.unwrap();
    assert_eq!(
        expecting_success(&store.snapshot().await.unwrap()),
        vec![token.clone()]
    );
    let (status, body) = a.post(&r.succeed(&update_bytes)).await;
    assert_eq!((status, body.len()), (204, 0), "nothing more after Success");

    let state = store.snapshot().await.unwrap();
    let device = &state.devices[&r.agent.id()];
    let installed: Vec<_> = device
        .installed
        .iter()
        .map(|i| (i.manifest_id.clone(), i.sequence, i.digest))
        .collect();
    assert_eq!(installed, vec![(manifest_id("app"), 1, r.release.digest)]);
    assert!(expecting_success(&state).is_empty());
    assert!(state.sessions[&token].consumed);

    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_same_query_response_at_two_replicas_gives_one_update() {
    let Some(c) = Cluster::start("postgres_same_query_response", true).await else {
        return;
    };
    let (r, store, a, b) = (&c.r, &c.store, &c.a, &c.b);

    let (status, query_request) = a.post(&[]).await;
    assert_eq!(status, 200);
    let response = r.respond(&query_request);
    let (at_a, at_b) = tokio::join!(a.post(&response), b.post(&response));
    let mut statuses = [at_a.0, at_b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 204], "exactly one replica answers");
    let update_bytes = if at_a.0 == 200 { at_a.1 } else { at_b.1 };
    let token = update(r.agent.read(&update_bytes)).token.unwrap();
    let state = store.snapshot().await.unwrap();
    assert_eq!(expecting_success(&state), vec![token.clone()]);
    assert_eq!(state.devices.len(), 1);

    // The one Update out completes at either replica.
    let (status, _) = b.post(&r.succeed(&update_bytes)).await;
    assert_eq!(status, 204);
    let installed = &store.snapshot().await.unwrap().devices[&r.agent.id()].installed;
    assert_eq!(installed.len(), 1);

    c.stop().await;
}

/// Both replicas decide on the same QueryResponse (both appraisals affirm) before either
/// commits, then commit at once: the compare-and-set lets exactly one through and the
/// loser's changes leave no trace.
async fn commit_race(a: SqlStore, b: SqlStore) {
    let (r, tam_a, tam_b) = Replicas::new(true);
    r.seed(&a).await;
    let now = unix_now();
    let decide = async |tam: &Tam, store: &SqlStore, body: &[u8]| {
        let mut rng = ProviderRandom(provider());
        let mut cx = Context { now, rng: &mut rng };
        driver::decide(tam, store, &r.service, body, None, &mut cx).await
    };
    let connect = driver::commit(&a, decide(&tam_a, &a, &[]).await).await;
    let response = r.respond(&connect.unwrap().reply.unwrap());
    let at_a = decide(&tam_a, &a, &response).await;
    let at_b = decide(&tam_b, &b, &response).await;
    let before = a.snapshot().await.unwrap();
    assert!(expecting_success(&before).is_empty());
    let (at_a, at_b) = tokio::join!(driver::commit(&a, at_a), driver::commit(&b, at_b));
    let (won, lost) = match (at_a, at_b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        (Ok(_), Ok(_)) => panic!("both replicas sent an Update"),
        (Err(x), Err(y)) => panic!("no replica sent an Update: {x:?}, {y:?}"),
    };
    assert!(matches!(lost, Dropped::Conflict), "{lost:?}");
    let token = update(r.agent.read(&won.reply.unwrap())).token.unwrap();
    let after = a.snapshot().await.unwrap();
    assert_eq!(expecting_success(&after), vec![token]);
    assert_eq!(after.devices.len(), 1);
    assert_eq!(
        after.attestations.len(),
        1,
        "the loser's attestation was not kept"
    );
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_commit_race_has_one_winner() {
    let Some(db) = Database::create("postgres_commit_race").await else {
        return;
    };
    commit_race(db.store().await, db.store().await).await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_commit_race_of_two_engines_on_one_file_has_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqlStore::open_data_dir(dir.path()).await.unwrap();
    let b = SqlStore::open_data_dir(dir.path()).await.unwrap();
    commit_race(a, b).await;
}
