//! The TEEP messages a TAM exchanged, kept for the operator's console: every body the
//! TEEP resource received and every reply it sent, grouped into sessions, each with its
//! decoded JSON view (teep-proto's, the one `teep inspect` and `teep trace` show).
//!
//! Pinned choices:
//! * a session is the chain of tokens: the empty POST that opens it has no token, its
//!   QueryRequest's token names the session, and every later message whose token is one
//!   the session's replies carried belongs to it (a new Update token joins it too);
//! * messages are recorded after the engine decided and the store committed, so a
//!   dropped message is kept as well, with why it was dropped (the console shows it);
//! * the view is made from the bytes without verifying them (the engine did or did not;
//!   the record says which): everything in it came from the device, and is shown as text;
//! * [`MemoryMessageLog`] keeps the newest [`MESSAGE_LOG_LIMIT`] messages of this process
//!   (tests and embedders without a database); `teep tam serve` keeps them in its SQL store
//!   (`crate::sql::SqlMessageLog`, same contract), so that every replica's console shows
//!   every replica's sessions and a restart loses none.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;
use teep_proto::json::{SignatureCheck, cose_view, shorten, to_json_within};
use teep_proto::serde_json::Value as Json;
use teep_proto::{Numbering, Unverified};

use crate::store::{AdminFuture, DeviceId};

/// Messages a log keeps by default (older ones are forgotten first).
pub const MESSAGE_LOG_LIMIT: usize = 10_000;

/// Which way a message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the Agent (through its Broker) to the TAM.
    ToTam,
    /// From the TAM to the Agent.
    ToAgent,
}

/// One message as exchanged.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MessageRecord {
    /// The session it belongs to (hex of the token of the session's first QueryRequest).
    pub session: String,
    /// The device, once the TAM knew it (hex).
    pub device: Option<String>,
    /// Which way it went.
    pub direction: Direction,
    /// Its type (`query-request`, ...), `empty` for the POST that opens a session, or
    /// `malformed` when it does not decode.
    pub message_type: String,
    /// The first four bytes of its token (hex), if it carries one.
    pub token_prefix: Option<String>,
    /// When (Unix seconds).
    pub at: u64,
    /// Its size in bytes.
    pub size: usize,
    /// Why the TAM dropped it, if it did (a message to the TAM only).
    pub dropped: Option<String>,
    /// The decoded message (COSE view around the TEEP message), not verified by this view.
    #[schema(value_type = Object)]
    pub json: Json,
}

/// A session: its messages in the order exchanged.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SessionRecord {
    /// The session id (see [`MessageRecord::session`]).
    pub session: String,
    /// The device, once known (hex).
    pub device: Option<String>,
    /// When its first message was exchanged.
    pub started: u64,
    /// Its messages.
    pub messages: Vec<MessageRecord>,
}

/// What the TEEP resource records of one exchange.
#[derive(Clone, Debug)]
pub struct Exchange<'a> {
    /// The body received (empty: a session is opened).
    pub request: &'a [u8],
    /// The reply sent, if any.
    pub reply: Option<&'a [u8]>,
    /// The device, once the engine knew it.
    pub device: Option<DeviceId>,
    /// Why the engine dropped the request, if it did.
    pub dropped: Option<String>,
    /// Unix seconds.
    pub at: u64,
    /// The numbering of the engine that handled it.
    pub numbering: Numbering,
}

/// Where a TAM keeps the messages it exchanged. Calls are async (boxed futures, so the
/// trait is object-safe) because a database keeps them.
pub trait MessageLog: Send + Sync {
    /// Records one exchange (its request and reply).
    fn record<'a>(&'a self, exchange: &'a Exchange<'a>) -> AdminFuture<'a, ()>;
    /// The sessions of `device`, newest first, at most `limit`.
    fn device_sessions<'a>(
        &'a self,
        device: &'a DeviceId,
        limit: usize,
    ) -> AdminFuture<'a, Vec<SessionRecord>>;
    /// The newest sessions of any device, newest first, at most `limit`.
    fn latest_sessions(&self, limit: usize) -> AdminFuture<'_, Vec<SessionRecord>>;
}

/// An exchange decoded, before a log names its session: what every log stores.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// The token of the request (hex), if it carries one.
    pub request_token: Option<String>,
    /// The token of the reply (hex), if it carries one: it joins the session.
    pub reply_token: Option<String>,
    /// The device (hex), once the engine knew it.
    pub device: Option<String>,
    /// The request and the reply (if any), with an empty `session`.
    pub messages: Vec<MessageRecord>,
}

