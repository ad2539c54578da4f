// The queries, written once and compiled for each dialect: `sql/mod.rs` includes this
// file in a module that defines `Db` (sqlx::Sqlite or sqlx::Postgres). Both dialects
// take `$n` placeholders and `ON CONFLICT ... DO UPDATE`, so the SQL text is shared too.

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::{Either, Executor};

use super::{Cols, Column, Value, array, codec, db, int, placeholders, renumber, seq_from_db, seq_to_db, uint};
use crate::store::StoreError;
use crate::store::{
    AdminError, AttestationOutcome, AttestationRecord, AttestationVerdict, AuditEntry, Changes, Device, DeviceId, DevicePage, DeviceSummary,
    DeviceView, Installed, LAST_REPORTS, LoadRequest, OUTCOMES_PER_DEVICE, Loaded, MemoryState, Policies, PolicyScope,
    Registration, ReportRecord, SessionId, SessionRecord, SessionState, SignerRecord, TcPolicy,
    TcRelease, Token, check_release,
};
use teep_proto::ComponentId;

/// A connection (or an open transaction, through `&mut *tx`).
pub(super) type Conn = <Db as sqlx::Database>::Connection;
type DbRow = <Db as sqlx::Database>::Row;

/// Column `i` of `row` as `T`.
fn col<T: Column>(row: &impl Cols, i: usize) -> Result<T, StoreError> {
    row.column(i)
}

/// Whether `Db` is SQLite (whose statements can travel together, see [`Batch`]).
fn is_sqlite() -> bool {
    <Db as sqlx::Database>::NAME == "SQLite"
}

/// Statements run in order on one connection. On SQLite they travel as one
/// multi-statement query: one hand-off to the connection's worker thread instead of one
/// per statement (that fixed cost, not the statements, dominated a session: see
/// docs/tam.md "Performance"); each statement keeps its own `$1..` in the source and they
/// are renumbered into one argument list. PostgreSQL prepares one statement at a time, so
/// there they run one by one.
#[derive(Default)]
struct Batch<'a> {
    statements: Vec<(Cow<'static, str>, Vec<Value<'a>>)>,
    /// Indices of a commit's compare-and-set statements: each must change exactly one row.
    guards: Vec<usize>,
}

impl<'a> Batch<'a> {
    /// Adds a statement; its index in the batch.
    fn push(&mut self, sql: impl Into<Cow<'static, str>>, values: Vec<Value<'a>>) -> usize {
        self.statements.push((sql.into(), values));
        self.statements.len() - 1
    }

    /// Runs every statement (writes: rows they return are not read). Unless each of [`Self::guards`] (a commit's
    /// compare-and-sets) changed exactly one row the run stops with
    /// [`StoreError::Conflict`] (the caller's transaction is then rolled back, so on SQLite,
    /// where the later statements may have run already, they leave nothing either).
    async fn run(&self, conn: &mut Conn) -> Result<(), StoreError> {
        let mut done = 0;
        if is_sqlite() && self.statements.len() > 1 {
            let mut sql = String::new();
            let mut values: Vec<&Value<'a>> = Vec::new();
            for (text, v) in &self.statements {
                if !sql.is_empty() {
                    sql.push_str(";\n");
                }
                renumber(text, values.len(), &mut sql);
                values.extend(v);
            }
            run_sql(conn, &sql, &values, &self.guards, &mut done).await?;
        } else {
            for (text, v) in &self.statements {
                let values: Vec<&Value<'a>> = v.iter().collect();
                run_sql(conn, text, &values, &self.guards, &mut done).await?;
            }
        }
        if done != self.statements.len() {
            return Err(StoreError::Backend(format!(
                "{done} results for a batch of {} statements",
                self.statements.len()
            )));
        }
        Ok(())
    }
}

/// A query of this dialect.
type Query<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

/// `query` with `v` bound to its next placeholder.
fn bind_value<'q>(query: Query<'q>, v: &'q Value<'_>) -> Query<'q> {
    match v {
        Value::Blob(b) => query.bind(b.as_deref()),
        Value::Int(i) => query.bind(*i),
        Value::Bool(b) => query.bind(*b),
        Value::Text(t) => query.bind(*t),
    }
}

