// The queries, written once and compiled for each dialect: `sql/mod.rs` includes this
// file in a module that defines `Db` (sqlx::Sqlite or sqlx::Postgres). Both dialects
// take `$n` placeholders and `ON CONFLICT ... DO UPDATE`, so the SQL text is shared too.

use sqlx::Row;

use super::{array, codec, db, int, seq_from_db, seq_to_db, uint};
use crate::store::StoreError;
use crate::store::{
    AdminError, AttestationRecord, AuditEntry, Changes, Device, DeviceId, DeviceSummary,
    DeviceView, Installed, LAST_REPORTS, LoadRequest, Loaded, MemoryState, Policies, PolicyScope,
    Registration, ReportRecord, SessionId, SessionRecord, SessionState, SignerRecord, TcPolicy,
    TcRelease, Token, check_release,
};
use teep_proto::ComponentId;

/// A connection (or an open transaction, through `&mut *tx`).
pub(super) type Conn = <Db as sqlx::Database>::Connection;
type DbRow = <Db as sqlx::Database>::Row;

/// Column `i` of `row` as `T`.
fn col<'r, T>(row: &'r DbRow, i: usize) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    row.try_get(i).map_err(db)
}

/// Answers one load request.
pub(super) async fn load(conn: &mut Conn, request: &LoadRequest) -> Result<Loaded, StoreError> {
    Ok(match request {
        LoadRequest::Session(token) => Loaded::Session(session(conn, token).await?.map(Box::new)),
        LoadRequest::AnonymousSessions => Loaded::Anonymous(outstanding(conn, None).await?),
        LoadRequest::Device { id, class } => {
            Loaded::Device(Box::new(device_view(conn, id, class.as_deref()).await?))
        }
    })
}

const SESSION_COLUMNS: &str =
    "token, session_id, device, issued_at, expires_at, consumed, kind, challenge, state";

fn session_from_row(row: &DbRow) -> Result<SessionRecord, StoreError> {
    let kind: String = col(row, 6)?;
    let challenge: Option<Vec<u8>> = col(row, 7)?;
    let state: Vec<u8> = col(row, 8)?;
    let state = match kind.as_str() {
        "ExpectQueryResponse" => {
            SessionState::ExpectQueryResponse(codec::to_expect_query_response(&state, challenge)?)
        }
        "ExpectSuccess" => SessionState::ExpectSuccess(codec::to_expect_success(&state)?),
        other => return Err(StoreError::Backend(format!("unknown session kind {other}"))),
    };
    let device: Option<Vec<u8>> = col(row, 2)?;
    Ok(SessionRecord {
        token: col(row, 0)?,
        session: SessionId(array(col(row, 1)?)?),
        device: device.map(|d| array(d).map(DeviceId)).transpose()?,
        issued_at: uint(col(row, 3)?)?,
        expires_at: uint(col(row, 4)?)?,
        consumed: col(row, 5)?,
        state,
    })
}

async fn session(conn: &mut Conn, token: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token = $1");
    let row = sqlx::query(&sql)
        .bind(token)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
    row.as_ref().map(session_from_row).transpose()
}

/// Unconsumed tokens of `device`'s sessions (`None`: of no known device), oldest first,
/// ties in token order (as `MemoryState` sorts its map).
async fn outstanding(conn: &mut Conn, device: Option<&DeviceId>) -> Result<Vec<Token>, StoreError> {
    let query = match device {
        Some(id) => sqlx::query(
            "SELECT token FROM sessions WHERE device = $1 AND consumed = FALSE \
             ORDER BY issued_at, token",
        )
        .bind(id.0.as_slice()),
        None => sqlx::query(
            "SELECT token FROM sessions WHERE device IS NULL AND consumed = FALSE \
             ORDER BY issued_at, token",
        ),
    };
    let rows = query.fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(|r| col(r, 0)).collect()
}

