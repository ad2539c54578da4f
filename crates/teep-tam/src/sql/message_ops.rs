// The message log's queries (`SqlMessageLog`), written once and compiled for each dialect
// next to `ops.rs` (same `Db`, `Conn` and `col`).

use crate::messages::{Decoded, Direction, MessageRecord, SessionRecord as LogSession};

/// The text a direction is stored as.
fn direction_text(d: Direction) -> &'static str {
    match d {
        Direction::ToTam => "to_tam",
        Direction::ToAgent => "to_agent",
    }
}

/// The session a token was seen in.
const SESSION_OF_TOKEN_SQL: &str = "SELECT session FROM message_tokens WHERE token = $1";

/// One message row; returns its `seq`.
const INSERT_MESSAGE_SQL: &str = "INSERT INTO session_messages \
     (session, direction, message_type, token_prefix, at, size, dropped, json) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq";

/// The session's row, its last message `$3`.
const UPSERT_SESSION_SQL: &str = "INSERT INTO message_sessions (session, device, last_seq) \
     VALUES ($1, $2, $3) ON CONFLICT (session) DO UPDATE SET last_seq = excluded.last_seq, \
     device = COALESCE(excluded.device, message_sessions.device)";

/// The reply's token joins the session.
const INSERT_TOKEN_SQL: &str =
    "INSERT INTO message_tokens (token, session) VALUES ($1, $2) ON CONFLICT (token) DO NOTHING";

/// Forgets the messages numbered up to `$1`, then the sessions (and their tokens) none of
/// whose messages is left.
const TRIM_SQL: [&str; 3] = [
    "DELETE FROM session_messages WHERE seq <= $1",
    "DELETE FROM message_tokens WHERE session IN \
     (SELECT session FROM message_sessions WHERE last_seq <= $1)",
    "DELETE FROM message_sessions WHERE last_seq <= $1",
];

/// A message's view as JSON text: whatever the device put in it is data to this column.
fn message_json(m: &MessageRecord) -> Result<String, StoreError> {
    serde_json::to_string(&m.json).map_err(|e| StoreError::Backend(format!("message view: {e}")))
}

/// The bindings of [`INSERT_MESSAGE_SQL`].
fn message_values<'a>(
    session: &'a str,
    m: &'a MessageRecord,
    json: &'a str,
) -> Result<Vec<Value<'a>>, StoreError> {
    Ok(vec![
        Value::Text(Some(session)),
        Value::Text(Some(direction_text(m.direction))),
        Value::Text(Some(&m.message_type)),
        Value::Text(m.token_prefix.as_deref()),
        Value::Int(Some(int(m.at)?)),
        Value::Int(Some(int(m.size)?)),
        Value::Text(m.dropped.as_deref()),
        Value::Text(Some(json)),
    ])
}

/// The highest `seq` to forget so that the messages numbered within `keep` of `last`
/// stay (exactly the newest `keep` unless a rolled-back insert left a gap in the
/// numbering: then fewer); `None`: nothing to forget.
fn trim_below(last: i64, keep: usize) -> Result<Option<i64>, StoreError> {
    let cut = last.saturating_sub(int(keep)?);
    Ok((cut > 0).then_some(cut))
}

/// After an exchange's message rows (the last numbered `last`): the session's row, the
/// reply's token joining it, and the trim to the newest `keep` messages.
fn session_rows<'a>(
    session: &'a str,
    decoded: &'a Decoded,
    last: i64,
    keep: usize,
) -> Result<Batch<'a>, StoreError> {
    let mut batch = Batch::default();
    batch.push(
        UPSERT_SESSION_SQL,
        vec![
            Value::Text(Some(session)),
            Value::Text(decoded.device.as_deref()),
            Value::Int(Some(last)),
        ],
    );
    if let Some(token) = &decoded.reply_token {
        batch.push(
            INSERT_TOKEN_SQL,
            vec![Value::Text(Some(token)), Value::Text(Some(session))],
        );
    }
    if let Some(cut) = trim_below(last, keep)? {
        for sql in TRIM_SQL {
            batch.push(sql, vec![Value::Int(Some(cut))]);
        }
    }
    Ok(batch)
}

/// The newest `limit` sessions (of `device`, if given), newest first, with their messages.
pub(super) async fn log_sessions(
    conn: &mut Conn,
    device: Option<&str>,
    limit: usize,
) -> Result<Vec<LogSession>, StoreError> {
    let limit = int(limit)?;
    let heads = match device {
        Some(d) => sqlx::query(
            "SELECT session, device FROM message_sessions WHERE device = $1 \
             ORDER BY last_seq DESC LIMIT $2",
        )
        .bind(d)
        .bind(limit),
        None => sqlx::query(
            "SELECT session, device FROM message_sessions ORDER BY last_seq DESC LIMIT $1",
        )
        .bind(limit),
    }
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let mut sessions = Vec::with_capacity(heads.len());
    for head in &heads {
        let session: String = col(head, 0)?;
        let device: Option<String> = col(head, 1)?;
        let rows = sqlx::query(
            "SELECT direction, message_type, token_prefix, at, size, dropped, json \
             FROM session_messages WHERE session = $1 ORDER BY seq",
        )
        .bind(&session)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let messages = rows
            .iter()
            .map(|row| {
                let direction: String = col(row, 0)?;
                let json: String = col(row, 6)?;
                Ok(MessageRecord {
                    session: session.clone(),
                    device: device.clone(),
                    direction: match direction.as_str() {
                        "to_tam" => Direction::ToTam,
                        "to_agent" => Direction::ToAgent,
                        other => {
                            return Err(StoreError::Backend(format!("direction {other:?}")));
                        }
                    },
                    message_type: col(row, 1)?,
                    token_prefix: col(row, 2)?,
                    at: uint(col(row, 3)?)?,
                    size: usize::try_from(uint(col(row, 4)?)?)
                        .map_err(|_| StoreError::Backend("message size".into()))?,
                    dropped: col(row, 5)?,
                    json: serde_json::from_str(&json)
                        .map_err(|e| StoreError::Backend(format!("message view: {e}")))?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        sessions.push(LogSession {
            started: messages.first().map_or(0, |m| m.at),
            session,
            device,
            messages,
        });
    }
    Ok(sessions)
}
