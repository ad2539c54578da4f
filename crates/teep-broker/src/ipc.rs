//! The Broker→Agent API over a Unix stream socket, so that the TEE (the Agent, its keys and
//! its plaintext state) lives in its own process and the REE side holds none of it.
//!
//! [`IpcAgent`] is the Broker's end: an [`Agent`] whose every call is one connection to the
//! socket, one request frame and one reply frame. [`serve`] is the TEE's end: it answers
//! those frames from any [`Agent`]. [`bind`] makes the socket file (owner-only, a stale one
//! replaced, a live one left alone).
//!
//! A frame is a 4-byte big-endian length and that many bytes of CBOR (one [`AgentCall`] or one
//! reply, serde's externally tagged form); TEEP messages and TA data are byte strings.
//! The wire format is in `docs/broker.md`.

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::agent::{Agent, AgentAnswer, AgentError, ComponentId, TaInfo, TaRequest};
use crate::http::{DEFAULT_MAX_RESPONSE, TransportError};
use crate::scripted::AgentCall;

/// Default largest frame: the largest TAM message the HTTP client accepts
/// ([`DEFAULT_MAX_RESPONSE`], an Update with a 1 MiB TC and room to spare) plus room for
/// the call around it, so that whatever the Broker may relay also fits through the socket.
pub const DEFAULT_MAX_FRAME: usize = DEFAULT_MAX_RESPONSE + 64 * 1024;

/// Settings of both ends.
#[derive(Clone, Debug)]
pub struct IpcConfig {
    /// Largest frame either end sends or reads; a longer length prefix is refused before
    /// any of its body is read.
    pub max_frame: usize,
    /// Client: time for one whole call (connect, request, the Agent's work, reply). Beyond
    /// it the call fails with [`AgentError::Unavailable`].
    pub call_timeout: Duration,
    /// Server: time a connection has to deliver a whole request frame (after connecting
    /// or after the previous reply), and to take a whole reply; a client that hangs is cut.
    pub io_timeout: Duration,
    /// Server: most connections served at once; further clients wait to be accepted.
    pub max_connections: usize,
}

impl Default for IpcConfig {
    fn default() -> Self {
        Self {
            max_frame: DEFAULT_MAX_FRAME,
            // An Update runs the whole SUIT procedure before the Agent replies.
            call_timeout: Duration::from_secs(120),
            io_timeout: Duration::from_secs(10),
            max_connections: 32,
        }
    }
}

/// How a frame exchange failed (turned into an [`AgentError`] for the Broker).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
enum IpcError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("peer closed the connection")]
    Closed,
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("frame of {len} bytes is over the limit of {limit}")]
    FrameTooLarge { len: u64, limit: usize },
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("reply does not answer {0}")]
    UnexpectedReply(&'static str),
}

impl From<IpcError> for AgentError {
    fn from(e: IpcError) -> Self {
        match e {
            // The TEE process is gone, not there, or stuck.
            IpcError::Io(_) | IpcError::Closed | IpcError::Timeout(_) => {
                Self::Unavailable(format!("tee socket: {e}"))
            }
            // It answered, but not with the protocol.
            IpcError::FrameTooLarge { .. }
            | IpcError::Malformed(_)
            | IpcError::UnexpectedReply(_) => Self::Internal(format!("tee socket: {e}")),
        }
    }
}

/// Opaque bytes as a CBOR byte string (serde's default would be an array of integers).
#[derive(Clone, PartialEq, Eq, Debug)]
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_byte_buf(Visitor)
    }
}

/// Serde `with` for a `Vec<u8>` field of the request frame ([`AgentCall`]): a CBOR byte string.
pub(crate) mod bstr {
    use serde::{Deserialize as _, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        super::Bytes::deserialize(d).map(|b| b.0)
    }
}

/// The call's name, for logs and errors.
fn call_name(call: &AgentCall) -> &'static str {
    match call {
        AgentCall::RequestTa(_) => "request_ta",
        AgentCall::UnrequestTa(_) => "unrequest_ta",
        AgentCall::ProcessTeepMessage { .. } => "process_teep_message",
        AgentCall::RequestPolicyCheck { .. } => "request_policy_check",
        AgentCall::ProcessError { .. } => "process_error",
        AgentCall::ListTas => "list_tas",
        AgentCall::InvokeTa { .. } => "invoke_ta",
        AgentCall::PassportEvidence { .. } => "passport_evidence",
        AgentCall::StorePassport { .. } => "store_passport",
    }
}

