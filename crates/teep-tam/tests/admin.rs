//! The admin API over real HTTP on loopback, next to the TEEP server on the same store:
//! repository rules (each refused upload leaves the store as it was), authentication and
//! audit of every call, the OpenAPI document, `/metrics`, and policy and revocation
//! reaching devices at their next contact.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]
#![cfg(feature = "server")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::{Agent, World, manifest_id, provider, signed_envelope, unsigned_envelope};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};
use teep_cose::{Curve, PrivateKey};
use teep_proto::Message;
use teep_tam::MemoryStore;
use teep_tam::admin::{Admin, TcInfo};
use teep_tam::http::{Server, ServerConfig};
use teep_tam::metrics::Metrics;
use teep_tam::store::MemoryState;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const TOKEN: &str = "test-admin-token";

/// A TEEP server and the admin API on one in-memory store.
struct Running {
    world: World,
    store: Arc<MemoryStore>,
    teep: SocketAddr,
    admin: SocketAddr,
    http: reqwest::Client,
    _stop: Vec<oneshot::Sender<()>>,
}

async fn start() -> Running {
    let mut world = World::new();
    let replica = world.replica();
    let tam = std::mem::replace(&mut world.tam, replica);
    let store = Arc::new(std::mem::take(&mut world.store));
    let verifier = std::mem::replace(&mut world.verifier, World::new().verifier);
    let metrics = Arc::new(Metrics::new());
    let server = Arc::new(
        Server::new(tam, store.clone(), verifier, ServerConfig::default())
            .with_metrics(metrics.clone()),
    );
    let (teep_stop, teep_stopped) = oneshot::channel::<()>();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let teep = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, async {
        let _ = teep_stopped.await;
    }));
    let admin = Arc::new(Admin::new(store.clone(), TOKEN, metrics, provider()));
    let (admin_stop, admin_stopped) = oneshot::channel::<()>();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin_addr = listener.local_addr().unwrap();
    tokio::spawn(teep_tam::admin::serve(admin, listener, async {
        let _ = admin_stopped.await;
    }));
    Running {
        world,
        store,
        teep,
        admin: admin_addr,
        http: reqwest::Client::new(),
        _stop: vec![teep_stop, admin_stop],
    }
}

/// State without the audit log (which every admin call appends to).
fn state(store: &MemoryStore) -> MemoryState {
    let mut s = store.snapshot();
    s.audit.clear();
    s
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.bearer_auth(TOKEN).send().await.unwrap();
        let status = resp.status();
        let body = resp.bytes().await.unwrap();
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        (status, value)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(self.http.get(self.url(path))).await
    }

    async fn send_json(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.call(self.http.request(method, self.url(path)).json(&body))
            .await
    }

    async fn upload(&self, envelope: Vec<u8>) -> (StatusCode, Value) {
        self.call(
            self.http
                .post(self.url("/admin/tcs"))
                .header(CONTENT_TYPE, "application/suit-envelope+cose")
                .body(envelope),
        )
        .await
    }

    async fn add_signer(&self, name: &str, key: &PrivateKey, scope: &[&str]) {
        let body = json!({
            "name": name,
            "key": hex::encode(key.public_key().to_cose_key_bytes()),
            "scope": scope,
        });
        let (status, _) = self.send_json("POST", "/admin/signers", body).await;
        assert_eq!(status, StatusCode::CREATED);
    }

    /// A TEEP POST; returns the status and body.
    async fn teep(&self, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
        let mut req = self
            .http
            .post(format!("http://{}/tam", self.teep))
            .header(ACCEPT, "application/teep+cbor");
        if !body.is_empty() {
            req = req.header(CONTENT_TYPE, "application/teep+cbor");
        }
        let resp = req.body(body).send().await.unwrap();
        (resp.status(), resp.bytes().await.unwrap().to_vec())
    }

    /// One attested contact: the reply to the QueryResponse (204: nothing to do).
    async fn contact(&self, agent: &Agent) -> (StatusCode, Vec<u8>) {
        let (status, qr) = self.teep(Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        let qr = agent.read_query(&qr);
        let challenge = qr.challenge.clone().unwrap();
        self.teep(agent.attested_response(&qr, &challenge)).await
    }

    fn audit_len(&self) -> usize {
        self.store.snapshot().audit.len()
    }
}

fn tc_signer_key() -> PrivateKey {
    PrivateKey::generate(Curve::P256).unwrap()
}

fn signed(key: &PrivateKey, name: &str, sequence: u64) -> Vec<u8> {
    signed_envelope(common::signer(key).as_ref(), name, sequence, &[])
}