impl Decoded {
    /// The session of the exchange, given `known`, the session the request's token was
    /// seen in (if the log knows it): that one, else the one the reply's token opens, else
    /// a session of its own (a dropped message with an unknown token).
    pub fn session(&self, known: Option<String>, at: u64) -> String {
        known
            .or_else(|| self.reply_token.clone())
            .or_else(|| self.request_token.clone())
            .unwrap_or_else(|| format!("none-{at}"))
    }
}

impl Exchange<'_> {
    /// The records of this exchange (the view made from the bytes, see the module doc).
    pub fn decode(&self) -> Decoded {
        let (in_type, in_token, in_json) = decode(self.request, self.numbering);
        let device = self.device.map(|d| hex::encode(d.0));
        let prefix =
            |t: &Option<Vec<u8>>| t.as_deref().map(|t| hex::encode(t.get(..4).unwrap_or(t)));
        let mut messages = vec![MessageRecord {
            session: String::new(),
            device: device.clone(),
            direction: Direction::ToTam,
            message_type: in_type,
            token_prefix: prefix(&in_token),
            at: self.at,
            size: self.request.len(),
            dropped: self.dropped.clone(),
            json: in_json,
        }];
        let mut reply_token = None;
        if let Some(bytes) = self.reply {
            let (out_type, out_token, out_json) = decode(bytes, self.numbering);
            messages.push(MessageRecord {
                session: String::new(),
                device: device.clone(),
                direction: Direction::ToAgent,
                message_type: out_type,
                token_prefix: prefix(&out_token),
                at: self.at,
                size: bytes.len(),
                dropped: None,
                json: out_json,
            });
            reply_token = out_token.as_deref().map(hex::encode);
        }
        Decoded {
            request_token: in_token.as_deref().map(hex::encode),
            reply_token,
            device,
            messages,
        }
    }
}

/// The decoded view of a message: its type, token and JSON, or `malformed`.
fn decode(bytes: &[u8], numbering: Numbering) -> (String, Option<Vec<u8>>, Json) {
    if bytes.is_empty() {
        return ("empty".into(), None, Json::Null);
    }
    match Unverified::parse(bytes, numbering) {
        Ok(m) => {
            // The COSE part (a kid may be long too) and the message's view, each cut to
            // the limit once: the message's long byte strings are not even written whole.
            let mut view = cose_view(m.cose(), &SignatureCheck::NotChecked, Json::Null);
            shorten(&mut view, VIEW_STRING_LIMIT);
            if let Json::Object(members) = &mut view {
                let payload = to_json_within(m.message(), numbering, VIEW_STRING_LIMIT);
                members.insert("payload".into(), payload);
            }
            (
                m.message().message_type().name().into(),
                m.message().token().map(<[u8]>::to_vec),
                view,
            )
        }
        Err(e) => ("malformed".into(), None, Json::String(e.to_string())),
    }
}

/// The longest string a stored view keeps whole (a TC's payload is hex in the view: kept
/// whole, 10 000 Updates carrying 1 MiB TCs would fill gigabytes of log).
pub const VIEW_STRING_LIMIT: usize = 2048;

/// A bounded in-memory [`MessageLog`].
#[derive(Debug)]
pub struct MemoryMessageLog {
    inner: Mutex<Inner>,
    /// Messages kept.
    keep: usize,
}

impl Default for MemoryMessageLog {
    fn default() -> Self {
        Self::keeping(MESSAGE_LOG_LIMIT)
    }
}

#[derive(Debug, Default)]
struct Inner {
    messages: VecDeque<MessageRecord>,
    /// Token (hex) → the session it belongs to.
    sessions: HashMap<String, String>,
    /// Session → its device, once known.
    devices: HashMap<String, String>,
}

impl MemoryMessageLog {
    /// An empty log keeping [`MESSAGE_LOG_LIMIT`] messages.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty log keeping the newest `keep` messages (at least one).
    pub fn keeping(keep: usize) -> Self {
        Self {
            inner: Mutex::default(),
            keep: keep.max(1),
        }
    }

    fn sessions_where(
        &self,
        limit: usize,
        keep: impl Fn(Option<&String>) -> bool,
    ) -> Vec<SessionRecord> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut order: Vec<String> = Vec::new();
        let mut by_session: HashMap<&str, Vec<MessageRecord>> = HashMap::new();
        for m in inner.messages.iter().rev() {
            let device = inner.devices.get(&m.session);
            if !keep(device) {
                continue;
            }
            let list = by_session.entry(&m.session).or_default();
            if list.is_empty() {
                if order.len() == limit {
                    continue;
                }
                order.push(m.session.clone());
            }
            let mut m = m.clone();
            m.device = device.cloned();
            list.push(m);
        }
        order
            .into_iter()
            .map(|s| {
                let mut messages = by_session.remove(s.as_str()).unwrap_or_default();
                messages.reverse();
                SessionRecord {
                    device: inner.devices.get(&s).cloned(),
                    started: messages.first().map_or(0, |m| m.at),
                    session: s,
                    messages,
                }
            })
            .collect()
    }
}