/// Runs `sql` (one statement, or several on SQLite) with `values`, counting in `done` the
/// statements that finished; fails with [`StoreError::Conflict`] as soon as a statement
/// whose index is in `guards` turns out to have changed other than exactly one row.
async fn run_sql(
    conn: &mut Conn,
    sql: &str,
    values: &[&Value<'_>],
    guards: &[usize],
    done: &mut usize,
) -> Result<(), StoreError> {
    let query = values.iter().fold(sqlx::query(sql), |q, v| bind_value(q, v));
    let mut stream = (&mut *conn).fetch_many(query);
    while let Some(step) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        if let Either::Left(result) = step.map_err(db)? {
            if guards.contains(done) && result.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
            *done += 1;
        }
    }
    Ok(())
}

fn session_from_row(row: &impl Cols) -> Result<SessionRecord, StoreError> {
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

/// Unconsumed tokens of the device `$1`'s sessions, oldest first (issue time, then issue
/// order, as `MemoryState` sorts them); ties, possible only between replicas committing
/// at once, in token order.
const OUTSTANDING_SQL: &str = "SELECT token FROM sessions WHERE device = $1 AND consumed = FALSE \
     ORDER BY issued_at, issue_order, token";

/// The device row joined with its installed rows (one row per installed manifest, or one
/// row of NULLs): a device record with its installed list in a single statement.
const DEVICE_SQL: &str = "SELECT d.cose_key, d.class, d.revoked, d.suite, d.attested_at, \
     i.manifest_id, i.sequence, i.digest, d.attestation_exempt, d.revision, d.failed \
     FROM devices d LEFT JOIN installed i ON i.device = d.id \
     WHERE d.id = $1 ORDER BY i.position";

/// One device record with its installed list (see [`DEVICE_SQL`]).
async fn device(conn: &mut Conn, id: &DeviceId) -> Result<Option<Device>, StoreError> {
    let rows = sqlx::query(DEVICE_SQL)
        .bind(id.0.as_slice())
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    device_from_rows(id, &rows)
}

/// The record's revision in [`DEVICE_SQL`]'s rows (0: no such device).
fn revision_from_rows(rows: &[impl Cols]) -> Result<u64, StoreError> {
    rows.first().map_or(Ok(0), |r| uint(col(r, 9)?))
}

/// The record [`DEVICE_SQL`]'s rows describe (`None`: no rows, no such device).
fn device_from_rows(id: &DeviceId, rows: &[impl Cols]) -> Result<Option<Device>, StoreError> {
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let mut installed = Vec::with_capacity(rows.len());
    for r in rows {
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
        failed: codec::to_failed(&col::<Vec<u8>>(row, 10)?)?,
    }))
}

fn policy_from_row(row: &impl Cols) -> Result<TcPolicy, StoreError> {
    Ok(TcPolicy {
        install: codec::to_component_ids(&col::<Vec<u8>>(row, 0)?)?,
        requestable: codec::to_component_ids(&col::<Vec<u8>>(row, 1)?)?,
    })
}

/// The device's own policy, else its class's (the record's class, else `$2`, the default
/// class): one statement, the device's row ranked before the class's, at most one row.
const POLICY_SQL: &str = "SELECT install, requestable, 0 AS rank FROM device_policies \
     WHERE device = $1 \
     UNION ALL \
     SELECT install, requestable, 1 AS rank FROM class_policies \
     WHERE class = COALESCE((SELECT class FROM devices WHERE id = $1), $2) \
     ORDER BY rank LIMIT 1";

const RELEASE_COLUMNS: &str = "manifest_id, sequence, digest, signer, envelope, depends_on";