/// One device record with its installed list: a single statement (the device row joined
/// with its installed rows, one row per installed manifest, or one row of NULLs).
async fn device(conn: &mut Conn, id: &DeviceId) -> Result<Option<Device>, StoreError> {
    let rows = sqlx::query(
        "SELECT d.cose_key, d.class, d.revoked, d.suite, d.attested_at, \
         i.manifest_id, i.sequence, i.digest, d.attestation_exempt \
         FROM devices d LEFT JOIN installed i ON i.device = d.id \
         WHERE d.id = $1 ORDER BY i.position",
    )
    .bind(id.0.as_slice())
    .fetch_all(&mut *conn)
    .await
    .map_err(db)?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut installed = Vec::with_capacity(rows.len());
    for r in &rows {
        let manifest_id: Option<Vec<u8>> = col(r, 5)?;
        let Some(manifest_id) = manifest_id else {
            continue;
        };
        installed.push(Installed {
            manifest_id: codec::to_component_id(&manifest_id)?,
            sequence: seq_from_db(col(r, 6)?),
            digest: array(col(r, 7)?)?,
        });
    }
    let suite: Option<Vec<u8>> = col(row, 3)?;
    let attested_at: Option<i64> = col(row, 4)?;
    Ok(Some(Device {
        id: *id,
        key: col(row, 0)?,
        class: col(row, 1)?,
        revoked: col(row, 2)?,
        suite: suite.map(|s| codec::to_suite(&s)).transpose()?,
        attested_at: attested_at.map(uint).transpose()?,
        attestation_exempt: col(row, 8)?,
        installed,
    }))
}

fn policy_from_row(row: &DbRow) -> Result<TcPolicy, StoreError> {
    Ok(TcPolicy {
        install: codec::to_component_ids(&col::<Vec<u8>>(row, 0)?)?,
        requestable: codec::to_component_ids(&col::<Vec<u8>>(row, 1)?)?,
    })
}

/// The device's own policy, else its class's (the record's class, else `default_class`):
/// one statement, the device's row ranked before the class's.
async fn policy(
    conn: &mut Conn,
    id: &DeviceId,
    class: Option<&str>,
) -> Result<TcPolicy, StoreError> {
    let row = sqlx::query(
        "SELECT install, requestable, 0 AS rank FROM device_policies WHERE device = $1 \
         UNION ALL \
         SELECT install, requestable, 1 AS rank FROM class_policies WHERE class = $2 \
         ORDER BY rank LIMIT 1",
    )
    .bind(id.0.as_slice())
    .bind(class)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db)?;
    row.as_ref()
        .map(policy_from_row)
        .transpose()
        .map(Option::unwrap_or_default)
}

const RELEASE_COLUMNS: &str = "manifest_id, sequence, digest, signer, envelope, depends_on";

fn release_from_row(row: &DbRow) -> Result<TcRelease, StoreError> {
    let signer: Option<Vec<u8>> = col(row, 3)?;
    Ok(TcRelease {
        manifest_id: codec::to_component_id(&col::<Vec<u8>>(row, 0)?)?,
        sequence: seq_from_db(col(row, 1)?),
        digest: array(col(row, 2)?)?,
        signer: signer.map(array).transpose()?,
        envelope: col(row, 4)?,
        depends_on: codec::to_component_ids(&col::<Vec<u8>>(row, 5)?)?,
    })
}

/// The latest release of each of `ids` (`None`: it has none): the highest sequence number,
/// the last added on a tie (as `Iterator::max_by_key` picks in `MemoryState`). Sequence
/// numbers are compared here, not in SQL, since the column holds them bit-cast.
async fn latest_of(
    conn: &mut Conn,
    ids: &[&ComponentId],
) -> Result<Vec<(ComponentId, Option<TcRelease>)>, StoreError> {
    let mut query = sqlx::QueryBuilder::<Db>::new(format!(
        "SELECT {RELEASE_COLUMNS} FROM tc_releases WHERE manifest_id IN ("
    ));
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(codec::component_id(id));
    }
    query.push(") ORDER BY id");
    let rows = query.build().fetch_all(&mut *conn).await.map_err(db)?;
    let all = rows
        .iter()
        .map(release_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ids
        .iter()
        .map(|&id| {
            let latest = all
                .iter()
                .filter(|r| r.manifest_id == *id)
                .max_by_key(|r| r.sequence)
                .cloned();
            (id.clone(), latest)
        })
        .collect())
}

