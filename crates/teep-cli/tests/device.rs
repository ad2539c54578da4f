//! `teep device` end to end: the real binary as the REE side, a scripted TEE served over
//! the IPC socket by this test process, and a scripted TAM on loopback. `run --once` runs a
//! whole exchange and exits 0; a running `teep device run` answers `list`, `invoke`,
//! `request` and `unrequest`, and stops cleanly on SIGTERM, removing its socket.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

mod common;

use std::collections::VecDeque;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use teep_broker::ipc::{self, IpcConfig};
use teep_broker::{AgentAnswer, AgentCall, ComponentId, ScriptedAgent, TaInfo, TaRequest};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::sync::oneshot;

use common::teep;

/// A TAM that answers each POST from a script (`Some` = 200 with that message, `None` =
/// 204) and records the bodies it got.
#[derive(Clone, Default)]
struct Tam {
    answers: Arc<Mutex<VecDeque<Option<Vec<u8>>>>>,
    received: Arc<Mutex<Vec<Vec<u8>>>>,
}

async fn tam_post(State(tam): State<Tam>, body: Bytes) -> Response {
    tam.received.lock().unwrap().push(body.to_vec());
    match tam.answers.lock().unwrap().pop_front().flatten() {
        Some(message) => {
            ([(header::CONTENT_TYPE, "application/teep+cbor")], message).into_response()
        }
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn start_tam(answers: Vec<Option<Vec<u8>>>) -> (Tam, String) {
    let tam = Tam::default();
    tam.answers.lock().unwrap().extend(answers);
    let app = axum::Router::new()
        .route("/tam", axum::routing::post(tam_post))
        .with_state(tam.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/tam", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (tam, url)
}

/// Serves `agent` on `dir/tee.sock` until the sender is used or dropped.
fn start_tee(agent: Arc<ScriptedAgent>, dir: &Path) -> (PathBuf, oneshot::Sender<()>) {
    let path = dir.join("tee.sock");
    let (listener, file) = ipc::bind(&path).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        ipc::serve(listener, agent, IpcConfig::default(), async {
            let _ = stopped.await;
        })
        .await;
        drop(file);
    });
    (path, stop)
}

fn id(s: &str) -> ComponentId {
    ComponentId(vec![s.as_bytes().to_vec()])
}

async fn device(args: &[&str], state: &Path) -> std::process::Output {
    let mut cmd = tokio::process::Command::from(teep());
    cmd.arg("device").args(args).arg("--state-dir").arg(state);
    cmd.output().await.unwrap()
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_runs_a_whole_exchange_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (tam, url) = start_tam(vec![Some(b"query-request".to_vec()), None]).await;
    let agent = Arc::new(
        ScriptedAgent::new()
            .on_policy_check(Ok(AgentAnswer::Contact {
                tam_uri: url.clone(),
                message: None,
            }))
            .reply(Ok(Some(b"query-response".to_vec()))),
    );
    let (tee_socket, _stop) = start_tee(Arc::clone(&agent), dir.path());
    let state = dir.path().join("device");
    let mut cmd = tokio::process::Command::from(teep());
    cmd.args([
        "device",
        "run",
        "--once",
        "--allow-plain-http",
        "--tam",
        &url,
    ])
    .arg("--tee-socket")
    .arg(&tee_socket)
    .arg("--state-dir")
    .arg(&state);
    let out = cmd.output().await.unwrap();
    let printed = stdout(&out);
    assert!(
        printed.contains("1 TAM exchange(s) completed, 0 TAM(s) not reached"),
        "{printed}"
    );
    // Empty POST, the Agent's reply relayed, 204 ended it.
    assert_eq!(
        *tam.received.lock().unwrap(),
        [Vec::new(), b"query-response".to_vec()]
    );
    assert_eq!(
        agent.calls(),
        [
            AgentCall::RequestPolicyCheck { new_check: true },
            AgentCall::ProcessTeepMessage {
                tam_uri: url,
                message: b"query-request".to_vec(),
            },
            AgentCall::RequestPolicyCheck { new_check: false },
        ]
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("teep/http exchange ends: no content"), "{log}");
    // The state directory was made, owner-only.
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_once_without_a_tee_fails_and_an_unreachable_tam_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("device");
    let out = device(&["run", "--once"], &state).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent unavailable"), "{err}");

    // The TEE names a plain-http TAM, refused without --allow-plain-http: ProcessError, exit 1.
    let agent = Arc::new(
        ScriptedAgent::new().on_policy_check(Ok(AgentAnswer::Contact {
            tam_uri: "http://127.0.0.1:9/tam".into(),
            message: None,
        })),
    );
    let (tee_socket, _stop) = start_tee(Arc::clone(&agent), dir.path());
    let mut cmd = tokio::process::Command::from(teep());
    cmd.args(["device", "run", "--once", "--tee-socket"])
        .arg(&tee_socket)
        .arg("--state-dir")
        .arg(&state);
    let out = cmd.output().await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 TAM(s) not reached"));
    assert!(matches!(agent.calls()[1], AgentCall::ProcessError { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_broker_serves_the_device_commands_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (tam, url) = start_tam(vec![Some(b"update".to_vec()), None]).await;
    let hello = TaInfo {
        component_id: ComponentId(vec![vec![0], b"hello.wasm".to_vec()]),
        sequence_number: Some(2),
    };
    let agent = Arc::new(
        ScriptedAgent::new()
            .on_request_ta(Ok(AgentAnswer::Contact {
                tam_uri: url.clone(),
                message: Some(b"query-response".to_vec()),
            }))
            .reply(Ok(Some(b"success".to_vec())))
            .with_ta(hello.clone(), |input| input.iter().rev().copied().collect()),
    );
    let (tee_socket, _stop) = start_tee(Arc::clone(&agent), dir.path());
    let state = dir.path().join("device");
    let mut cmd = tokio::process::Command::from(teep());
    cmd.args(["device", "run", "--allow-plain-http", "--tam", &url])
        .arg("--tee-socket")
        .arg(&tee_socket)
        .arg("--state-dir")
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let api_socket = loop {
        let line = lines.next_line().await.unwrap().expect("exited early");
        if let Some(path) = line.strip_prefix("api socket: ") {
            break PathBuf::from(path);
        }
    };
    assert_eq!(api_socket, state.join("broker.sock"));
    let mode = std::fs::metadata(&api_socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let listed = stdout(&device(&["list"], &state).await);
    assert_eq!(listed, "/%00/hello.wasm\tsequence 2\n");
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&device(&["list", "--json"], &state).await)).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"component_id": ["00", "68656c6c6f2e7761736d"], "sequence_number": 2}])
    );
    let out = device(&["invoke", "/%00/hello.wasm", "--input", "hello"], &state).await;
    assert_eq!(stdout(&out), "olleh\n");
    let out = device(
        &[
            "invoke",
            r#"["00","68656c6c6f2e7761736d"]"#,
            "--input-hex",
            "0102",
            "--hex",
        ],
        &state,
    )
    .await;
    assert_eq!(stdout(&out), "0201\n");
    let out = device(&["invoke", "/nope", "--input", "x"], &state).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown_ta"));

    // RequestTA carries the Broker's --tam as the hint; the exchange starts with the
    // Agent's message and ends with the TAM's 204.
    let out = device(&["request", "/ta.wasm"], &state).await;
    assert_eq!(
        stdout(&out),
        "requested /ta.wasm: completed (1 TAM exchange(s))\n"
    );
    let out = device(&["unrequest", "/ta.wasm"], &state).await;
    assert_eq!(stdout(&out), "unrequested /ta.wasm: nothing to do\n");
    assert_eq!(
        *tam.received.lock().unwrap(),
        [b"query-response".to_vec(), b"success".to_vec()]
    );
    let calls = agent.calls();
    assert!(
        calls.contains(&AgentCall::RequestTa(TaRequest {
            component_id: id("ta.wasm"),
            tam_uri: Some(url.clone()),
        })),
        "{calls:?}"
    );
    assert!(calls.contains(&AgentCall::ProcessTeepMessage {
        tam_uri: url,
        message: b"update".to_vec(),
    }));
    assert!(calls.contains(&AgentCall::UnrequestTa(id("ta.wasm"))));
    // The policy check at start found nothing to do.
    assert!(
        calls.contains(&AgentCall::RequestPolicyCheck { new_check: true }),
        "{calls:?}"
    );

    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().await.unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(!api_socket.exists(), "the API socket is removed");
    let mut log = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut log)
        .await
        .unwrap();
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );
    // Nobody answers any more.
    let out = device(&["list"], &state).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is `teep device run` running?"));
}