fn release_from_row(row: &impl Cols) -> Result<TcRelease, StoreError> {
    let signer: Option<Vec<u8>> = col(row, 3)?;
    Ok(TcRelease {
        manifest_id: codec::to_component_id(&col::<Vec<u8>>(row, 0)?)?,
        sequence: seq_from_db(col(row, 1)?),
        digest: array(col(row, 2)?)?,
        signer: signer.map(array).transpose()?,
        envelope: col::<Vec<u8>>(row, 4)?.into(),
        depends_on: codec::to_component_ids(&col::<Vec<u8>>(row, 5)?)?,
    })
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

const SESSION_COLUMNS: &str =
    "token, session_id, device, issued_at, expires_at, consumed, kind, challenge, state";

/// The session a token names.
fn session_sql() -> String {
    format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE token = $1")
}

/// A release's row id and its record, the envelope left empty: what [`ReleaseWalk`]
/// walks over ([`fill_envelopes`] then adds the envelopes of the releases it kept).
type Walked = (i64, TcRelease);

/// The columns of [`latest_sql`]: [`RELEASE_COLUMNS`] with the row id in place of the
/// envelope, since the walk reads every release of each ID it meets and keeps one.
const WALKED_COLUMNS: &str = "manifest_id, sequence, digest, signer, id, depends_on";

/// A row of [`latest_sql`].
fn walked_from_row(row: &impl Cols) -> Result<Walked, StoreError> {
    let signer: Option<Vec<u8>> = col(row, 3)?;
    let release = TcRelease {
        manifest_id: codec::to_component_id(&col::<Vec<u8>>(row, 0)?)?,
        sequence: seq_from_db(col(row, 1)?),
        digest: array(col(row, 2)?)?,
        signer: signer.map(array).transpose()?,
        envelope: Arc::default(),
        depends_on: codec::to_component_ids(&col::<Vec<u8>>(row, 5)?)?,
    };
    Ok((col(row, 4)?, release))
}

/// The latest-release query of [`ReleaseWalk`] for `n` manifest IDs (`$1..$n`).
fn latest_sql(n: usize) -> String {
    format!(
        "SELECT {WALKED_COLUMNS} FROM tc_releases WHERE manifest_id IN ({}) ORDER BY id",
        placeholders(1, n)
    )
}

/// The envelopes of `n` release rows (`$1..$n`: their ids), as `(id, envelope)` rows.
fn envelopes_sql(n: usize) -> String {
    format!(
        "SELECT id, envelope FROM tc_releases WHERE id IN ({})",
        placeholders(1, n)
    )
}

/// The bindings of [`envelopes_sql`] for `rows`.
fn envelope_values(rows: &[i64]) -> Vec<Value<'static>> {
    rows.iter().map(|id| Value::Int(Some(*id))).collect()
}

/// The walked releases with their envelopes from `found` (`(id, envelope)` pairs: rows
/// of [`envelopes_sql`], or envelopes already held). A release row is never changed or
/// removed, so a missing envelope is a broken database.
fn fill_envelopes(
    walked: Vec<Walked>,
    mut found: Vec<(i64, Arc<[u8]>)>,
) -> Result<Vec<TcRelease>, StoreError> {
    walked
        .into_iter()
        .map(|(row, mut release)| {
            let at = found
                .iter()
                .position(|(id, _)| *id == row)
                .ok_or_else(|| StoreError::Backend(format!("release row {row} has no envelope")))?;
            release.envelope = found.swap_remove(at).1;
            Ok(release)
        })
        .collect()
}

/// The first statements of a device view, in [`view_head`]'s order: the record (with its
/// installed list), the policy, the revoked TCs, the outstanding tokens.
fn view_queries<'a>(
    id: &'a DeviceId,
    default_class: Option<&'a str>,
) -> [(&'static str, Vec<Value<'a>>); 4] {
    [
        (DEVICE_SQL, vec![Value::blob(&id.0)]),
        (
            POLICY_SQL,
            vec![Value::blob(&id.0), Value::Text(default_class)],
        ),
        (REVOKED_SQL, vec![]),
        (OUTSTANDING_SQL, vec![Value::blob(&id.0)]),
    ]
}

/// The view the rows of [`view_queries`] give: the record and its revision, the policy
/// without the revoked TCs, the outstanding tokens; the releases follow through a
/// [`ReleaseWalk`].
fn view_head<R: Cols>(id: &DeviceId, head: &[Vec<R>]) -> Result<DeviceView, StoreError> {
    let rows = |i: usize| head.get(i).map_or(&[][..], Vec::as_slice);
    let mut policy = rows(1)
        .first()
        .map(policy_from_row)
        .transpose()?
        .unwrap_or_default();
    policy.without_revoked(&revoked_from_rows(rows(2))?);
    Ok(DeviceView {
        device: device_from_rows(id, rows(0))?,
        revision: revision_from_rows(rows(0))?,
        policy,
        releases: Vec::new(),
        outstanding: rows(3)
            .iter()
            .map(|r| col(r, 0))
            .collect::<Result<Vec<Token>, _>>()?,
    })
}