impl MemoryMessageLog {
    fn record_now(&self, exchange: &Exchange<'_>) {
        let decoded = exchange.decode();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let known = decoded
            .request_token
            .as_ref()
            .and_then(|t| inner.sessions.get(t).cloned());
        let session = decoded.session(known, exchange.at);
        if let Some(t) = &decoded.reply_token {
            inner.sessions.insert(t.clone(), session.clone());
        }
        if let Some(d) = &decoded.device {
            inner.devices.insert(session.clone(), d.clone());
        }
        for mut m in decoded.messages {
            if inner.messages.len() >= self.keep
                && let Some(old) = inner.messages.pop_front()
            {
                // Forget the token mappings of sessions no message is left of.
                if !inner.messages.iter().any(|m| m.session == old.session) {
                    inner.sessions.retain(|_, s| *s != old.session);
                    inner.devices.remove(&old.session);
                }
            }
            m.session.clone_from(&session);
            inner.messages.push_back(m);
        }
    }
}

impl MessageLog for MemoryMessageLog {
    fn record<'a>(&'a self, exchange: &'a Exchange<'a>) -> AdminFuture<'a, ()> {
        self.record_now(exchange);
        Box::pin(core::future::ready(Ok(())))
    }

    fn device_sessions<'a>(
        &'a self,
        device: &'a DeviceId,
        limit: usize,
    ) -> AdminFuture<'a, Vec<SessionRecord>> {
        let want = hex::encode(device.0);
        let sessions = self.sessions_where(limit, |d| d == Some(&want));
        Box::pin(core::future::ready(Ok(sessions)))
    }

    fn latest_sessions(&self, limit: usize) -> AdminFuture<'_, Vec<SessionRecord>> {
        let sessions = self.sessions_where(limit, |_| true);
        Box::pin(core::future::ready(Ok(sessions)))
    }
}

#[cfg(test)]
mod tests {
    use super::{Json, VIEW_STRING_LIMIT, decode};
    use teep_cose::{Curve, PrivateKey, SignOptions, default_provider};
    use teep_proto::json::{SignatureCheck, cose_view, shorten, to_json};
    use teep_proto::{Message, Numbering, Update};

    /// The log's view of an Update carrying a 64 KiB TC, whose hex is cut as it is written,
    /// is the whole view cut afterwards, as the log made it before.
    #[test]
    fn the_view_of_an_update_is_the_whole_view_shortened() {
        let key = PrivateKey::generate(Curve::P256).unwrap();
        let signer = default_provider()
            .signer(&key, key.default_algorithm())
            .unwrap();
        let update = Message::Update(Update {
            token: Some(vec![3; 16]),
            manifest_list: Some(vec![vec![0x5a; 64 << 10], vec![7; 10]]),
            ..Update::default()
        });
        for numbering in [Numbering::Draft26, Numbering::Pre26] {
            let bytes = teep_proto::sign_message(
                &update,
                numbering,
                signer.as_ref(),
                &SignOptions::default(),
            )
            .unwrap();
            let (kind, token, view) = decode(&bytes, numbering);
            let parsed = teep_proto::Unverified::parse(&bytes, numbering).unwrap();
            let mut whole = cose_view(
                parsed.cose(),
                &SignatureCheck::NotChecked,
                to_json(parsed.message(), numbering),
            );
            shorten(&mut whole, VIEW_STRING_LIMIT);
            assert_eq!(view, whole);
            assert_eq!((kind.as_str(), token), ("update", Some(vec![3; 16])));
            let kept = view["payload"]["manifest-list"][0].as_str().unwrap();
            assert!(kept.ends_with("… (131072 characters in all)"), "{kept}");
        }
    }

    #[test]
    fn long_strings_of_a_view_are_cut_and_its_structure_kept() {
        let payload = "ab".repeat(1 << 19);
        let mut view = teep_proto::serde_json::json!({
            "type": "update",
            "manifest-list": [ { "payload": payload, "id": "short" } ],
        });
        shorten(&mut view, VIEW_STRING_LIMIT);
        let kept = view["manifest-list"][0]["payload"].as_str().unwrap();
        assert!(kept.len() < VIEW_STRING_LIMIT + 64, "{}", kept.len());
        assert!(kept.ends_with(&format!("({} characters in all)", 1 << 20)));
        assert_eq!(view["manifest-list"][0]["id"], Json::from("short"));
        assert_eq!(view["type"], Json::from("update"));
    }
}