/// `envelope` with one byte of its signed manifest flipped (found by decoding it, not by
/// our builder, which would refuse to make it).
fn tampered(envelope: &[u8]) -> Vec<u8> {
    let manifest = teep_suit::model::Envelope::decode(envelope)
        .unwrap()
        .manifest_bytes
        .to_vec();
    let at = envelope
        .windows(manifest.len())
        .position(|w| w == manifest.as_slice())
        .unwrap();
    let mut out = envelope.to_vec();
    out[at + manifest.len() - 1] ^= 0x01;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_leave_the_store_unchanged() {
    let tam = start().await;
    let a = tc_signer_key();
    tam.add_signer("vendor-a", &a, &[""]).await;
    let (status, v1) = tam.upload(signed(&a, "app", 1)).await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!(v1["sequence"], 1);
    assert_eq!(v1["manifest_id"], manifest_id("app").to_string());

    let b = tc_signer_key();
    tam.add_signer("vendor-b", &b, &[""]).await;
    let c = tc_signer_key();
    let elsewhere = manifest_id("other").to_string();
    tam.add_signer("vendor-c", &c, &[&elsewhere]).await;
    let stranger = tc_signer_key();

    let before = state(&tam.store);
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "unsigned",
            unsigned_envelope("app", 2, &[]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "envelope_rejected",
        ),
        (
            "untrusted key",
            signed(&stranger, "app", 2),
            StatusCode::UNPROCESSABLE_ENTITY,
            "envelope_rejected",
        ),
        (
            "tampered manifest",
            tampered(&signed(&a, "app", 2)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "envelope_rejected",
        ),
        (
            "equal sequence",
            signed(&a, "app", 1),
            StatusCode::CONFLICT,
            "rollback",
        ),
        (
            "lower sequence",
            signed(&a, "app", 0),
            StatusCode::CONFLICT,
            "rollback",
        ),
        (
            "later version from another signer",
            signed(&b, "app", 2),
            StatusCode::CONFLICT,
            "signer_changed",
        ),
        (
            "outside the signer's scope",
            signed(&c, "app", 2),
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_scope",
        ),
        (
            "not an envelope",
            b"\xa0".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "envelope_rejected",
        ),
    ];
    for (what, envelope, want, code) in cases {
        let audit = tam.audit_len();
        let (status, body) = tam.upload(envelope).await;
        assert_eq!(status, want, "{what}: {body}");
        assert_eq!(body["error"], code, "{what}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(state(&tam.store), before, "{what} changed the store");
        assert_eq!(tam.audit_len(), audit + 1, "{what} was not audited");
    }
    let (status, body) = tam
        .call(
            tam.http
                .post(tam.url("/admin/tcs"))
                .header(CONTENT_TYPE, "text/plain")
                .body(signed(&a, "app", 2)),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    assert_eq!(state(&tam.store), before);

    // The same signer's next version is taken.
    let (status, body) = tam.upload(signed(&a, "app", 2)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, list) = tam.get("/admin/tcs").await;
    assert_eq!(status, StatusCode::OK);
    let list: Vec<TcInfo> = serde_json::from_value(list).unwrap();
    assert_eq!(list.len(), 1);
    let sequences: Vec<u64> = list[0].versions.iter().map(|v| v.sequence).collect();
    assert_eq!(sequences, [1, 2]);
    assert!(!list[0].revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_without_the_token_are_refused_and_audited() {
    let tam = start().await;
    let before = state(&tam.store);
    let url = tam.url("/admin/signers");
    let body = json!({"name": "x", "key": "00", "scope": [""]});
    let attempts = [
        tam.http.post(&url).json(&body),
        tam.http.post(&url).json(&body).bearer_auth("wrong-token"),
        tam.http
            .post(&url)
            .json(&body)
            .bearer_auth(format!("{TOKEN}x")),
        tam.http
            .post(&url)
            .json(&body)
            .header(AUTHORIZATION, format!("Basic {TOKEN}")),
        tam.http.get(tam.url("/metrics")),
        tam.http.get(tam.url("/admin/openapi.json")),
    ];
    let n = attempts.len();
    for req in attempts {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }
    assert_eq!(state(&tam.store), before);
    let audit = tam.store.snapshot().audit;
    assert_eq!(audit.len(), n);
    assert!(
        audit
            .iter()
            .all(|e| e.event.ends_with("-> 401 (unauthenticated)")),
        "{audit:?}"
    );
    assert_eq!(
        audit[0].event,
        "admin POST /admin/signers -> 401 (unauthenticated)"
    );

    // With the token, the call is made and audited as such.
    let (status, _) = tam.get("/admin/audit?offset=0&limit=2").await;
    assert_eq!(status, StatusCode::OK);
    let (_, page) = tam.get(&format!("/admin/audit?offset={n}")).await;
    let events: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["admin GET /admin/audit -> 200"]);
}

/// Every route the router serves, with its path parameters filled in.
const ROUTES: [(&str, &str); 20] = [
    ("get", "/admin/devices/{id}/sessions"),
    ("get", "/admin/sessions/latest"),
    ("post", "/admin/tcs"),
    ("get", "/admin/tcs"),
    ("post", "/admin/tcs/revoke"),
    ("get", "/admin/policy"),
    ("put", "/admin/policy/class/{class}"),
    ("put", "/admin/policy/device/{id}"),
    ("get", "/admin/devices"),
    ("get", "/admin/devices/{id}"),
    ("post", "/admin/devices/{id}/revoke"),
    ("get", "/admin/devices/{id}/attestations"),
    ("post", "/admin/devices"),
    ("put", "/admin/devices/{id}/class"),
    ("get", "/admin/signers"),
    ("post", "/admin/signers"),
    ("delete", "/admin/signers/{name}"),
    ("get", "/admin/audit"),
    ("get", "/metrics"),
    ("get", "/admin/openapi.json"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_and_every_listed_route_is_served() {
    let tam = start().await;
    let (status, doc) = tam.get("/admin/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let mut listed: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(|m| (m.clone(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    listed.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    for (method, path) in &listed {
        let concrete = path
            .replace("{class}", "phone")
            .replace("{id}", &"00".repeat(32))
            .replace("{name}", "nobody");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let (status, body) = tam
            .call(
                tam.http
                    .request(method.clone(), tam.url(&concrete))
                    .json(&json!({})),
            )
            .await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(body["message"], "no such route", "{method} {path}");
    }
    let (status, body) = tam.get("/admin/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "no such route");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_teep_session() {
    let tam = start().await;
    let agent = tam.world.agent(Curve::P256);
    let (status, _) = tam.contact(&agent).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = tam.teep(b"\x01\x02".to_vec()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let resp = tam
        .http
        .get(tam.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    for line in [
        "teep_tam_sessions_opened_total 1",
        "teep_tam_messages_total{kind=\"query_request_sent\"} 1",
        "teep_tam_messages_total{kind=\"up_to_date\"} 1",
        "teep_tam_attestations_total{kind=\"accepted\"} 1",
        "teep_tam_dropped_total{kind=\"malformed\"} 1",
        "teep_tam_request_seconds_count 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
}

/// The manifest IDs an Update unlinks.
fn unneeded(agent: &Agent, reply: &[u8]) -> Vec<teep_proto::ComponentId> {
    match agent.read(reply) {
        Message::Update(u) => u.unneeded_manifest_list.unwrap_or_default(),
        other => panic!("expected an Update, got {other:?}"),
    }
}

/// Installs `app` on a new device through the admin API and TEEP over HTTP.
async fn installed_device(tam: &Running) -> Agent {
    let key = tc_signer_key();
    tam.add_signer("vendor", &key, &[""]).await;
    let (status, _) = tam.upload(signed(&key, "app", 1)).await;
    assert_eq!(status, StatusCode::CREATED);
    let app = manifest_id("app").to_string();
    let (status, body) = tam
        .send_json(
            "PUT",
            &format!("/admin/policy/class/{}", common::CLASS),
            json!({"install": [app]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let agent = tam.world.agent(Curve::P256);
    let (status, reply) = tam.contact(&agent).await;
    assert_eq!(status, StatusCode::OK);
    let update = common::update(agent.read(&reply));
    assert_eq!(update.manifest_list.as_ref().map(Vec::len), Some(1));
    let (status, _) = tam.teep(agent.success(&update.token.unwrap(), None)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, devices) = tam.get("/admin/devices").await;
    assert_eq!(devices[0]["installed"], json!([[app, 1]]));
    assert!(devices[0]["last_contact"].is_u64());
    assert!(devices[0]["last_attestation"].is_array());
    agent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_tc_from_policy_unlinks_it_at_the_next_contact() {
    let tam = start().await;
    let agent = installed_device(&tam).await;
    let (status, _) = tam
        .send_json(
            "PUT",
            &format!("/admin/policy/class/{}", common::CLASS),
            json!({"install": []}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, policy) = tam.get("/admin/policy").await;
    assert_eq!(policy["classes"][common::CLASS]["install"], json!([]));
    let (status, reply) = tam.contact(&agent).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unneeded(&agent, &reply), [manifest_id("app")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_tc_unlinks_it_and_refuses_new_versions() {
    let tam = start().await;
    let agent = installed_device(&tam).await;
    let app = manifest_id("app").to_string();
    let (status, body) = tam
        .send_json("POST", "/admin/tcs/revoke", json!({"manifest_id": app}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (_, list) = tam.get("/admin/tcs").await;
    assert_eq!(list[0]["revoked"], true);
    // Policy still names it; revocation wins.
    let (status, reply) = tam.contact(&agent).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unneeded(&agent, &reply), [manifest_id("app")]);
    let (_, signers) = tam.get("/admin/signers").await;
    assert_eq!(signers.as_array().unwrap().len(), 1);
    let before = state(&tam.store);
    let key = tc_signer_key();
    let (status, body) = tam.upload(signed(&key, "app", 9)).await;
    // An unknown key fails first; the revoked check is reached by the right signer only,
    // which the store-level test covers.
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(state(&tam.store), before);
    let (status, _) = tam
        .send_json("POST", "/admin/tcs/revoke", json!({"manifest_id": "/ff"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_stays_out_with_good_evidence() {
    let tam = start().await;
    let agent = installed_device(&tam).await;
    let id = hex::encode(agent.id().0);
    let (status, _) = tam
        .send_json("POST", &format!("/admin/devices/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let before = state(&tam.store);
    // A new TC version would be sent to a device in good standing.
    let (status, reply) = tam.contact(&agent).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply:?}");
    let after = state(&tam.store);
    // Only the new session's token was recorded; the device got nothing.
    assert_eq!(after.devices, before.devices);
    assert_eq!(after.attestations, before.attestations);
    let (_, devices) = tam.get("/admin/devices").await;
    assert_eq!(devices[0]["revoked"], true);
    let (status, _) = tam
        .send_json(
            "POST",
            &format!("/admin/devices/{}/revoke", "11".repeat(32)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tc_in_policy_pulls_its_declared_dependencies() {
    let tam = start().await;
    let key = tc_signer_key();
    tam.add_signer("vendor", &key, &[""]).await;
    let lib = signed(&key, "lib", 1);
    let (status, _) = tam.upload(lib.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    let app = signed_envelope(common::signer(&key).as_ref(), "app", 1, &[lib]);
    let (status, body) = tam.upload(app).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let lib_id = manifest_id("lib").to_string();
    assert_eq!(body["depends_on"], json!([lib_id]));
    let (status, _) = tam
        .send_json(
            "PUT",
            &format!("/admin/policy/class/{}", common::CLASS),
            json!({"install": [manifest_id("app").to_string()]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let agent = tam.world.agent(Curve::P256);
    let (status, reply) = tam.contact(&agent).await;
    assert_eq!(status, StatusCode::OK);
    let update = common::update(agent.read(&reply));
    let sent: Vec<teep_proto::ComponentId> = update
        .manifest_list
        .unwrap()
        .iter()
        .map(|m| {
            let env = teep_suit::model::Envelope::decode(m).unwrap();
            let manifest = teep_suit::model::Manifest::decode(env.manifest_bytes).unwrap();
            teep_proto::ComponentId(manifest.manifest_component_id.unwrap().0)
        })
        .collect();
    assert_eq!(sent, [manifest_id("lib"), manifest_id("app")]);
}

// ---- device registration -------------------------------------------------------------

/// The audit detail of the last audit line.
fn last_detail(tam: &Running) -> String {
    tam.store
        .snapshot()
        .audit
        .last()
        .and_then(|e| e.detail.clone())
        .unwrap_or_default()
}

/// Sets the class policy of `common::CLASS` to install `app` (uploaded first).
async fn app_for_class(tam: &Running) {
    let key = tc_signer_key();
    tam.add_signer("vendor", &key, &[""]).await;
    let (status, _) = tam.upload(signed(&key, "app", 1)).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = tam
        .send_json(
            "PUT",
            &format!("/admin/policy/class/{}", common::CLASS),
            json!({"install": [manifest_id("app").to_string()]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_exempt_device_gets_its_class_policy_without_evidence() {
    let tam = start().await;
    app_for_class(&tam).await;
    let agent = tam.world.agent(Curve::Ed25519);
    let body = json!({
        "key": agent.key.public_key().to_pem(),
        "class": common::CLASS,
        "attestation_exempt": true,
    });
    let (status, reply) = tam.send_json("POST", "/admin/devices", body).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    // The id is the one the engine derives from the key.
    assert_eq!(reply["id"], hex::encode(agent.id().0));
    assert_eq!(reply["created"], true);
    assert!(last_detail(&tam).contains(&hex::encode(agent.id().0)));
    let (_, devices) = tam.get("/admin/devices").await;
    assert_eq!(devices[0]["class"], common::CLASS);
    assert_eq!(devices[0]["attestation_exempt"], true);
    // No Evidence: the registration stands in for it.
    let (status, qr) = tam.teep(Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let qr = agent.read_query(&qr);
    let (status, reply) = tam.teep(agent.plain_response(&qr)).await;
    assert_eq!(status, StatusCode::OK);
    let update = common::update(agent.read(&reply));
    assert_eq!(update.manifest_list.as_ref().map(Vec::len), Some(1));
    // The same key as a hex COSE_Key names the same device (now known: 200).
    let body = json!({"key": hex::encode(agent.key.public_key().to_cose_key_bytes())});
    let (status, reply) = tam.send_json("POST", "/admin/devices", body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["id"], hex::encode(agent.id().0));
    assert_eq!(reply["created"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_registrations_change_nothing() {
    let tam = start().await;
    let p256 = PrivateKey::generate(Curve::P256).unwrap();
    let p384 = PrivateKey::generate(Curve::P384).unwrap();
    // A COSE_Key with an unknown curve (crv 99), written by hand.
    let mut odd_curve = Vec::new();
    minicbor::Encoder::new(&mut odd_curve)
        .map(4)
        .unwrap()
        .i8(1)
        .unwrap()
        .u8(2)
        .unwrap()
        .i8(-1)
        .unwrap()
        .u8(99)
        .unwrap()
        .i8(-2)
        .unwrap()
        .bytes(&[1; 32])
        .unwrap()
        .i8(-3)
        .unwrap()
        .bytes(&[2; 32])
        .unwrap();
    // A P-256 point that is not on the curve.
    let mut off_curve = p256.public_key().to_cose_key_bytes();
    let last = off_curve.len() - 1;
    off_curve[last] ^= 0x01;
    let good_pem = p256.public_key().to_pem();
    let cases: Vec<(&str, Value)> = vec![
        ("empty key", json!({"key": ""})),
        ("not hex", json!({"key": "zz"})),
        ("not a COSE_Key", json!({"key": "a0"})),
        (
            "broken PEM",
            json!({"key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}),
        ),
        ("P-384", json!({"key": p384.public_key().to_pem()})),
        ("private PEM", json!({"key": p256.to_pkcs8_pem()})),
        (
            "private COSE_Key",
            json!({"key": hex::encode(p256.to_cose_key_bytes())}),
        ),
        ("unknown curve", json!({"key": hex::encode(&odd_curve)})),
        (
            "point off the curve",
            json!({"key": hex::encode(&off_curve)}),
        ),
        (
            "control character class",
            json!({"key": good_pem, "class": "a\nb"}),
        ),
        ("empty class", json!({"key": good_pem, "class": ""})),
        (
            "overlong class",
            json!({"key": good_pem, "class": "c".repeat(129)}),
        ),
        ("no key", json!({"class": "x"})),
    ];
    let before = state(&tam.store);
    for (what, body) in cases {
        let audit = tam.audit_len();
        let (status, reply) = tam.send_json("POST", "/admin/devices", body).await;
        assert!(status.is_client_error(), "{what}: {status} {reply}");
        assert_eq!(state(&tam.store), before, "{what} changed the store");
        assert_eq!(tam.audit_len(), audit + 1, "{what} was not audited");
        let detail = last_detail(&tam);
        assert!(detail.starts_with("refused "), "{what}: {detail}");
        assert!(
            !detail.contains("PRIVATE"),
            "{what}: a secret in the audit: {detail}"
        );
    }
    // Without the token nothing is registered either.
    let resp = tam
        .http
        .post(tam.url("/admin/devices"))
        .json(&json!({"key": good_pem}))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(state(&tam.store), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_a_revoked_device_keeps_it_revoked() {
    let tam = start().await;
    let agent = installed_device(&tam).await;
    let id = hex::encode(agent.id().0);
    let (status, _) = tam
        .send_json("POST", &format!("/admin/devices/{id}/revoke"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(last_detail(&tam), format!("device {id} revoked"));
    let body = json!({
        "key": agent.key.public_key().to_pem(),
        "class": "other",
        "attestation_exempt": true,
    });
    let (status, reply) = tam.send_json("POST", "/admin/devices", body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let d = &state(&tam.store).devices[&agent.id()];
    assert!(d.revoked, "registration un-revoked the device");
    assert_eq!(
        d.installed.len(),
        1,
        "registration forgot what is installed"
    );
    assert!(d.attested_at.is_some());
    assert_eq!(d.class.as_deref(), Some("other"));
    // It still gets nothing.
    let (status, _) = tam.contact(&agent).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_class_is_set_for_known_devices_only() {
    let tam = start().await;
    let agent = installed_device(&tam).await;
    let id = hex::encode(agent.id().0);
    let before = state(&tam.store);
    for (path, body, want) in [
        (
            format!("/admin/devices/{}/class", "11".repeat(32)),
            json!({"class": "x"}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/admin/devices/zz/class".to_owned(),
            json!({"class": "x"}),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/admin/devices/{id}/class"),
            json!({"class": "bad\u{7}"}),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, reply) = tam.send_json("PUT", &path, body).await;
        assert_eq!(status, want, "{path}: {reply}");
        assert_eq!(state(&tam.store), before, "{path} changed the store");
        assert!(last_detail(&tam).starts_with("refused "));
    }
    let (status, _) = tam
        .send_json(
            "PUT",
            &format!("/admin/devices/{id}/class"),
            json!({"class": "tablet"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(last_detail(&tam), format!("device {id} class tablet"));
    let (_, devices) = tam.get("/admin/devices").await;
    assert_eq!(devices[0]["class"], "tablet");
    // The class's policy (none for "tablet") now applies: app is unlinked.
    let (status, reply) = tam.contact(&agent).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unneeded(&agent, &reply), [manifest_id("app")]);
}

// ---- audit detail ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_lines_say_what_was_affected_and_why_refused() {
    let tam = start().await;
    let key = tc_signer_key();
    tam.add_signer("vendor", &key, &[""]).await;
    let thumbprint = hex::encode(key.public_key().thumbprint());
    assert_eq!(
        last_detail(&tam),
        format!("signer vendor key {thumbprint} scope []")
    );
    let (_, v1) = tam.upload(signed(&key, "app", 1)).await;
    let app = manifest_id("app").to_string();
    assert_eq!(
        last_detail(&tam),
        format!(
            "manifest {app} sequence 1 signer vendor key {thumbprint} release {}",
            v1["digest"].as_str().unwrap()
        )
    );
    let (status, _) = tam.upload(signed(&key, "app", 1)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        last_detail(&tam),
        format!(
            "refused rollback (manifest {app} sequence 1 signer vendor key {thumbprint}): \
             sequence number 1 is not above the latest, 1"
        )
    );
    tam.send_json(
        "PUT",
        "/admin/policy/class/phone",
        json!({"install": [app], "requestable": [app]}),
    )
    .await;
    assert_eq!(
        last_detail(&tam),
        format!("policy of class phone: install [{app}] requestable [{app}]")
    );
    tam.send_json(
        "PUT",
        "/admin/policy/class/phone",
        json!({"install": ["/ff"]}),
    )
    .await;
    assert_eq!(
        last_detail(&tam),
        "refused bad_request (class phone): no TC /ff has been uploaded"
    );
    tam.send_json("POST", "/admin/tcs/revoke", json!({"manifest_id": app}))
        .await;
    assert_eq!(last_detail(&tam), format!("manifest {app}"));
    // Shown by GET /admin/audit, and never the token or an envelope's bytes.
    let (_, page) = tam.get("/admin/audit?limit=1000").await;
    let lines = page.as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["detail"] == format!("manifest {app}"))
    );
    let text = page.to_string();
    assert!(!text.contains(TOKEN));
    let envelope_hex = hex::encode(signed(&key, "app", 1));
    assert!(!text.contains(&envelope_hex[..64]));
    // A refused token is audited with its typed reason.
    tam.http.get(tam.url("/admin/tcs")).send().await.unwrap();
    assert_eq!(
        last_detail(&tam),
        "refused unauthorized: missing or wrong bearer token"
    );
}

// ---- CA anchors ------------------------------------------------------------------------

struct Ca {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

fn make_ca(name: &str, usages: Vec<rcgen::KeyUsagePurpose>) -> Ca {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, date_time_ymd};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = usages;
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2099, 1, 1);
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        issuer: rcgen::Issuer::new(params, key),
        pem,
    }
}

struct Leaf {
    key: PrivateKey,
    der: Vec<u8>,
    pem: String,
}

fn make_leaf(ca: &Ca) -> Leaf {
    use rcgen::{CertificateParams, DnType, KeyPair, date_time_ymd};
    let key = PrivateKey::generate(Curve::P256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "TC signer");
    params.not_before = date_time_ymd(2024, 1, 1);
    params.not_after = date_time_ymd(2099, 1, 1);
    let public = KeyPair::from_pem(&key.to_pkcs8_pem()).unwrap();
    let cert = params.signed_by(&public, &ca.issuer).unwrap();
    Leaf {
        key,
        der: cert.der().to_vec(),
        pem: cert.pem(),
    }
}

/// The TC `name` signed by `leaf`, its certificate in the protected `x5chain` (the
/// envelope assembled by hand around the COSE_Sign1).
fn certified(leaf: &Leaf, name: &str, sequence: u64) -> Vec<u8> {
    use minicbor::Encoder;
    let unsigned = unsigned_envelope(name, sequence, &[]);
    let env = teep_suit::model::Envelope::decode(&unsigned).unwrap();
    let signer = common::signer(&leaf.key);
    let opts = teep_cose::SignOptions {
        detached: true,
        kid: false,
        x5chain: vec![leaf.der.clone()],
        ..teep_cose::SignOptions::default()
    };
    let block = teep_cose::sign1(signer.as_ref(), env.authentication.digest_cbor, &opts).unwrap();
    let mut auth = Vec::new();
    Encoder::new(&mut auth)
        .array(2)
        .unwrap()
        .bytes(env.authentication.digest_cbor)
        .unwrap()
        .bytes(&block)
        .unwrap();
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    e.map(2 + env.integrated.len() as u64).unwrap();
    e.u8(2).unwrap().bytes(&auth).unwrap();
    e.u8(3).unwrap();
    out.extend_from_slice(env.manifest_bstr);
    let mut e = Encoder::new(&mut out);
    for (k, v) in &env.integrated {
        e.str(k).unwrap().bytes(v).unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_anchor_admits_its_leaves_within_scope_and_pins_each_tc_to_its_leaf() {
    use rcgen::KeyUsagePurpose::{DigitalSignature, KeyCertSign};
    let tam = start().await;
    let ca = make_ca("vendor CA", vec![KeyCertSign]);
    let other_ca = make_ca("other CA", vec![KeyCertSign]);
    let not_signing_ca = make_ca("no keyCertSign", vec![DigitalSignature]);
    let leaf = make_leaf(&ca);
    let second = make_leaf(&ca);
    let stranger = make_leaf(&other_ca);
    let scope = "/TEEP-Device/app";

    // Anchors that are not one CA certificate are refused.
    let before = state(&tam.store);
    let key_hex = hex::encode(leaf.key.public_key().to_cose_key_bytes());
    for (what, body) in [
        (
            "a leaf as CA",
            json!({"name": "x", "ca": leaf.pem, "scope": [scope]}),
        ),
        (
            "no keyCertSign",
            json!({"name": "x", "ca": not_signing_ca.pem, "scope": [scope]}),
        ),
        (
            "two certificates",
            json!({"name": "x", "ca": format!("{}{}", ca.pem, other_ca.pem), "scope": [scope]}),
        ),
        (
            "garbage",
            json!({"name": "x", "ca": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "scope": [scope]}),
        ),
        (
            "not DER",
            json!({"name": "x", "ca": "3000", "scope": [scope]}),
        ),
        (
            "key and CA",
            json!({"name": "x", "key": key_hex, "ca": ca.pem, "scope": [scope]}),
        ),
        ("neither", json!({"name": "x", "scope": [scope]})),
    ] {
        let (status, reply) = tam.send_json("POST", "/admin/signers", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {reply}");
        assert_eq!(state(&tam.store), before, "{what} changed the store");
    }

    let body = json!({"name": "vendor-ca", "ca": ca.pem, "scope": [scope]});
    let (status, reply) = tam.send_json("POST", "/admin/signers", body).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert!(last_detail(&tam).starts_with("signer vendor-ca CA sha256:"));
    let (_, signers) = tam.get("/admin/signers").await;
    assert!(
        signers[0]["ca"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );

    let (status, reply) = tam.upload(certified(&leaf, "app", 1)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    assert_eq!(
        reply["signer"],
        hex::encode(leaf.key.public_key().thumbprint())
    );
    assert!(last_detail(&tam).contains("signer vendor-ca"));

    let before = state(&tam.store);
    for (what, envelope, want, code) in [
        (
            "a second leaf of the same CA overwriting the first's TC",
            certified(&second, "app", 2),
            StatusCode::CONFLICT,
            "signer_changed",
        ),
        (
            "a leaf of an unconfigured CA",
            certified(&stranger, "app", 2),
            StatusCode::UNPROCESSABLE_ENTITY,
            "envelope_rejected",
        ),
        (
            "a leaf writing outside the CA's scope",
            certified(&leaf, "other", 1),
            StatusCode::UNPROCESSABLE_ENTITY,
            "out_of_scope",
        ),
        (
            "the leaf's key without its certificate",
            signed(&leaf.key, "app", 2),
            StatusCode::UNPROCESSABLE_ENTITY,
            "envelope_rejected",
        ),
    ] {
        let (status, reply) = tam.upload(envelope).await;
        assert_eq!(status, want, "{what}: {reply}");
        assert_eq!(reply["error"], code, "{what}: {reply}");
        assert_eq!(state(&tam.store), before, "{what} changed the store");
    }
    // The same leaf's next version is taken.
    let (status, reply) = tam.upload(certified(&leaf, "app", 2)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_leaf_is_held_to_the_ca_scope_even_if_its_key_is_a_wider_raw_anchor() {
    use rcgen::KeyUsagePurpose::KeyCertSign;
    let tam = start().await;
    let ca = make_ca("vendor CA", vec![KeyCertSign]);
    let leaf = make_leaf(&ca);
    let body = json!({"name": "vendor-ca", "ca": ca.pem, "scope": ["/TEEP-Device/app"]});
    let (status, _) = tam.send_json("POST", "/admin/signers", body).await;
    assert_eq!(status, StatusCode::CREATED);
    // The same key as a raw anchor scoped elsewhere: the x5chain envelope is the CA's.
    tam.add_signer("raw", &leaf.key, &["/TEEP-Device/lib"])
        .await;
    let before = state(&tam.store);
    let (status, reply) = tam.upload(certified(&leaf, "lib", 1)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["error"], "out_of_scope");
    assert_eq!(state(&tam.store), before);
}

/// `GET /admin/devices` lists a page at a time in id order: a full page links to the next
/// (after its last id), the last page has no link, and following the links lists every
/// device once even when one is added behind the cursor meanwhile. `GET /admin/devices/{id}`
/// shows one; bad cursors and ids are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_listed_a_page_at_a_time() {
    use teep_tam::store::{Device, DeviceId};
    let tam = start().await;
    let device = |n: u8| Device {
        id: DeviceId([n; 32]),
        key: vec![0xa4, n],
        class: Some("phone".into()),
        revoked: false,
        suite: None,
        attested_at: None,
        failed: Vec::new(),
        attestation_exempt: false,
        installed: vec![],
    };
    tam.store.with(|s| {
        for n in [9, 3, 7, 1, 5] {
            s.devices.insert(DeviceId([n; 32]), device(n));
        }
    });
    let id = |n: u8| hex::encode([n; 32]);
    let page = |path: String| {
        let request = tam.http.get(tam.url(&path)).bearer_auth(TOKEN);
        async move {
            let resp = request.send().await.unwrap();
            let status = resp.status();
            let link = resp
                .headers()
                .get("link")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (status, link, body)
        }
    };
    let ids_of = |body: &Value| -> Vec<String> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };

    let (status, link, body) = page("/admin/devices?limit=2".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids_of(&body), [id(1), id(3)]);
    let link = link.expect("a full page links to the next");
    assert_eq!(
        link,
        format!("</admin/devices?after={}&limit=2>; rel=\"next\"", id(3))
    );
    // A device added behind the cursor is not listed again, nor does it shift the rest.
    tam.store.with(|s| {
        s.devices.insert(DeviceId([2; 32]), device(2));
    });
    let mut listed = ids_of(&body);
    let mut next = Some(link);
    while let Some(link) = next {
        let path = link
            .strip_prefix('<')
            .and_then(|l| l.split_once('>'))
            .unwrap()
            .0
            .to_owned();
        let (status, link, body) = page(path).await;
        assert_eq!(status, StatusCode::OK);
        listed.extend(ids_of(&body));
        next = link;
    }
    assert_eq!(listed, [id(1), id(3), id(5), id(7), id(9)]);

    // Without a limit, one page of up to 1000: every device, and no link.
    let (_, link, body) = page("/admin/devices".into()).await;
    assert_eq!(ids_of(&body).len(), 6);
    assert_eq!(link, None);
    // A limit of 0 is raised to 1; past the last id the page is empty.
    let (_, _, body) = page("/admin/devices?limit=0".into()).await;
    assert_eq!(ids_of(&body), [id(1)]);
    let (status, link, body) = page(format!("/admin/devices?after={}", id(9))).await;
    assert_eq!(
        (status, link, ids_of(&body).len()),
        (StatusCode::OK, None, 0)
    );
    for bad in ["after=zz", "after=0102", "limit=-1", "limit=many"] {
        let (status, _, _) = page(format!("/admin/devices?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }

    let (status, one) = tam.get(&format!("/admin/devices/{}", id(7))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], id(7));
    assert_eq!(one["class"], "phone");
    let (status, _) = tam.get(&format!("/admin/devices/{}", id(8))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = tam.get("/admin/devices/not-hex").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