/// The bindings of [`latest_sql`] for `wanted`.
fn latest_values(wanted: &[ComponentId]) -> Vec<Value<'static>> {
    wanted
        .iter()
        .map(|id| Value::owned(codec::component_id(id)))
        .collect()
}

/// The walk `MemoryState::device_view` makes over a policy's TCs and their dependencies,
/// without I/O: it names the latest releases to fetch ([`latest_sql`]) for every ID
/// still to walk whenever it meets one not fetched yet (once per dependency level), and
/// takes what was found. A release taken from `fetched` is in `releases` from then on,
/// so the walk never looks for it again.
struct ReleaseWalk {
    releases: Vec<Walked>,
    todo: Vec<ComponentId>,
    fetched: Vec<(ComponentId, Option<Walked>)>,
}

impl ReleaseWalk {
    fn new(policy: &TcPolicy) -> Self {
        Self {
            releases: Vec::new(),
            todo: policy.install.iter().chain(&policy.requestable).cloned().collect(),
            fetched: Vec::new(),
        }
    }

    /// Walks as far as the releases fetched allow: the IDs to fetch next, `None` when
    /// the walk is done.
    fn wanted(&mut self) -> Option<Vec<ComponentId>> {
        while let Some(next) = self.todo.pop() {
            if self.releases.iter().any(|(_, r)| r.manifest_id == next) {
                continue;
            }
            if !self.fetched.iter().any(|(id, _)| *id == next) {
                let mut wanted = vec![next.clone()];
                for id in &self.todo {
                    if !wanted.contains(id) && !self.fetched.iter().any(|(f, _)| f == id) {
                        wanted.push(id.clone());
                    }
                }
                // Walked again once fetched.
                self.todo.push(next);
                return Some(wanted);
            }
            let latest = self
                .fetched
                .iter_mut()
                .find(|(id, _)| *id == next)
                .and_then(|(_, r)| r.take());
            if let Some(r) = latest {
                self.todo.extend(r.1.depends_on.iter().cloned());
                self.releases.push(r);
            }
        }
        None
    }

    /// Takes the releases [`latest_sql`] found for `wanted`, in its row order: the latest
    /// of each ID (`None`: it has none) is the highest sequence number, the last added on
    /// a tie (as `Iterator::max_by_key` picks in `MemoryState`). Sequence numbers are
    /// compared here, not in SQL, since the column holds them bit-cast. Each release is
    /// moved into its slot, not copied (an envelope may be large).
    fn fetched(&mut self, wanted: Vec<ComponentId>, found: Vec<Walked>) {
        let mut latest: Vec<(ComponentId, Option<Walked>)> =
            wanted.into_iter().map(|id| (id, None)).collect();
        for r in found {
            let slot = latest.iter_mut().find(|(id, _)| *id == r.1.manifest_id);
            if let Some((_, slot)) = slot
                && slot.as_ref().is_none_or(|(_, s)| r.1.sequence >= s.sequence)
            {
                *slot = Some(r);
            }
        }
        self.fetched.extend(latest);
    }
}