/// A reply frame: the answer to the call on the same connection.
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Reply {
    /// [`AgentAnswer::Nothing`].
    Nothing,
    /// [`AgentAnswer::Contact`].
    Contact {
        tam_uri: String,
        message: Option<Bytes>,
    },
    /// The answer to ProcessTeepMessage.
    Message(Option<Bytes>),
    /// The answer to list TAs.
    Tas(Vec<TaInfo>),
    /// The answer to invoke a TA.
    Output(Bytes),
    /// Any call failed in the Agent.
    Error(AgentError),
}

impl From<AgentAnswer> for Reply {
    fn from(answer: AgentAnswer) -> Self {
        match answer {
            AgentAnswer::Nothing => Self::Nothing,
            AgentAnswer::Contact { tam_uri, message } => Self::Contact {
                tam_uri,
                message: message.map(Bytes),
            },
        }
    }
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, IpcError> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|e| IpcError::Malformed(e.to_string()))?;
    Ok(out)
}

/// Decodes one whole frame body: trailing bytes after the value are refused too.
fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, IpcError> {
    let mut rest = body;
    let value = ciborium::from_reader(&mut rest).map_err(|e| IpcError::Malformed(e.to_string()))?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(IpcError::Malformed(format!(
            "{} bytes after the value",
            rest.len()
        )))
    }
}

fn closed_on_eof(e: io::Error) -> IpcError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        IpcError::Closed
    } else {
        IpcError::Io(e)
    }
}

/// Reads one frame. A length over `limit` is refused before anything else is read, and the
/// body buffer grows with the bytes that actually arrive (a peer announcing the maximum and
/// sending nothing costs nothing).
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, limit: usize) -> Result<Vec<u8>, IpcError> {
    let len = r.read_u32().await.map_err(closed_on_eof)?;
    if usize::try_from(len).map_or(true, |len| len > limit) {
        return Err(IpcError::FrameTooLarge {
            len: u64::from(len),
            limit,
        });
    }
    let mut body = Vec::new();
    r.take(u64::from(len)).read_to_end(&mut body).await?;
    if (body.len() as u64) < u64::from(len) {
        return Err(IpcError::Closed);
    }
    Ok(body)
}

async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    body: &[u8],
    limit: usize,
) -> Result<(), IpcError> {
    let too_large = || IpcError::FrameTooLarge {
        len: body.len() as u64,
        limit,
    };
    if body.len() > limit {
        return Err(too_large());
    }
    let len = u32::try_from(body.len()).map_err(|_| too_large())?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(body);
    w.write_all(&frame).await?;
    w.flush().await?;
    Ok(())
}

/// The Broker's end: an [`Agent`] in another process, reached at a Unix socket. Each call
/// opens its own connection, so calls may run concurrently (list and invoke during an
/// exchange) and a failed call leaves nothing behind.
#[derive(Clone, Debug)]
pub struct IpcAgent {
    path: PathBuf,
    cfg: IpcConfig,
}

impl IpcAgent {
    /// An Agent at the socket `path` (nothing is connected until the first call).
    pub fn new(path: impl Into<PathBuf>, cfg: IpcConfig) -> Self {
        Self {
            path: path.into(),
            cfg,
        }
    }

    /// The socket this Agent is reached at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn call(&self, call: AgentCall) -> Result<Reply, AgentError> {
        let name = call_name(&call);
        let body = encode(&call)?;
        let limit = self.cfg.max_frame;
        let exchange = async {
            let mut stream = UnixStream::connect(&self.path).await?;
            write_frame(&mut stream, &body, limit).await?;
            let reply = read_frame(&mut stream, limit).await?;
            decode::<Reply>(&reply)
        };
        let reply = tokio::time::timeout(self.cfg.call_timeout, exchange)
            .await
            .map_err(|_| IpcError::Timeout(self.cfg.call_timeout))
            .and_then(|r| r)
            .map_err(|e| {
                warn!(call = name, socket = %self.path.display(), error = %e, "tee call failed");
                AgentError::from(e)
            })?;
        match reply {
            Reply::Error(e) => Err(e),
            reply => Ok(reply),
        }
    }

    async fn answer(&self, call: AgentCall) -> Result<AgentAnswer, AgentError> {
        let name = call_name(&call);
        match self.call(call).await? {
            Reply::Nothing => Ok(AgentAnswer::Nothing),
            Reply::Contact { tam_uri, message } => Ok(AgentAnswer::Contact {
                tam_uri,
                message: message.map(|m| m.0),
            }),
            _ => Err(IpcError::UnexpectedReply(name).into()),
        }
    }
}