/// Every release of `id`, in the order added.
async fn releases_of(conn: &mut Conn, id: &ComponentId) -> Result<Vec<TcRelease>, StoreError> {
    let sql =
        format!("SELECT {RELEASE_COLUMNS} FROM tc_releases WHERE manifest_id = $1 ORDER BY id");
    let rows = sqlx::query(&sql)
        .bind(codec::component_id(id))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    rows.iter().map(release_from_row).collect()
}

/// The view `MemoryState::device_view` gives, walked in the same order.
async fn device_view(
    conn: &mut Conn,
    id: &DeviceId,
    default_class: Option<&str>,
) -> Result<DeviceView, StoreError> {
    let device = device(conn, id).await?;
    let class = device
        .as_ref()
        .and_then(|d| d.class.as_deref())
        .or(default_class);
    let mut policy = policy(conn, id, class).await?;
    policy.without_revoked(&revoked_tcs(conn).await?);
    let mut releases: Vec<TcRelease> = Vec::new();
    let mut todo: Vec<ComponentId> = policy
        .install
        .iter()
        .chain(&policy.requestable)
        .cloned()
        .collect();
    // The latest release of each ID (see `latest_of`), fetched for every ID still to walk
    // in one statement whenever the walk meets one not fetched yet (once per dependency
    // level), so the walk itself stays the one `MemoryState` makes.
    let mut fetched: Vec<(ComponentId, Option<TcRelease>)> = Vec::new();
    while let Some(next) = todo.pop() {
        if releases.iter().any(|r| r.manifest_id == next) {
            continue;
        }
        if !fetched.iter().any(|(id, _)| *id == next) {
            let mut wanted: Vec<&ComponentId> = vec![&next];
            for id in &todo {
                if !wanted.contains(&id) && !fetched.iter().any(|(f, _)| f == id) {
                    wanted.push(id);
                }
            }
            let found = latest_of(conn, &wanted).await?;
            fetched.extend(found);
        }
        let latest = fetched
            .iter()
            .find(|(id, _)| *id == next)
            .and_then(|(_, r)| r.clone());
        if let Some(r) = latest {
            todo.extend(r.depends_on.iter().cloned());
            releases.push(r);
        }
    }
    Ok(DeviceView {
        device,
        policy,
        releases,
        outstanding: outstanding(conn, Some(id)).await?,
    })
}