/// The statements of one commit of the engine, in `MemoryState::apply`'s order, as one
/// [`Batch`]: first the compare-and-set on the consumed token (the row is then locked for
/// this transaction, so a concurrent commit of the same token finds it consumed).
fn changes_batch(c: &Changes) -> Result<Batch<'_>, StoreError> {
    let mut batch = Batch::default();
    if let Some(token) = &c.consume {
        let consume = batch.push(
            "UPDATE sessions SET consumed = TRUE WHERE token = $1 AND consumed = FALSE",
            vec![Value::blob(token)],
        );
        batch.guards.push(consume);
    }
    if !c.retire.is_empty() || c.purge_expired_before.is_some() {
        // The retired tokens and the expired sessions, in one statement, of only the
        // conditions that apply: SQLite scans the whole table for `FALSE OR token IN (..)`.
        let mut values = Vec::with_capacity(c.retire.len() + 1);
        let mut sql = String::from("DELETE FROM sessions WHERE ");
        if let Some(before) = c.purge_expired_before {
            sql.push_str("expires_at < $1");
            values.push(Value::Int(Some(int(before)?)));
        }
        if !c.retire.is_empty() {
            if !values.is_empty() {
                sql.push_str(" OR ");
            }
            sql.push_str("token IN (");
            sql.push_str(&placeholders(values.len() + 1, c.retire.len()));
            sql.push(')');
            values.extend(c.retire.iter().map(|t| Value::blob(t)));
        }
        batch.push(sql, values);
    }
    for s in &c.new_sessions {
        push_session(&mut batch, s)?;
    }
    if let Some(d) = &c.device {
        push_device(&mut batch, d)?;
        // After the upsert, so that a new record has its row (at revision 0) to bump; a
        // revision other than the one read changes no row and rolls the commit back.
        let mut values = vec![Value::blob(&d.id.0)];
        let mut sql = String::from("UPDATE devices SET revision = revision + 1 WHERE id = $1");
        if let Some(read) = c.device_revision {
            sql.push_str(" AND revision = $2");
            values.push(Value::Int(Some(int(read)?)));
        }
        let bump = batch.push(sql, values);
        if c.device_revision.is_some() {
            batch.guards.push(bump);
        }
    }
    if let Some(a) = &c.attestation {
        batch.push(
            "INSERT INTO attestations (device, at, ear) VALUES ($1, $2, $3)",
            vec![
                Value::blob(&a.device.0),
                Value::Int(Some(int(a.at)?)),
                Value::blob(&a.ear),
            ],
        );
    }
    if let Some(o) = &c.outcome {
        batch.push(
            // Outcomes of devices with a record only (the record may come in this commit).
            "INSERT INTO attestation_outcomes (device, at, verdict, detail) \
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM devices WHERE id = $5)",
            vec![
                Value::blob(&o.device.0),
                Value::Int(Some(int(o.at)?)),
                Value::Text(Some(o.verdict.name())),
                Value::Text(Some(&o.detail)),
                Value::blob(&o.device.0),
            ],
        );
        // The device keeps its latest OUTCOMES_PER_DEVICE: the rest, oldest first, go.
        batch.push(
            "DELETE FROM attestation_outcomes WHERE device = $1 AND id <= \
             (SELECT id FROM attestation_outcomes WHERE device = $2 ORDER BY id DESC \
              LIMIT 1 OFFSET $3)",
            vec![
                Value::blob(&o.device.0),
                Value::blob(&o.device.0),
                Value::Int(Some(int(OUTCOMES_PER_DEVICE)?)),
            ],
        );
    }
    for r in &c.reports {
        batch.push(
            "INSERT INTO suit_reports (device, at, manifest_digest, success, report) \
             VALUES ($1, $2, $3, $4, $5)",
            vec![
                Value::blob(&r.device.0),
                Value::Int(Some(int(r.at)?)),
                Value::blob(&r.manifest_digest),
                Value::Bool(r.success),
                Value::blob(&r.report),
            ],
        );
    }
    for a in &c.audit {
        push_audit(&mut batch, a)?;
    }
    Ok(batch)
}

/// Appends one audit-log line.
pub(super) async fn append_audit(conn: &mut Conn, a: &AuditEntry) -> Result<(), StoreError> {
    let mut batch = Batch::default();
    push_audit(&mut batch, a)?;
    batch.run(conn).await?;
    Ok(())
}

/// Adds the insert of one audit-log line to `batch`.
fn push_audit<'a>(batch: &mut Batch<'a>, a: &'a AuditEntry) -> Result<(), StoreError> {
    batch.push(
        "INSERT INTO audit_log (at, device, event, detail) VALUES ($1, $2, $3, $4)",
        vec![
            Value::Int(Some(int(a.at)?)),
            Value::Blob(a.device.as_ref().map(|d| Cow::Borrowed(d.0.as_slice()))),
            Value::Text(Some(a.event.as_str())),
            Value::Text(a.detail.as_deref()),
        ],
    );
    Ok(())
}