impl Agent for IpcAgent {
    async fn request_ta(&self, request: TaRequest) -> Result<AgentAnswer, AgentError> {
        self.answer(AgentCall::RequestTa(request)).await
    }

    async fn unrequest_ta(&self, component_id: ComponentId) -> Result<AgentAnswer, AgentError> {
        self.answer(AgentCall::UnrequestTa(component_id)).await
    }

    async fn process_teep_message(
        &self,
        tam_uri: &str,
        message: Vec<u8>,
    ) -> Result<Option<Vec<u8>>, AgentError> {
        let call = AgentCall::ProcessTeepMessage {
            tam_uri: tam_uri.to_owned(),
            message,
        };
        match self.call(call).await? {
            Reply::Message(m) => Ok(m.map(|m| m.0)),
            _ => Err(IpcError::UnexpectedReply("process_teep_message").into()),
        }
    }

    async fn request_policy_check(&self, new_check: bool) -> Result<AgentAnswer, AgentError> {
        self.answer(AgentCall::RequestPolicyCheck { new_check })
            .await
    }

    async fn process_error(
        &self,
        tam_uri: &str,
        error: &TransportError,
    ) -> Result<AgentAnswer, AgentError> {
        self.answer(AgentCall::ProcessError {
            tam_uri: tam_uri.to_owned(),
            error: error.clone(),
        })
        .await
    }

    async fn list_tas(&self) -> Result<Vec<TaInfo>, AgentError> {
        match self.call(AgentCall::ListTas).await? {
            Reply::Tas(tas) => Ok(tas),
            _ => Err(IpcError::UnexpectedReply("list_tas").into()),
        }
    }

    async fn invoke_ta(
        &self,
        component_id: &ComponentId,
        input: Vec<u8>,
    ) -> Result<Vec<u8>, AgentError> {
        let call = AgentCall::InvokeTa {
            component_id: component_id.clone(),
            input,
        };
        match self.call(call).await? {
            Reply::Output(out) => Ok(out.0),
            _ => Err(IpcError::UnexpectedReply("invoke_ta").into()),
        }
    }

    async fn passport_evidence(&self, nonce: Vec<u8>) -> Result<Vec<u8>, AgentError> {
        match self.call(AgentCall::PassportEvidence { nonce }).await? {
            Reply::Output(evidence) => Ok(evidence.0),
            _ => Err(IpcError::UnexpectedReply("passport_evidence").into()),
        }
    }

    async fn store_passport(&self, ear: Vec<u8>) -> Result<(), AgentError> {
        match self.call(AgentCall::StorePassport { ear }).await? {
            Reply::Nothing => Ok(()),
            _ => Err(IpcError::UnexpectedReply("store_passport").into()),
        }
    }
}

/// Runs one call on the Agent.
async fn dispatch<A: Agent>(agent: &A, call: AgentCall) -> Reply {
    let result = match call {
        AgentCall::RequestTa(request) => agent.request_ta(request).await.map(Reply::from),
        AgentCall::UnrequestTa(id) => agent.unrequest_ta(id).await.map(Reply::from),
        AgentCall::ProcessTeepMessage { tam_uri, message } => agent
            .process_teep_message(&tam_uri, message)
            .await
            .map(|m| Reply::Message(m.map(Bytes))),
        AgentCall::RequestPolicyCheck { new_check } => {
            agent.request_policy_check(new_check).await.map(Reply::from)
        }
        AgentCall::ProcessError { tam_uri, error } => {
            agent.process_error(&tam_uri, &error).await.map(Reply::from)
        }
        AgentCall::ListTas => agent.list_tas().await.map(Reply::Tas),
        AgentCall::InvokeTa {
            component_id,
            input,
        } => agent
            .invoke_ta(&component_id, input)
            .await
            .map(|out| Reply::Output(Bytes(out))),
        AgentCall::PassportEvidence { nonce } => agent
            .passport_evidence(nonce)
            .await
            .map(|evidence| Reply::Output(Bytes(evidence))),
        AgentCall::StorePassport { ear } => {
            agent.store_passport(ear).await.map(|()| Reply::Nothing)
        }
    };
    result.unwrap_or_else(Reply::Error)
}

