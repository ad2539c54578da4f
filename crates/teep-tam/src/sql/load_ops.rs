// The engine's loads and the message log's records through sqlx: included by
// `sql/mod.rs` in the PostgreSQL module only, after `ops.rs` and `message_ops.rs` (whose
// statements and record parsers they run). On SQLite both run through rusqlite instead
// (`sqlite_ops.rs`).

/// Unconsumed tokens of sessions of no known device but the newest `$2` (`$1`: no limit,
/// `i64::MAX`), newest first (the reverse of [`OUTSTANDING_SQL`]'s order): the index walks
/// past the newest in the database, so only the tokens to retire travel. (SQLite counts
/// them instead: `SQLITE_ANONYMOUS_SQL`; a counter row here would make every replica's
/// connects wait on one row lock.)
const ANONYMOUS_SQL: &str = "SELECT token FROM sessions WHERE device IS NULL AND consumed = FALSE \
     ORDER BY issued_at DESC, issue_order DESC, token DESC LIMIT $1 OFFSET $2";

/// The bindings of [`ANONYMOUS_SQL`] for `keep`.
fn anonymous_values(keep: usize) -> Vec<Value<'static>> {
    vec![
        Value::Int(Some(i64::MAX)),
        Value::Int(Some(i64::try_from(keep).unwrap_or(i64::MAX))),
    ]
}

/// Answers one load request.
pub(super) async fn load(conn: &mut Conn, request: &LoadRequest) -> Result<Loaded, StoreError> {
    Ok(match request {
        LoadRequest::Session(token) => {
            let rows = fetch(conn, &session_sql(), &[Value::blob(token)]).await?;
            Loaded::Session(rows.first().map(session_from_row).transpose()?.map(Box::new))
        }
        LoadRequest::AnonymousSessions { keep } => {
            let rows = fetch(conn, ANONYMOUS_SQL, &anonymous_values(*keep)).await?;
            Loaded::Anonymous(rows.iter().rev().map(|r| col(r, 0)).collect::<Result<_, _>>()?)
        }
        LoadRequest::Device { id, class } => {
            Loaded::Device(Box::new(device_view(conn, id, class.as_deref()).await?))
        }
    })
}

/// The view `MemoryState::device_view` gives, walked in the same order: the first
/// statements of [`view_head`], then the releases of a [`ReleaseWalk`].
async fn device_view(
    conn: &mut Conn,
    id: &DeviceId,
    default_class: Option<&str>,
) -> Result<DeviceView, StoreError> {
    let mut head = Vec::with_capacity(4);
    for (sql, values) in view_queries(id, default_class) {
        head.push(fetch(conn, sql, &values).await?);
    }
    let mut view = view_head(id, &head)?;
    let mut walk = ReleaseWalk::new(&view.policy);
    while let Some(wanted) = walk.wanted() {
        let rows = fetch(conn, &latest_sql(wanted.len()), &latest_values(&wanted)).await?;
        walk.fetched(wanted, rows.iter().map(walked_from_row).collect::<Result<_, _>>()?);
    }
    let ids: Vec<i64> = walk.releases.iter().map(|(id, _)| *id).collect();
    let mut found = Vec::with_capacity(ids.len());
    if !ids.is_empty() {
        for r in fetch(conn, &envelopes_sql(ids.len()), &envelope_values(&ids)).await? {
            found.push((col(&r, 0)?, col::<Vec<u8>>(&r, 1)?.into()));
        }
    }
    view.releases = fill_envelopes(walk.releases, found)?;
    Ok(view)
}

/// The rows of one query with `values` bound to its `$1..`.
async fn fetch(conn: &mut Conn, sql: &str, values: &[Value<'_>]) -> Result<Vec<DbRow>, StoreError> {
    let query = values.iter().fold(sqlx::query(sql), bind_value);
    query.fetch_all(&mut *conn).await.map_err(db)
}

#[cfg(feature = "server")]
/// Records one decoded exchange at `at` and trims the log to its newest `keep` messages,
/// in the caller's transaction (SQLite records through `sqlite_ops.rs` instead, in the
/// writer's groups).
pub(super) async fn record_messages(
    conn: &mut Conn,
    decoded: &Decoded,
    at: u64,
    keep: usize,
) -> Result<(), StoreError> {
    let known: Option<String> = match &decoded.request_token {
        Some(token) => sqlx::query_scalar(SESSION_OF_TOKEN_SQL)
            .bind(token)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db)?,
        None => None,
    };
    let session = decoded.session(known, at);
    let mut last = 0_i64;
    for m in &decoded.messages {
        let json = message_json(m)?;
        let values = message_values(&session, m, &json)?;
        let row = values
            .iter()
            .fold(sqlx::query(INSERT_MESSAGE_SQL), bind_value)
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        last = col(&row, 0)?;
    }
    session_rows(&session, decoded, last, keep)?.run(conn).await
}
