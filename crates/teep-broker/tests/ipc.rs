//! The Agent API over a Unix socket: every call round trip, what a hostile or broken peer
//! gets (garbage, oversize frames, hanging, disconnecting), concurrency, shutdown, and the
//! socket file (mode 0600, stale replaced, live or foreign left alone).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers outside #[test] fns: a failure here is a failed test"
)]

use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ciborium::Value;
use teep_broker::ipc::{self, IpcAgent, IpcConfig};
use teep_broker::{
    Agent, AgentAnswer, AgentCall, AgentError, ComponentId, ScriptedAgent, TaInfo, TaRequest,
    TransportError,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Barrier, oneshot};
use tokio::task::JoinHandle;

/// Guard against a hang: a test that would wait forever fails instead.
const GUARD: Duration = Duration::from_secs(30);

struct Server {
    _dir: tempfile::TempDir,
    path: PathBuf,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Server {
    fn client(&self) -> IpcAgent {
        IpcAgent::new(&self.path, IpcConfig::default())
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(GUARD, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

fn start<A: Agent + 'static>(agent: Arc<A>, cfg: IpcConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tee.sock");
    let (listener, file) = ipc::bind(&path).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        ipc::serve(listener, agent, cfg, async {
            let _ = stopped.await;
        })
        .await;
        drop(file);
    });
    Server {
        _dir: dir,
        path,
        stop,
        task,
    }
}

fn id(s: &str) -> ComponentId {
    ComponentId(vec![s.as_bytes().to_vec()])
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

async fn read_reply(stream: &mut UnixStream) -> Value {
    let len = stream.read_u32().await.unwrap();
    let mut body = vec![0; len as usize];
    stream.read_exact(&mut body).await.unwrap();
    ciborium::from_reader(body.as_slice()).unwrap()
}

/// The `{"error": {kind: detail}}` reply's kind.
fn error_kind(reply: &Value) -> String {
    let map = reply.as_map().unwrap();
    assert_eq!(map.len(), 1, "{reply:?}");
    let (key, value) = &map[0];
    assert_eq!(key.as_text(), Some("error"), "{reply:?}");
    value.as_map().unwrap()[0].0.as_text().unwrap().to_owned()
}

#[tokio::test]
async fn every_call_round_trips() {
    let ta = TaInfo {
        component_id: id("ta.wasm"),
        sequence_number: Some(3),
    };
    let agent = Arc::new(
        ScriptedAgent::new()
            .on_request_ta(Ok(AgentAnswer::Contact {
                tam_uri: "https://tam.example/tam".into(),
                message: Some(vec![0x83, 0, 0xff]),
            }))
            .on_unrequest_ta(Ok(AgentAnswer::Nothing))
            .on_policy_check(Ok(AgentAnswer::Contact {
                tam_uri: "https://other.example/tam".into(),
                message: None,
            }))
            .on_process_error(Err(AgentError::Refused("no other TAM".into())))
            .reply(Ok(Some(vec![1, 2, 3])))
            .reply(Ok(None))
            .with_ta(ta.clone(), |input| input.iter().rev().copied().collect()),
    );
    let server = start(Arc::clone(&agent), IpcConfig::default());
    let tee = server.client();
    let request = TaRequest {
        component_id: id("ta.wasm"),
        tam_uri: Some("https://hint.example/tam".into()),
    };
    assert_eq!(
        tee.request_ta(request.clone()).await,
        Ok(AgentAnswer::Contact {
            tam_uri: "https://tam.example/tam".into(),
            message: Some(vec![0x83, 0, 0xff]),
        })
    );
    assert_eq!(tee.unrequest_ta(id("old")).await, Ok(AgentAnswer::Nothing));
    let big = vec![0xa5; 1024 * 1024];
    assert_eq!(
        tee.process_teep_message("https://tam.example/tam", big.clone())
            .await,
        Ok(Some(vec![1, 2, 3]))
    );
    assert_eq!(
        tee.process_teep_message("https://tam.example/tam", vec![])
            .await,
        Ok(None)
    );
    assert_eq!(
        tee.request_policy_check(true).await,
        Ok(AgentAnswer::Contact {
            tam_uri: "https://other.example/tam".into(),
            message: None,
        })
    );
    let failure = TransportError::MediaType(Some("text/html".into()));
    assert_eq!(
        tee.process_error("https://other.example/tam", &failure)
            .await,
        Err(AgentError::Refused("no other TAM".into()))
    );
    assert_eq!(tee.list_tas().await, Ok(vec![ta]));
    assert_eq!(
        tee.invoke_ta(&id("ta.wasm"), b"abc".to_vec()).await,
        Ok(b"cba".to_vec())
    );
    assert_eq!(
        tee.invoke_ta(&id("nope"), vec![]).await,
        Err(AgentError::UnknownTa(id("nope")))
    );
    assert_eq!(
        agent.calls(),
        [
            AgentCall::RequestTa(request),
            AgentCall::UnrequestTa(id("old")),
            AgentCall::ProcessTeepMessage {
                tam_uri: "https://tam.example/tam".into(),
                message: big,
            },
            AgentCall::ProcessTeepMessage {
                tam_uri: "https://tam.example/tam".into(),
                message: vec![],
            },
            AgentCall::RequestPolicyCheck { new_check: true },
            AgentCall::ProcessError {
                tam_uri: "https://other.example/tam".into(),
                error: failure,
            },
            AgentCall::ListTas,
            AgentCall::InvokeTa {
                component_id: id("ta.wasm"),
                input: b"abc".to_vec(),
            },
            AgentCall::InvokeTa {
                component_id: id("nope"),
                input: vec![],
            },
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn garbage_is_refused_without_reaching_the_agent_and_the_server_goes_on() {
    let agent = Arc::new(ScriptedAgent::new());
    let server = start(Arc::clone(&agent), IpcConfig::default());
    let mut raw = UnixStream::connect(&server.path).await.unwrap();
    let mut call = Vec::new();
    // A call the protocol does not have, a known call with the wrong argument type, an
    // invoke whose input is an integer array instead of a byte string, trailing bytes,
    // not CBOR, an empty frame.
    ciborium::into_writer(
        &Value::Map(vec![("format_disk".into(), Value::Null)]),
        &mut call,
    )
    .unwrap();
    let mut wrong_type = Vec::new();
    ciborium::into_writer(
        &Value::Map(vec![("unrequest_ta".into(), Value::Integer(7.into()))]),
        &mut wrong_type,
    )
    .unwrap();
    let mut int_array = Vec::new();
    ciborium::into_writer(
        &Value::Map(vec![(
            "invoke_ta".into(),
            Value::Map(vec![
                (
                    "component_id".into(),
                    Value::Array(vec![Value::Text("00".into())]),
                ),
                ("input".into(), Value::Array(vec![Value::Integer(1.into())])),
            ]),
        )]),
        &mut int_array,
    )
    .unwrap();
    let mut trailing = Vec::new();
    ciborium::into_writer(&Value::Text("list_tas".into()), &mut trailing).unwrap();
    trailing.push(0xf6);
    for body in [
        call,
        wrong_type,
        int_array,
        trailing,
        vec![0xff, 0x00, 0x13],
        vec![],
    ] {
        raw.write_all(&frame(&body)).await.unwrap();
        let reply = read_reply(&mut raw).await;
        assert_eq!(error_kind(&reply), "refused", "{body:02x?}");
    }
    // The same connection still works for a good call, and so does a new client.
    let mut list = Vec::new();
    ciborium::into_writer(&Value::Text("list_tas".into()), &mut list).unwrap();
    raw.write_all(&frame(&list)).await.unwrap();
    let reply = read_reply(&mut raw).await;
    assert_eq!(reply.as_map().unwrap()[0].0.as_text(), Some("tas"));
    assert_eq!(server.client().list_tas().await, Ok(vec![]));
    assert_eq!(agent.calls(), [AgentCall::ListTas, AgentCall::ListTas]);
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_frame_is_dropped_without_waiting_for_its_body() {
    let agent = Arc::new(ScriptedAgent::new());
    let cfg = IpcConfig {
        max_frame: 1024,
        // Long: the connection must end because of the size, not a timeout.
        io_timeout: Duration::from_secs(3600),
        ..IpcConfig::default()
    };
    let server = start(Arc::clone(&agent), cfg);
    let mut raw = UnixStream::connect(&server.path).await.unwrap();
    raw.write_all(&1025u32.to_be_bytes()).await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(GUARD, raw.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?} {rest:?}");
    // A 4 GiB claim too.
    let mut raw = UnixStream::connect(&server.path).await.unwrap();
    raw.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let read = tokio::time::timeout(GUARD, raw.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "{read:?}");
    assert!(agent.calls().is_empty());
    assert_eq!(server.client().list_tas().await, Ok(vec![]));
    server.stop().await;
}

#[tokio::test]
async fn a_hanging_client_is_cut_off_and_others_are_served_meanwhile() {
    let agent = Arc::new(ScriptedAgent::new());
    let cfg = IpcConfig {
        io_timeout: Duration::from_millis(200),
        ..IpcConfig::default()
    };
    let server = start(Arc::clone(&agent), cfg);
    // Half a header, then nothing.
    let mut hanging = UnixStream::connect(&server.path).await.unwrap();
    hanging.write_all(&[0, 0]).await.unwrap();
    let mut silent = UnixStream::connect(&server.path).await.unwrap();
    assert_eq!(server.client().list_tas().await, Ok(vec![]));
    for stream in [&mut hanging, &mut silent] {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(GUARD, stream.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?}");
    }
    assert_eq!(agent.calls(), [AgentCall::ListTas]);
    server.stop().await;
}

#[tokio::test]
async fn a_reply_over_the_frame_limit_becomes_an_error_reply() {
    let ta = TaInfo {
        component_id: id("big"),
        sequence_number: None,
    };
    let agent = Arc::new(ScriptedAgent::new().with_ta(ta, |_| vec![7; 4096]));
    let cfg = IpcConfig {
        max_frame: 1024,
        ..IpcConfig::default()
    };
    let server = start(agent, cfg.clone());
    let tee = IpcAgent::new(&server.path, cfg);
    assert!(
        matches!(tee.invoke_ta(&id("big"), vec![]).await, Err(AgentError::Internal(d)) if d.contains("over the frame limit")),
    );
    server.stop().await;
}

/// A fake TEE end: accepts, reads the request frame, then does what `then` says.
async fn fake_tee(then: fn(UnixStream) -> Option<UnixStream>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tee.sock");
    let listener = UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let len = stream.read_u32().await.unwrap();
            let mut body = vec![0; len as usize];
            stream.read_exact(&mut body).await.unwrap();
            held.extend(then(stream));
        }
    });
    (dir, path)
}

fn unavailable(result: Result<Vec<TaInfo>, AgentError>, what: &str) {
    match result {
        Err(AgentError::Unavailable(detail)) => assert!(detail.contains(what), "{detail}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_tee_that_hangs_times_out() {
    let (_dir, path) = fake_tee(Some).await;
    let tee = IpcAgent::new(
        &path,
        IpcConfig {
            call_timeout: Duration::from_millis(200),
            ..IpcConfig::default()
        },
    );
    unavailable(tee.list_tas().await, "timed out");
}

#[tokio::test]
async fn a_tee_that_disconnects_mid_call_is_unavailable() {
    let (_dir, path) = fake_tee(|_| None).await;
    let tee = IpcAgent::new(&path, IpcConfig::default());
    unavailable(tee.list_tas().await, "closed");
    // And no TEE at all.
    let dir = tempfile::tempdir().unwrap();
    let tee = IpcAgent::new(dir.path().join("none.sock"), IpcConfig::default());
    unavailable(tee.list_tas().await, "tee socket");
}

#[tokio::test]
async fn an_answer_of_the_wrong_kind_or_size_is_an_agent_failure() {
    fn reply_with(mut stream: UnixStream, body: Vec<u8>) {
        tokio::spawn(async move {
            stream.write_all(&frame(&body)).await.unwrap();
            let _ = stream.read_u8().await;
        });
    }
    // `nothing` is no answer to list_tas.
    let (_dir, path) = fake_tee(|s| {
        let mut body = Vec::new();
        ciborium::into_writer(&Value::Text("nothing".into()), &mut body).unwrap();
        reply_with(s, body);
        None
    })
    .await;
    let tee = IpcAgent::new(&path, IpcConfig::default());
    assert!(
        matches!(tee.list_tas().await, Err(AgentError::Internal(d)) if d.contains("does not answer")),
    );
    let (_dir, path) = fake_tee(|s| {
        reply_with(s, vec![0; 2048]);
        None
    })
    .await;
    let tee = IpcAgent::new(
        &path,
        IpcConfig {
            max_frame: 1024,
            ..IpcConfig::default()
        },
    );
    assert!(
        matches!(tee.list_tas().await, Err(AgentError::Internal(d)) if d.contains("over the limit")),
    );
}

/// An Agent whose invoke waits at `entered` then at `release`; nothing else is called.
struct Gate {
    entered: Barrier,
    release: Barrier,
}

impl Agent for Gate {
    async fn request_ta(&self, _: TaRequest) -> Result<AgentAnswer, AgentError> {
        unreachable!()
    }
    async fn unrequest_ta(&self, _: ComponentId) -> Result<AgentAnswer, AgentError> {
        unreachable!()
    }
    async fn process_teep_message(
        &self,
        _: &str,
        _: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, AgentError> {
        unreachable!()
    }
    async fn request_policy_check(&self, _: bool) -> Result<AgentAnswer, AgentError> {
        unreachable!()
    }
    async fn process_error(&self, _: &str, _: &TransportError) -> Result<AgentAnswer, AgentError> {
        unreachable!()
    }
    async fn list_tas(&self) -> Result<Vec<TaInfo>, AgentError> {
        unreachable!()
    }
    async fn invoke_ta(&self, _: &ComponentId, input: Vec<u8>) -> Result<Vec<u8>, AgentError> {
        self.entered.wait().await;
        self.release.wait().await;
        Ok(input)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_are_served_at_once() {
    // Each invoke returns only once both are inside the Agent.
    let gate = Arc::new(Gate {
        entered: Barrier::new(2),
        release: Barrier::new(1),
    });
    let server = start(gate, IpcConfig::default());
    let (a, b, x) = (server.client(), server.client(), id("x"));
    let both = async {
        tokio::join!(
            a.invoke_ta(&x, b"a".to_vec()),
            b.invoke_ta(&x, b"b".to_vec())
        )
    };
    let (ra, rb) = tokio::time::timeout(GUARD, both).await.unwrap();
    assert_eq!((ra, rb), (Ok(b"a".to_vec()), Ok(b"b".to_vec())));
    server.stop().await;
}

#[tokio::test]
async fn shutdown_answers_the_call_in_progress_then_stops() {
    let gate = Arc::new(Gate {
        entered: Barrier::new(2),
        release: Barrier::new(2),
    });
    let server = start(Arc::clone(&gate), IpcConfig::default());
    let tee = server.client();
    let call = tokio::spawn(async move { tee.invoke_ta(&id("x"), b"late".to_vec()).await });
    gate.entered.wait().await;
    let path = server.path.clone();
    server.stop.send(()).unwrap();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    gate.release.wait().await;
    assert_eq!(call.await.unwrap(), Ok(b"late".to_vec()));
    tokio::time::timeout(GUARD, server.task)
        .await
        .unwrap()
        .unwrap();
    // Stopped: the socket file is gone and nobody answers.
    assert!(!path.exists());
    unavailable(
        IpcAgent::new(&path, IpcConfig::default()).list_tas().await,
        "tee socket",
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_socket_file_is_owner_only_and_replaced_only_when_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tee.sock");
    let (listener, file) = ipc::bind(&path).unwrap();
    assert!(
        std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_socket()
    );
    assert_eq!(mode(&path), 0o600);
    // Live: refused, and the live socket still works.
    let err = ipc::bind(&path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
    let accept = tokio::spawn(async move { listener.accept().await.map(|_| ()) });
    UnixStream::connect(&path).await.unwrap();
    accept.await.unwrap().unwrap();
    // The listener is gone (the accept task dropped it) but the file stays: stale, replaced.
    std::mem::forget(file);
    assert!(path.exists());
    let (_listener, file) = ipc::bind(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    drop(file);
    assert!(!path.exists(), "dropping the SocketFile removes it");
    // Not a socket: left alone.
    std::fs::write(&path, b"precious").unwrap();
    let err = ipc::bind(&path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists, "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    // No staging directory left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("tee.sock")]);
}