/// Serves one connection: request frames, one at a time, until the client closes, hangs,
/// breaks the framing, or the server stops (a call in progress is answered first).
async fn connection<A: Agent>(
    mut stream: UnixStream,
    agent: &A,
    cfg: &IpcConfig,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let read = tokio::select! {
            _ = stop.wait_for(|stopping| *stopping) => return,
            read = tokio::time::timeout(cfg.io_timeout, read_frame(&mut stream, cfg.max_frame)) => read,
        };
        let body = match read {
            Ok(Ok(body)) => body,
            Ok(Err(IpcError::Closed)) => return,
            Ok(Err(e)) => {
                // An oversize length cannot be skipped without reading it: drop the client.
                warn!(error = %e, "ipc: connection dropped");
                return;
            }
            Err(_) => {
                warn!(timeout = ?cfg.io_timeout, "ipc: client sent no whole request in time, dropped");
                return;
            }
        };
        let reply = match decode::<AgentCall>(&body) {
            Ok(call) => {
                let name = call_name(&call);
                debug!(call = name, bytes = body.len(), "ipc call");
                dispatch(agent, call).await
            }
            Err(e) => {
                // The framing is intact, so the client is told and may go on.
                warn!(error = %e, bytes = body.len(), "ipc: request refused");
                Reply::Error(AgentError::Refused(format!("malformed request: {e}")))
            }
        };
        // A reply over the limit (a huge TA output) is replaced by an error the client can read.
        let frame = encode(&reply).and_then(|frame| {
            if frame.len() <= cfg.max_frame {
                return Ok(frame);
            }
            warn!(
                bytes = frame.len(),
                limit = cfg.max_frame,
                "ipc: reply over the frame limit"
            );
            encode(&Reply::Error(AgentError::Internal(format!(
                "reply of {} bytes is over the frame limit of {}",
                frame.len(),
                cfg.max_frame
            ))))
        });
        let sent = match frame {
            Ok(frame) => tokio::time::timeout(
                cfg.io_timeout,
                write_frame(&mut stream, &frame, cfg.max_frame),
            )
            .await
            .unwrap_or(Err(IpcError::Timeout(cfg.io_timeout))),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            warn!(error = %e, "ipc: reply not delivered");
            return;
        }
    }
}

/// The TEE's end: answers the calls of [`IpcAgent`]s connecting to `listener` from `agent`,
/// several connections at once (at most [`IpcConfig::max_connections`]), until `shutdown`
/// completes. Then it stops accepting, lets the calls in progress finish and reply, and
/// returns. A client that sends garbage is told so; one that sends an oversize frame or
/// hangs is disconnected; neither reaches the Agent.
pub async fn serve<A: Agent + 'static>(
    listener: UnixListener,
    agent: Arc<A>,
    cfg: IpcConfig,
    shutdown: impl Future<Output = ()>,
) {
    let cfg = Arc::new(cfg);
    let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            Ok(slot) = Arc::clone(&slots).acquire_owned() => {
                let accepted = tokio::select! {
                    () = &mut shutdown => break,
                    accepted = listener.accept() => accepted,
                };
                match accepted {
                    Ok((stream, _)) => {
                        let (agent, cfg, stop) = (Arc::clone(&agent), Arc::clone(&cfg), stop_rx.clone());
                        connections.spawn(async move {
                            connection(stream, &*agent, &cfg, stop).await;
                            drop(slot);
                        });
                    }
                    Err(e) => warn!(error = %e, "ipc: accept failed"),
                }
            }
        }
    }
    info!(
        connections = connections.len(),
        "ipc: stopping, finishing calls in progress"
    );
    // No receiver left only when every connection ended, which is fine.
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
}

