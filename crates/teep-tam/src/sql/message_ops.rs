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

/// Records one decoded exchange at `at` and trims the log to its newest `keep` messages,
/// in the caller's transaction.
pub(super) async fn record_messages(
    conn: &mut Conn,
    decoded: &Decoded,
    at: u64,
    keep: usize,
) -> Result<(), StoreError> {
    let known: Option<String> = match &decoded.request_token {
        Some(token) => sqlx::query_scalar("SELECT session FROM message_tokens WHERE token = $1")
            .bind(token)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?,
        None => None,
    };
    let session = decoded.session(known, at);
    let mut last = 0_i64;
    for m in &decoded.messages {
        // The view as JSON text: whatever the device put in it is data to this column.
        let json = serde_json::to_string(&m.json)
            .map_err(|e| StoreError::Backend(format!("message view: {e}")))?;
        last = sqlx::query_scalar(
            "INSERT INTO session_messages \
             (session, direction, message_type, token_prefix, at, size, dropped, json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
        )
        .bind(&session)
        .bind(direction_text(m.direction))
        .bind(&m.message_type)
        .bind(&m.token_prefix)
        .bind(int(m.at)?)
        .bind(int(m.size)?)
        .bind(&m.dropped)
        .bind(json)
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    }
    sqlx::query(
        "INSERT INTO message_sessions (session, device, last_seq) VALUES ($1, $2, $3) \
         ON CONFLICT (session) DO UPDATE SET last_seq = excluded.last_seq, \
         device = COALESCE(excluded.device, message_sessions.device)",
    )
    .bind(&session)
    .bind(&decoded.device)
    .bind(last)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    if let Some(token) = &decoded.reply_token {
        sqlx::query(
            "INSERT INTO message_tokens (token, session) VALUES ($1, $2) \
             ON CONFLICT (token) DO NOTHING",
        )
        .bind(token)
        .bind(&session)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    // Keep the messages numbered within `keep` of this one (exactly the newest `keep`
    // unless a rolled-back insert left a gap in the numbering: then fewer), and forget
    // the sessions (and their tokens) none of whose messages is left.
    let cut = last.saturating_sub(int(keep)?);
    if cut > 0 {
        for sql in [
            "DELETE FROM session_messages WHERE seq <= $1",
            "DELETE FROM message_tokens WHERE session IN \
             (SELECT session FROM message_sessions WHERE last_seq <= $1)",
            "DELETE FROM message_sessions WHERE last_seq <= $1",
        ] {
            sqlx::query(sql)
                .bind(cut)
                .execute(&mut *conn)
                .await
                .map_err(db)?;
        }
    }
    Ok(())
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