/// Adds the insert-or-replace of a session record (the map insert of `MemoryState`) to
/// `batch`. A new row's `issue_order` is one more than the highest held (a replaced row
/// keeps its own), as `MemoryState::session_order` counts.
fn push_session<'a>(batch: &mut Batch<'a>, s: &'a SessionRecord) -> Result<(), StoreError> {
    let (challenge, state) = match &s.state {
        SessionState::ExpectQueryResponse(q) => {
            (q.challenge.as_deref(), codec::expect_query_response(q)?)
        }
        SessionState::ExpectSuccess(e) => (None, codec::expect_success(e)?),
    };
    batch.push(
        "INSERT INTO sessions (token, session_id, device, issued_at, expires_at, consumed, \
         kind, challenge, state, issue_order) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
         (SELECT COALESCE(MAX(issue_order), 0) + 1 FROM sessions)) \
         ON CONFLICT (token) DO UPDATE SET session_id = excluded.session_id, \
         device = excluded.device, issued_at = excluded.issued_at, \
         expires_at = excluded.expires_at, consumed = excluded.consumed, \
         kind = excluded.kind, challenge = excluded.challenge, state = excluded.state",
        vec![
            Value::blob(&s.token),
            Value::blob(&s.session.0),
            Value::Blob(s.device.as_ref().map(|d| Cow::Borrowed(d.0.as_slice()))),
            Value::Int(Some(int(s.issued_at)?)),
            Value::Int(Some(int(s.expires_at)?)),
            Value::Bool(s.consumed),
            Value::Text(Some(s.state.name())),
            Value::Blob(challenge.map(Cow::Borrowed)),
            Value::owned(state),
        ],
    );
    Ok(())
}

/// Inserts or replaces a device record with its installed list.
pub(super) async fn put_device(conn: &mut Conn, d: &Device) -> Result<(), StoreError> {
    let mut batch = Batch::default();
    push_device(&mut batch, d)?;
    batch.run(conn).await?;
    Ok(())
}

/// Adds the insert-or-replace of a device record with its installed list to `batch`. The
/// device row is written first, so that on PostgreSQL its row lock orders concurrent
/// writers of the same device before either touches `installed`.
/// Writes many device records and their attestation results in one batch (see
/// `SqlStore::put_devices`): a fleet's state seeded in bulk, not one round trip each.
pub(super) async fn put_devices(
    conn: &mut Conn,
    devices: &[Device],
    attestations: &[AttestationRecord],
) -> Result<(), StoreError> {
    let mut batch = Batch::default();
    for d in devices {
        push_device(&mut batch, d)?;
    }
    for a in attestations {
        batch.push(
            "INSERT INTO attestations (device, at, ear) VALUES ($1, $2, $3)",
            vec![
                Value::blob(&a.device.0),
                Value::Int(Some(int(a.at)?)),
                Value::blob(&a.ear),
            ],
        );
    }
    batch.run(conn).await?;
    Ok(())
}

fn push_device<'a>(batch: &mut Batch<'a>, d: &'a Device) -> Result<(), StoreError> {
    let id = d.id.0.as_slice();
    batch.push(
        "INSERT INTO devices (id, cose_key, class, revoked, suite, attested_at, \
         attestation_exempt, failed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT (id) DO UPDATE \
         SET cose_key = excluded.cose_key, class = excluded.class, \
         revoked = excluded.revoked, suite = excluded.suite, \
         attested_at = excluded.attested_at, attestation_exempt = excluded.attestation_exempt, \
         failed = excluded.failed",
        vec![
            Value::blob(id),
            Value::blob(&d.key),
            Value::Text(d.class.as_deref()),
            Value::Bool(d.revoked),
            Value::Blob(d.suite.as_ref().map(codec::suite).transpose()?.map(Cow::Owned)),
            Value::Int(d.attested_at.map(int).transpose()?),
            Value::Bool(d.attestation_exempt),
            Value::owned(codec::failed(&d.failed)?),
        ],
    );
    batch.push(
        "DELETE FROM installed WHERE device = $1",
        vec![Value::blob(id)],
    );
    if d.installed.is_empty() {
        return Ok(());
    }
    // Every installed row in one statement.
    let mut sql =
        String::from("INSERT INTO installed (device, position, manifest_id, sequence, digest) VALUES ");
    let mut values = Vec::with_capacity(d.installed.len() * 5);
    for (position, i) in d.installed.iter().enumerate() {
        if position > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        sql.push_str(&placeholders(values.len() + 1, 5));
        sql.push(')');
        values.extend([
            Value::blob(id),
            Value::Int(Some(int(position)?)),
            Value::owned(codec::component_id(&i.manifest_id)),
            Value::Int(Some(seq_to_db(i.sequence))),
            Value::blob(&i.digest),
        ]);
    }
    batch.push(sql, values);
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
        .bind(&r.envelope[..])
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
    let sql = "SELECT token, issue_order FROM sessions";
    for row in sqlx::query(sql).fetch_all(&mut *conn).await.map_err(db)? {
        state
            .session_order
            .insert(col(&row, 0)?, uint(col(&row, 1)?)?);
    }
    let sql = "SELECT device, at, ear FROM attestations ORDER BY id";
    for row in sqlx::query(sql).fetch_all(&mut *conn).await.map_err(db)? {
        state.attestations.push(AttestationRecord {
            device: DeviceId(array(col(&row, 0)?)?),
            at: uint(col(&row, 1)?)?,
            ear: col(&row, 2)?,
        });
    }
    let sql = format!("SELECT {OUTCOME_COLUMNS} FROM attestation_outcomes o ORDER BY o.id");
    for row in sqlx::query(&sql).fetch_all(&mut *conn).await.map_err(db)? {
        state.outcomes.push(outcome_from_row(&row)?);
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
    let sql = "SELECT id, revision FROM devices WHERE revision > 0";
    for row in sqlx::query(sql).fetch_all(&mut *conn).await.map_err(db)? {
        state
            .device_revisions
            .insert(DeviceId(array(col(&row, 0)?)?), uint(col(&row, 1)?)?);
    }
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
    let rows = sqlx::query(REVOKED_SQL)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    revoked_from_rows(&rows)
}