/// The socket file of a listener made by [`bind`]: removed when this is dropped.
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl SocketFile {
    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != io::ErrorKind::NotFound
        {
            warn!(socket = %self.0.display(), error = %e, "could not remove the socket file");
        }
    }
}

/// Binds a listening Unix socket at `path` whose file has mode 0600 from the moment it
/// appears there: it is bound in a fresh owner-only directory next to `path`, set to 0600
/// and renamed into place. A socket file already at `path` is replaced only if nothing
/// listens on it (a stale one, left by a crash); a live socket gives `AddrInUse`, and
/// anything that is not a socket is left alone (`AlreadyExists`). Call inside a Tokio
/// runtime.
///
/// # Errors
/// The cases above and the file system's errors.
pub fn bind(path: &Path) -> io::Result<(UnixListener, SocketFile)> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("{}: another process listens on it", path.display()),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    info!(socket = %path.display(), "replacing a stale socket file");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{}: exists and is not a socket", path.display()),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Unique per process and per call, so that two binds in one directory do not collide.
    static BINDS: AtomicU64 = AtomicU64::new(0);
    let staging = parent.join(format!(
        ".teep-bind-{}-{}",
        std::process::id(),
        BINDS.fetch_add(1, Ordering::Relaxed)
    ));
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    std::fs::DirBuilder::new().mode(0o700).create(&staging)?;
    let staged = staging.join("s");
    let bound = std::os::unix::net::UnixListener::bind(&staged).and_then(|listener| {
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&staged, path)?;
        Ok(listener)
    });
    let cleaned = std::fs::remove_dir_all(&staging);
    let listener = bound?;
    let file = SocketFile(path.to_owned());
    cleaned?;
    listener.set_nonblocking(true)?;
    Ok((UnixListener::from_std(listener)?, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_length_over_the_limit_is_refused_before_the_body() {
        // Only the header: a reader that trusted it would allocate 4 GiB or wait for the body.
        let mut input: &[u8] = &u32::MAX.to_be_bytes();
        let err = read_frame(&mut input, 1024).await.unwrap_err();
        assert!(
            matches!(err, IpcError::FrameTooLarge { len, limit: 1024 } if len == u64::from(u32::MAX)),
            "{err:?}"
        );
        let mut at_limit: &[u8] = &[0, 0, 4, 1];
        assert!(matches!(
            read_frame(&mut at_limit, 1024).await,
            Err(IpcError::FrameTooLarge { len: 1025, .. })
        ));
    }

    #[tokio::test]
    async fn a_short_body_is_a_closed_connection() {
        let mut input: &[u8] = &[0, 0, 0, 5, 1, 2];
        assert!(matches!(
            read_frame(&mut input, 1024).await,
            Err(IpcError::Closed)
        ));
        let mut exact: &[u8] = &[0, 0, 0, 2, 1, 2];
        assert_eq!(read_frame(&mut exact, 1024).await.unwrap(), vec![1, 2]);
    }

    #[tokio::test]
    async fn an_oversize_frame_is_not_sent() {
        let mut out = Vec::new();
        let err = write_frame(&mut out, &[0; 11], 10).await.unwrap_err();
        assert!(matches!(
            err,
            IpcError::FrameTooLarge { len: 11, limit: 10 }
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn trailing_bytes_and_integer_arrays_are_malformed() {
        let mut body = encode(&AgentCall::ListTas).unwrap();
        body.push(0);
        assert!(matches!(
            decode::<AgentCall>(&body),
            Err(IpcError::Malformed(_))
        ));
        // {"output": [1, 2]}: bytes as an array of integers are refused.
        let array = [0xa1, 0x66, b'o', b'u', b't', b'p', b'u', b't', 0x82, 1, 2];
        assert!(matches!(
            decode::<Reply>(&array),
            Err(IpcError::Malformed(_))
        ));
        let bstr = [0xa1, 0x66, b'o', b'u', b't', b'p', b'u', b't', 0x42, 1, 2];
        assert!(matches!(decode::<Reply>(&bstr), Ok(Reply::Output(Bytes(b))) if b == [1, 2]));
    }
}