/// Applies `c` inside the caller's transaction, in `MemoryState::apply`'s order: first
/// the compare-and-set on the consumed token (the row is then locked for this
/// transaction, so a concurrent commit of the same token finds it consumed).
pub(super) async fn apply(conn: &mut Conn, c: &Changes) -> Result<(), StoreError> {
    if let Some(token) = &c.consume {
        let done = sqlx::query(
            "UPDATE sessions SET consumed = TRUE WHERE token = $1 AND consumed = FALSE",
        )
        .bind(token.as_slice())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict);
        }
    }
    if !c.retire.is_empty() || c.purge_expired_before.is_some() {
        // The retired tokens and the expired sessions, in one statement.
        let mut query = sqlx::QueryBuilder::<Db>::new("DELETE FROM sessions WHERE ");
        match c.purge_expired_before {
            Some(before) => query.push("expires_at < ").push_bind(int(before)?),
            None => query.push("FALSE"),
        };
        if !c.retire.is_empty() {
            query.push(" OR token IN (");
            let mut list = query.separated(", ");
            for token in &c.retire {
                list.push_bind(token.as_slice());
            }
            query.push(")");
        }
        query.build().execute(&mut *conn).await.map_err(db)?;
    }
    for s in &c.new_sessions {
        put_session(conn, s).await?;
    }
    if let Some(d) = &c.device {
        put_device(conn, d).await?;
    }
    if let Some(a) = &c.attestation {
        sqlx::query("INSERT INTO attestations (device, at, ear) VALUES ($1, $2, $3)")
            .bind(a.device.0.as_slice())
            .bind(int(a.at)?)
            .bind(a.ear.as_slice())
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    for r in &c.reports {
        sqlx::query(
            "INSERT INTO suit_reports (device, at, manifest_digest, success, report) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(r.device.0.as_slice())
        .bind(int(r.at)?)
        .bind(r.manifest_digest.as_slice())
        .bind(r.success)
        .bind(r.report.as_slice())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    }
    for a in &c.audit {
        append_audit(conn, a).await?;
    }
    Ok(())
}

/// Appends one audit-log line.
pub(super) async fn append_audit(conn: &mut Conn, a: &AuditEntry) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (at, device, event, detail) VALUES ($1, $2, $3, $4)")
        .bind(int(a.at)?)
        .bind(a.device.as_ref().map(|d| d.0.as_slice()))
        .bind(a.event.as_str())
        .bind(a.detail.as_deref())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Inserts or replaces a session record (the map insert of `MemoryState`).
async fn put_session(conn: &mut Conn, s: &SessionRecord) -> Result<(), StoreError> {
    let (challenge, state) = match &s.state {
        SessionState::ExpectQueryResponse(q) => {
            (q.challenge.as_deref(), codec::expect_query_response(q)?)
        }
        SessionState::ExpectSuccess(e) => (None, codec::expect_success(e)?),
    };
    sqlx::query(
        "INSERT INTO sessions (token, session_id, device, issued_at, expires_at, consumed, \
         kind, challenge, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (token) DO UPDATE SET session_id = excluded.session_id, \
         device = excluded.device, issued_at = excluded.issued_at, \
         expires_at = excluded.expires_at, consumed = excluded.consumed, \
         kind = excluded.kind, challenge = excluded.challenge, state = excluded.state",
    )
    .bind(s.token.as_slice())
    .bind(s.session.0.as_slice())
    .bind(s.device.as_ref().map(|d| d.0.as_slice()))
    .bind(int(s.issued_at)?)
    .bind(int(s.expires_at)?)
    .bind(s.consumed)
    .bind(s.state.name())
    .bind(challenge)
    .bind(state)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Inserts or replaces a device record with its installed list. The device row is
/// written first, so that on PostgreSQL its row lock orders concurrent writers of the
/// same device before either touches `installed`.
pub(super) async fn put_device(conn: &mut Conn, d: &Device) -> Result<(), StoreError> {
    let id = d.id.0.as_slice();
    sqlx::query(
        "INSERT INTO devices (id, cose_key, class, revoked, suite, attested_at, \
         attestation_exempt) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE \
         SET cose_key = excluded.cose_key, class = excluded.class, \
         revoked = excluded.revoked, suite = excluded.suite, \
         attested_at = excluded.attested_at, attestation_exempt = excluded.attestation_exempt",
    )
    .bind(id)
    .bind(d.key.as_slice())
    .bind(d.class.as_deref())
    .bind(d.revoked)
    .bind(d.suite.as_ref().map(codec::suite).transpose()?)
    .bind(d.attested_at.map(int).transpose()?)
    .bind(d.attestation_exempt)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    sqlx::query("DELETE FROM installed WHERE device = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if d.installed.is_empty() {
        return Ok(());
    }
    // Every installed row in one statement.
    let mut rows = Vec::with_capacity(d.installed.len());
    for (position, i) in d.installed.iter().enumerate() {
        rows.push((int(position)?, codec::component_id(&i.manifest_id), i));
    }
    let mut query = sqlx::QueryBuilder::<Db>::new(
        "INSERT INTO installed (device, position, manifest_id, sequence, digest) ",
    );
    query.push_values(rows, |mut row, (position, manifest_id, i)| {
        row.push_bind(id)
            .push_bind(position)
            .push_bind(manifest_id)
            .push_bind(seq_to_db(i.sequence))
            .push_bind(i.digest.as_slice());
    });
    query.build().execute(&mut *conn).await.map_err(db)?;
    Ok(())
}

/// Adds a TC release.
pub(super) async fn put_release(conn: &mut Conn, r: &TcRelease) -> Result<(), StoreError> {
    let sql =
        format!("INSERT INTO tc_releases ({RELEASE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)");
    sqlx::query(&sql)
        .bind(codec::component_id(&r.manifest_id))
        .bind(seq_to_db(r.sequence))
        .bind(r.digest.as_slice())
        .bind(r.signer.as_ref().map(<[u8; 32]>::as_slice))
        .bind(r.envelope.as_slice())
        .bind(codec::component_ids(&r.depends_on)?)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Sets the policy of a class or of one device.
pub(super) async fn put_policy(
    conn: &mut Conn,
    scope: PolicyScope<'_>,
    p: &TcPolicy,
) -> Result<(), StoreError> {
    let install = codec::component_ids(&p.install)?;
    let requestable = codec::component_ids(&p.requestable)?;
    let query = match &scope {
        PolicyScope::Class(class) => sqlx::query(
            "INSERT INTO class_policies (class, install, requestable) VALUES ($1, $2, $3) \
             ON CONFLICT (class) DO UPDATE SET install = excluded.install, \
             requestable = excluded.requestable",
        )
        .bind(*class),
        PolicyScope::Device(id) => sqlx::query(
            "INSERT INTO device_policies (device, install, requestable) VALUES ($1, $2, $3) \
             ON CONFLICT (device) DO UPDATE SET install = excluded.install, \
             requestable = excluded.requestable",
        )
        .bind(id.0.as_slice()),
    };
    query
        .bind(install)
        .bind(requestable)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// The whole state, as a `MemoryState` (for tests and export).
pub(super) async fn snapshot(conn: &mut Conn) -> Result<MemoryState, StoreError> {
    let mut state = MemoryState::default();
    for d in devices(conn).await? {
        state.devices.insert(d.id, d);
    }
    state.releases = releases(conn).await?;
    let Policies { classes, devices } = policies(conn).await?;
    state.class_policy = classes;
    state.device_policy = devices;
    let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions");
    for row in sqlx::query(&sql).fetch_all(&mut *conn).await.map_err(db)? {
        let s = session_from_row(&row)?;
        state.sessions.insert(s.token.clone(), s);
    }
    let sql = "SELECT device, at, ear FROM attestations ORDER BY id";
    for row in sqlx::query(sql).fetch_all(&mut *conn).await.map_err(db)? {
        state.attestations.push(AttestationRecord {
            device: DeviceId(array(col(&row, 0)?)?),
            at: uint(col(&row, 1)?)?,
            ear: col(&row, 2)?,
        });
    }
    let sql = "SELECT device, at, manifest_digest, success, report FROM suit_reports ORDER BY id";
    for row in sqlx::query(sql).fetch_all(&mut *conn).await.map_err(db)? {
        state.reports.push(ReportRecord {
            device: DeviceId(array(col(&row, 0)?)?),
            at: uint(col(&row, 1)?)?,
            manifest_digest: array(col(&row, 2)?)?,
            success: col(&row, 3)?,
            report: col(&row, 4)?,
        });
    }
    state.audit = audit(conn, 0, u64::MAX).await?;
    state.signers = signers(conn)
        .await?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    state.revoked_tcs = revoked_tcs(conn).await?;
    Ok(state)
}

/// Every device record, in id order.
async fn devices(conn: &mut Conn) -> Result<Vec<Device>, StoreError> {
    let ids = sqlx::query("SELECT id FROM devices ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let mut out = Vec::with_capacity(ids.len());
    for row in &ids {
        let id = DeviceId(array(col(row, 0)?)?);
        out.extend(device(conn, &id).await?);
    }
    Ok(out)
}

/// Every release, in the order added.
pub(super) async fn releases(conn: &mut Conn) -> Result<Vec<TcRelease>, StoreError> {
    let sql = format!("SELECT {RELEASE_COLUMNS} FROM tc_releases ORDER BY id");
    let rows = sqlx::query(&sql).fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(release_from_row).collect()
}

/// Every class's and device's policy.
pub(super) async fn policies(conn: &mut Conn) -> Result<Policies, StoreError> {
    let mut out = Policies::default();
    let sql = "SELECT install, requestable, class FROM class_policies";
    for row in sqlx::query(sql).fetch_all(&mut *conn).await.map_err(db)? {
        out.classes.insert(col(&row, 2)?, policy_from_row(&row)?);
    }
    let sql = "SELECT install, requestable, device FROM device_policies";
    for row in sqlx::query(sql).fetch_all(&mut *conn).await.map_err(db)? {
        let id = DeviceId(array(col(&row, 2)?)?);
        out.devices.insert(id, policy_from_row(&row)?);
    }
    Ok(out)
}

/// Audit entries `offset..offset + limit`, oldest first.
pub(super) async fn audit(
    conn: &mut Conn,
    offset: u64,
    limit: u64,
) -> Result<Vec<AuditEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT at, device, event, detail FROM audit_log ORDER BY id LIMIT $1 OFFSET $2",
    )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    rows.iter()
        .map(|row| {
            let device: Option<Vec<u8>> = col(row, 1)?;
            Ok(AuditEntry {
                at: uint(col(row, 0)?)?,
                device: device.map(|d| array(d).map(DeviceId)).transpose()?,
                event: col(row, 2)?,
                detail: col(row, 3)?,
            })
        })
        .collect()
}

/// Revoked manifest IDs, in the order revoked.
pub(super) async fn revoked_tcs(conn: &mut Conn) -> Result<Vec<ComponentId>, StoreError> {
    let rows = sqlx::query("SELECT manifest_id FROM revoked_tcs ORDER BY id")
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    rows.iter()
        .map(|r| codec::to_component_id(&col::<Vec<u8>>(r, 0)?))
        .collect()
}

/// Serialises the writers of the TC repository (uploads and TC revocations) for the rest
/// of the transaction, so that the rules one upload checked still hold when it commits.
/// SQLite's `BEGIN IMMEDIATE` serialises every writer already; PostgreSQL's READ COMMITTED
/// locks no row that does not exist yet, so the table is locked against other writers
/// (readers, such as the engine's loads, are not blocked).
async fn lock_repository(conn: &mut Conn) -> Result<(), StoreError> {
    if <Db as sqlx::Database>::NAME == "PostgreSQL" {
        sqlx::query("LOCK TABLE tc_releases IN SHARE ROW EXCLUSIVE MODE")
            .execute(&mut *conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// Adds a release if it keeps the repository rules (checked in this transaction).
pub(super) async fn add_release(conn: &mut Conn, r: &TcRelease) -> Result<(), AdminError> {
    lock_repository(conn).await?;
    let earlier = releases_of(conn, &r.manifest_id).await?;
    let revoked = revoked_tcs(conn).await?.contains(&r.manifest_id);
    check_release(&earlier, revoked, r)?;
    Ok(put_release(conn, r).await?)
}

/// Revokes every version of a TC that has a release.
pub(super) async fn revoke_tc(conn: &mut Conn, id: &ComponentId) -> Result<(), AdminError> {
    lock_repository(conn).await?;
    if releases_of(conn, id).await?.is_empty() {
        return Err(AdminError::NotFound("TC"));
    }
    sqlx::query("INSERT INTO revoked_tcs (manifest_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(codec::component_id(id))
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Every device with its latest attestation, reports and contact.
pub(super) async fn device_summaries(conn: &mut Conn) -> Result<Vec<DeviceSummary>, StoreError> {
    let mut out = Vec::new();
    for device in devices(conn).await? {
        let id = device.id.0.to_vec();
        let attestation = sqlx::query(
            "SELECT at, ear FROM attestations WHERE device = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(id.as_slice())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?;
        let last_attestation = attestation
            .map(|row| -> Result<_, StoreError> {
                Ok(AttestationRecord {
                    device: device.id,
                    at: uint(col(&row, 0)?)?,
                    ear: col(&row, 1)?,
                })
            })
            .transpose()?;
        let reports = sqlx::query(
            "SELECT at, manifest_digest, success, report FROM suit_reports WHERE device = $1 \
             ORDER BY id DESC LIMIT $2",
        )
        .bind(id.as_slice())
        .bind(int(LAST_REPORTS)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
        let last_reports = reports
            .iter()
            .map(|row| {
                Ok(ReportRecord {
                    device: device.id,
                    at: uint(col(row, 0)?)?,
                    manifest_digest: array(col(row, 1)?)?,
                    success: col(row, 2)?,
                    report: col(row, 3)?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let contact = sqlx::query("SELECT MAX(at) FROM audit_log WHERE device = $1")
            .bind(id.as_slice())
            .fetch_one(&mut *conn)
            .await
            .map_err(db)?;
        let last_contact: Option<i64> = col(&contact, 0)?;
        out.push(DeviceSummary {
            device,
            last_attestation,
            last_reports,
            last_contact: last_contact.map(uint).transpose()?,
        });
    }
    Ok(out)
}

/// Revokes a known device.
pub(super) async fn revoke_device(conn: &mut Conn, id: &DeviceId) -> Result<(), AdminError> {
    let done = sqlx::query("UPDATE devices SET revoked = TRUE WHERE id = $1")
        .bind(id.0.as_slice())
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(AdminError::NotFound("device"));
    }
    Ok(())
}

/// TC-signer anchors in name order (sorted here: a PostgreSQL collation may not be
/// byte order).
pub(super) async fn signers(conn: &mut Conn) -> Result<Vec<SignerRecord>, StoreError> {
    let rows = sqlx::query("SELECT name, cose_key, scope, ca_cert FROM tc_signers")
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    let mut out = rows
        .iter()
        .map(|r| {
            Ok(SignerRecord {
                name: col(r, 0)?,
                key: col(r, 1)?,
                scope: codec::to_component_ids(&col::<Vec<u8>>(r, 2)?)?,
                ca: col(r, 3)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Adds or replaces a TC-signer anchor.
pub(super) async fn put_signer(conn: &mut Conn, s: &SignerRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tc_signers (name, cose_key, scope, ca_cert) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO UPDATE SET cose_key = excluded.cose_key, \
         scope = excluded.scope, ca_cert = excluded.ca_cert",
    )
    .bind(s.name.as_str())
    .bind(s.key.as_slice())
    .bind(codec::component_ids(&s.scope)?)
    .bind(s.ca.as_deref())
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(())
}

/// Removes a TC-signer anchor.
pub(super) async fn remove_signer(conn: &mut Conn, name: &str) -> Result<(), AdminError> {
    let done = sqlx::query("DELETE FROM tc_signers WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(AdminError::NotFound("signer"));
    }
    Ok(())
}

/// Registers a device (see `AdminStore::register_device`): one upsert that, for a known
/// device, changes only the class and the exemption it is given (never the key, the
/// revocation, the attestation or the installed list); `true` when the row is new.
pub(super) async fn register_device(
    conn: &mut Conn,
    r: &Registration,
) -> Result<bool, AdminError> {
    let known = sqlx::query("SELECT 1 FROM devices WHERE id = $1")
        .bind(r.id.0.as_slice())
        .fetch_optional(&mut *conn)
        .await
        .map_err(db)?
        .is_some();
    sqlx::query(
        "INSERT INTO devices (id, cose_key, class, revoked, suite, attested_at, \
         attestation_exempt) VALUES ($1, $2, $3, FALSE, NULL, NULL, $4) \
         ON CONFLICT (id) DO UPDATE SET class = COALESCE($3, devices.class), \
         attestation_exempt = COALESCE($5, devices.attestation_exempt)",
    )
    .bind(r.id.0.as_slice())
    .bind(r.key.as_slice())
    .bind(r.class.as_deref())
    .bind(r.attestation_exempt.unwrap_or(false))
    .bind(r.attestation_exempt)
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    Ok(!known)
}

/// Sets or clears a known device's class.
pub(super) async fn set_device_class(
    conn: &mut Conn,
    id: &DeviceId,
    class: Option<&str>,
) -> Result<(), AdminError> {
    let done = sqlx::query("UPDATE devices SET class = $2 WHERE id = $1")
        .bind(id.0.as_slice())
        .bind(class)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    if done.rows_affected() == 0 {
        return Err(AdminError::NotFound("device"));
    }
    Ok(())
}