/// Revoked manifest IDs, in the order revoked.
const REVOKED_SQL: &str = "SELECT manifest_id FROM revoked_tcs ORDER BY id";

/// The IDs [`REVOKED_SQL`]'s rows name.
fn revoked_from_rows(rows: &[impl Cols]) -> Result<Vec<ComponentId>, StoreError> {
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

/// The ids of the devices on `page`, in order.
async fn page_ids(conn: &mut Conn, page: DevicePage) -> Result<Vec<DeviceId>, StoreError> {
    let query = match &page {
        DevicePage::One(id) => {
            sqlx::query("SELECT id FROM devices WHERE id = $1").bind(id.0.as_slice())
        }
        DevicePage::After { after, limit } => {
            let limit = i64::try_from(*limit).unwrap_or(i64::MAX);
            match after {
                None => sqlx::query("SELECT id FROM devices ORDER BY id LIMIT $1").bind(limit),
                Some(after) => {
                    sqlx::query("SELECT id FROM devices WHERE id > $1 ORDER BY id LIMIT $2")
                        .bind(after.0.as_slice())
                        .bind(limit)
                }
            }
        }
    };
    let rows = query.fetch_all(&mut *conn).await.map_err(db)?;
    rows.iter().map(|r| Ok(DeviceId(array(col(r, 0)?)?))).collect()
}

/// The devices of `page` with their latest attestation, appraisal outcome, reports and
/// contact: one query per table over the page's range of ids (a query per device and
/// table made the listing of 100 000 devices take minutes).
pub(super) async fn device_summaries(
    conn: &mut Conn,
    page: DevicePage,
) -> Result<Vec<DeviceSummary>, StoreError> {
    use std::collections::HashMap;
    let ids = page_ids(conn, page).await?;
    let (Some(first), Some(last)) = (ids.first(), ids.last()) else {
        return Ok(Vec::new());
    };
    let (first, last) = (first.0.as_slice(), last.0.as_slice());
    let key = |row: &DbRow| -> Result<DeviceId, StoreError> { Ok(DeviceId(array(col(row, 0)?)?)) };
    let mut attestations = HashMap::new();
    let sql = "SELECT a.device, a.at, a.ear FROM attestations a JOIN \
               (SELECT MAX(id) AS last FROM attestations WHERE device BETWEEN $1 AND $2 \
                GROUP BY device) l ON a.id = l.last";
    let rows = sqlx::query(sql).bind(first).bind(last).fetch_all(&mut *conn);
    for row in rows.await.map_err(db)? {
        let device = key(&row)?;
        let record = AttestationRecord {
            device,
            at: uint(col(&row, 1)?)?,
            ear: col(&row, 2)?,
        };
        attestations.insert(device, record);
    }
    let mut outcomes = HashMap::new();
    let sql = format!(
        "SELECT {OUTCOME_COLUMNS} FROM attestation_outcomes o JOIN \
         (SELECT MAX(id) AS last FROM attestation_outcomes WHERE device BETWEEN $1 AND $2 \
          GROUP BY device) l ON o.id = l.last"
    );
    let rows = sqlx::query(&sql).bind(first).bind(last).fetch_all(&mut *conn);
    for row in rows.await.map_err(db)? {
        let outcome = outcome_from_row(&row)?;
        outcomes.insert(outcome.device, outcome);
    }
    let mut reports: HashMap<DeviceId, Vec<ReportRecord>> = HashMap::new();
    let sql = "SELECT device, at, manifest_digest, success, report FROM \
               (SELECT device, at, manifest_digest, success, report, id, \
                ROW_NUMBER() OVER (PARTITION BY device ORDER BY id DESC) AS n FROM suit_reports \
                WHERE device BETWEEN $1 AND $2) r \
               WHERE n <= $3 ORDER BY device, id DESC";
    let rows = sqlx::query(sql)
        .bind(first)
        .bind(last)
        .bind(int(LAST_REPORTS)?)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    for row in rows {
        let device = key(&row)?;
        reports.entry(device).or_default().push(ReportRecord {
            device,
            at: uint(col(&row, 1)?)?,
            manifest_digest: array(col(&row, 2)?)?,
            success: col(&row, 3)?,
            report: col(&row, 4)?,
        });
    }
    let mut contacts = HashMap::new();
    let sql = "SELECT device, MAX(at) FROM audit_log WHERE device BETWEEN $1 AND $2 \
               GROUP BY device";
    let rows = sqlx::query(sql).bind(first).bind(last).fetch_all(&mut *conn);
    for row in rows.await.map_err(db)? {
        let at: i64 = col(&row, 1)?;
        contacts.insert(key(&row)?, uint(at)?);
    }
    let mut records = Vec::with_capacity(ids.len());
    for id in &ids {
        records.extend(device(conn, id).await?);
    }
    Ok(records
        .into_iter()
        .map(|device| DeviceSummary {
            last_attestation: attestations.remove(&device.id),
            last_outcome: outcomes.remove(&device.id),
            last_reports: reports.remove(&device.id).unwrap_or_default(),
            last_contact: contacts.remove(&device.id),
            device,
        })
        .collect())
}

/// The columns [`outcome_from_row`] reads.
const OUTCOME_COLUMNS: &str = "o.device, o.at, o.verdict, o.detail";

fn outcome_from_row(row: &DbRow) -> Result<AttestationOutcome, StoreError> {
    let verdict: String = col(row, 2)?;
    Ok(AttestationOutcome {
        device: DeviceId(array(col(row, 0)?)?),
        at: uint(col(row, 1)?)?,
        verdict: AttestationVerdict::from_name(&verdict)
            .ok_or_else(|| StoreError::Backend(format!("unknown attestation verdict {verdict:?}")))?,
        detail: col(row, 3)?,
    })
}

/// The latest `limit` outcomes of a known device, newest first.
pub(super) async fn attestation_outcomes(
    conn: &mut Conn,
    id: &DeviceId,
    limit: u64,
) -> Result<Vec<AttestationOutcome>, AdminError> {
    if device(conn, id).await?.is_none() {
        return Err(AdminError::NotFound("device"));
    }
    let sql = format!(
        "SELECT {OUTCOME_COLUMNS} FROM attestation_outcomes o WHERE o.device = $1 \
         ORDER BY o.id DESC LIMIT $2"
    );
    let rows = sqlx::query(&sql)
        .bind(id.0.as_slice())
        .bind(int(limit.min(i64::MAX as u64))?)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    Ok(rows
        .iter()
        .map(outcome_from_row)
        .collect::<Result<_, StoreError>>()?)
}

/// Revokes a known device (a new revision: a decision read before cannot write it back).
pub(super) async fn revoke_device(conn: &mut Conn, id: &DeviceId) -> Result<(), AdminError> {
    let done = sqlx::query("UPDATE devices SET revoked = TRUE, revision = revision + 1 WHERE id = $1")
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
        // A new record starts at revision 1: a first contact decided on the device as
        // absent (revision 0) must not commit over the registration.
        "INSERT INTO devices (id, cose_key, class, revoked, suite, attested_at, \
         attestation_exempt, revision) VALUES ($1, $2, $3, FALSE, NULL, NULL, $4, 1) \
         ON CONFLICT (id) DO UPDATE SET class = COALESCE($3, devices.class), \
         attestation_exempt = COALESCE($5, devices.attestation_exempt), \
         revision = devices.revision + 1",
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
    let done = sqlx::query("UPDATE devices SET class = $2, revision = revision + 1 WHERE id = $1")
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
