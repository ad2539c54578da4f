// SQLite's loads and commits for the engine: included by `sql/mod.rs` in the SQLite
// module only, after `ops.rs` (whose statements, record parsers and `changes_batch` it
// runs).
//
// sqlx runs every SQLite statement on the connection's own worker thread and the async
// task waits for the answer: two thread switches per hand-off, 120-140 µs of CPU each on
// the project's VM (`SELECT 1`, see docs/tam.md "Performance"), and one WAL fsync per
// commit (~130 µs of kernel CPU with `synchronous = FULL`). The engine's loads therefore
// run here through rusqlite on the calling thread (a load takes a reader connection for
// the time of its statements), and its commits are grouped on one writer thread: every
// commit queues itself and waits for its answer without holding a thread; the writer
// takes every commit queued while it ran the previous group (or, woken from sleep, every
// commit the ready tasks queued before the waking one ran again) and runs them in one
// transaction, so that one fsync covers them all (a commit that conflicts is found before
// it writes and skipped; one that fails part way sends the group round again with each
// commit in a savepoint: `run_group`). The thread is woken only when it
// sleeps, and no runtime worker ever waits for the disk (an earlier version led the
// group from whichever task found the writer free, inside `block_in_place`: each group
// then moved the runtime's worker to another thread). The message log's records go to
// the same writer, each in a savepoint of a group beside the commits. The admin side and
// the migrations stay on sqlx (one SQLite library serves both: the same libsqlite3-sys);
// their write transactions and the writer's groups take turns through one lock
// (`writing`), since two SQLite writers in one process would otherwise meet in SQLite's
// busy handler, which sleeps for milliseconds at a time.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use rusqlite::Connection;

use super::SQLITE_BUSY_TIMEOUT;
use tokio::sync::oneshot;

/// The engine's loads and commits on one SQLite file (see the top of this file).
pub(super) struct Direct {
    path: std::path::PathBuf,
    /// Idle reader connections (at most [`READERS_KEPT`]).
    readers: Mutex<Vec<Connection>>,
    /// Release envelopes read before.
    envelopes: Mutex<Envelopes>,
    /// The writes waiting for the writer thread, and its state.
    queue: Arc<Queue>,
    /// Held by whoever writes: the writer thread for a group, or a write transaction
    /// through sqlx.
    gate: Arc<tokio::sync::Mutex<()>>,
    /// The next commit's ticket.
    tickets: std::sync::atomic::AtomicU64,
    /// The writer thread, joined on drop.
    writer: Option<std::thread::JoinHandle<()>>,
}

/// What the committers and the writer thread share.
#[derive(Default)]
struct Queue {
    state: Mutex<Waiting>,
    /// Signalled when a commit is queued while the writer sleeps, and on shutdown.
    wake: Condvar,
}

#[derive(Default)]
struct Waiting {
    queued: Vec<Queued>,
    /// The writer thread waits on [`Queue::wake`] (a committer must wake it).
    asleep: bool,
    /// A committer is about to wake the writer (after letting the other ready tasks
    /// queue their commits): the writer waits for it.
    waking: bool,
    /// The store is going away: the writer runs what is queued and ends.
    stop: bool,
}

/// Takes a commit back out of the queue if its caller stops waiting before a group took
/// it, so that a commit whose future was dropped either runs whole (a group took it: it may
/// still be running, and lands after the drop) or never runs.
struct Unqueue<'a> {
    queue: &'a Queue,
    ticket: u64,
}

impl Drop for Unqueue<'_> {
    fn drop(&mut self) {
        lock(&self.queue.state).queued.retain(|q| q.ticket != self.ticket);
    }
}

impl core::fmt::Debug for Direct {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Direct").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Idle reader connections kept for the next loads (more are opened while that many are
/// busy, and closed after).
const READERS_KEPT: usize = 8;

/// A queued write and where its answer goes.
struct Queued {
    /// Which caller queued it ([`Direct::write`]'s ticket).
    ticket: u64,
    work: Work,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// What the writer thread writes, each in a savepoint of its group.
enum Work {
    /// A commit of the engine.
    Commit(Box<Changes>),
    #[cfg(feature = "server")]
    /// One exchange for the message log (`SqlMessageLog`), trimming it to `keep`; `views`
    /// holds each message's JSON text, made by the caller (off the writer thread).
    Record {
        decoded: Decoded,
        views: Vec<String>,
        at: u64,
        keep: usize,
    },
}

/// How many prepared statements a connection keeps (a commit has up to about a dozen
/// shapes of statement, the `IN (...)` of retired tokens varying with their number).
const STATEMENT_CACHE: usize = 64;

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Locks `m`, keeping the data of a poisoned lock: the queue is a list changed by one
/// push, one take or one removal, and the reader list by one push or pop.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection to the SQLite file `path` (already created, in WAL mode, by sqlx):
/// foreign keys on, `synchronous = FULL` (a commit lost on power loss could reopen a
/// consumed token), the same busy timeout as the pool.
fn connect(path: &std::path::Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(backend)?;
    conn.busy_timeout(SQLITE_BUSY_TIMEOUT).map_err(backend)?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL")
        .map_err(backend)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

impl Direct {
    /// Opens the writer connection on the SQLite file `path` and starts its thread;
    /// readers open on demand.
    pub(super) fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        let conn = connect(path)?;
        let queue = Arc::new(Queue::default());
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        let writer = std::thread::Builder::new()
            .name("tam-sqlite-writer".into())
            .spawn({
                let (queue, gate) = (queue.clone(), gate.clone());
                move || write_groups(&conn, &queue, &gate)
            })
            .map_err(|e| StoreError::Backend(format!("writer thread: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            readers: Mutex::new(Vec::new()),
            envelopes: Mutex::default(),
            queue,
            gate,
            tickets: std::sync::atomic::AtomicU64::new(0),
            writer: Some(writer),
        })
    }

    /// Waits for the turn to write (held until the guard goes).
    pub(super) async fn writing(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.gate.lock().await
    }

    /// Answers one load request, on the calling thread: a device view in one read
    /// transaction (one snapshot of the database for all its statements); the other
    /// requests are one statement each, atomic without one.
    pub(super) fn load(&self, request: &LoadRequest) -> Result<Loaded, StoreError> {
        let conn = match lock(&self.readers).pop() {
            Some(conn) => conn,
            None => connect(&self.path)?,
        };
        let several = matches!(request, LoadRequest::Device { .. });
        let loaded = if several {
            run(&conn, "BEGIN")
                .map_err(backend)
                .and_then(|()| load_on(&conn, &self.envelopes, request))
        } else {
            load_on(&conn, &self.envelopes, request)
        };
        let ended = match (several, loaded.is_ok()) {
            (false, _) => Ok(()),
            (true, true) => run(&conn, "COMMIT"),
            (true, false) => run(&conn, "ROLLBACK"),
        };
        if ended.is_ok() && conn.is_autocommit() {
            let mut readers = lock(&self.readers);
            if readers.len() < READERS_KEPT {
                readers.push(conn);
            }
        }
        loaded
    }

    /// Commits `changes` in one transaction (possibly shared with other commits, each in
    /// a savepoint of its own): all of it or, on [`StoreError::Conflict`] or any
    /// failure, none of it.
    pub(super) async fn commit(&self, changes: &Changes) -> Result<(), StoreError> {
        self.write(Work::Commit(Box::new(changes.clone()))).await
    }

    #[cfg(feature = "server")]
    /// Records one exchange in the message log and trims it to its newest `keep`
    /// messages, in a group like a commit (it shares the group's fsync, and takes no turn
    /// of its own at SQLite's write lock).
    pub(super) async fn record(
        &self,
        mut decoded: Decoded,
        at: u64,
        keep: usize,
    ) -> Result<(), StoreError> {
        let views = decoded
            .messages
            .iter()
            .map(message_json)
            .collect::<Result<_, _>>()?;
        // The writer stores the text: the views' trees are freed here, not on the writer
        // thread (an eighth of its time in the SQLite+log bench run).
        for m in &mut decoded.messages {
            m.json = serde_json::Value::Null;
        }
        self.write(Work::Record {
            decoded,
            views,
            at,
            keep,
        })
        .await
    }

    /// Queues `work` for the writer thread and waits for its answer.
    async fn write(&self, work: Work) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        let ticket = self
            .tickets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let wake = {
            let mut waiting = lock(&self.queue.state);
            waiting.queued.push(Queued { ticket, work, done });
            let wake = waiting.asleep && !waiting.waking;
            waiting.waking |= wake;
            wake
        };
        let _unqueue = Unqueue {
            queue: &self.queue,
            ticket,
        };
        if wake {
            // Let the other tasks ready to run go first: those about to commit queue
            // theirs, and one group (one fsync) takes them all. The writer is woken when
            // this ends, even if this future is dropped meanwhile.
            let _wake = WakeWriter(&self.queue);
            tokio::task::yield_now().await;
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Backend("the commit was abandoned".into())))
    }
}

/// Wakes the writer thread when dropped (see [`Waiting::waking`]).
struct WakeWriter<'a>(&'a Queue);

impl Drop for WakeWriter<'_> {
    fn drop(&mut self) {
        {
            let mut waiting = lock(&self.0.state);
            waiting.waking = false;
            waiting.asleep = false;
        }
        self.0.wake.notify_one();
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        lock(&self.queue.state).stop = true;
        self.queue.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            // A writer thread that panicked has nothing left to finish.
            let _ = writer.join();
        }
    }
}

/// The writer thread: runs every commit queued since its last group as the next group,
/// until the store goes. A group that panics gets an error for each of its commits (the
/// next group rolls back what it left open), and the thread goes on.
fn write_groups(conn: &Connection, queue: &Queue, gate: &tokio::sync::Mutex<()>) {
    loop {
        let group = {
            let mut waiting = lock(&queue.state);
            while (waiting.queued.is_empty() || waiting.waking) && !waiting.stop {
                waiting.asleep = true;
                waiting = queue
                    .wake
                    .wait(waiting)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if waiting.queued.is_empty() {
                return;
            }
            core::mem::take(&mut waiting.queued)
        };
        let results = {
            let _writing = gate.blocking_lock();
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_group(conn, &group)))
                .unwrap_or_else(|_| failed(&group, "the commit group failed"))
        };
        for (queued, result) in group.into_iter().zip(results) {
            // A caller that stopped waiting has no use for the answer.
            let _ = queued.done.send(result);
        }
    }
}

/// Runs `group` in one transaction; one result per commit. Each commit's conflicts are
/// found before it writes anything (the token's compare-and-set is its first statement,
/// the device revision is read first: this thread is the only writer while the
/// transaction holds SQLite's write lock), so a conflicting commit is skipped and needs no
/// savepoint: savepoints made SQLite copy every page a commit touched into its statement
/// journal, a quarter of this thread's time. Any other failure part way through a commit
/// rolls the whole group back, and the group runs again with each commit in a savepoint
/// of its own ([`in_savepoint`]), so the failing commit alone leaves nothing. If the
/// transaction cannot be opened or committed, nothing of it stays and every commit gets
/// the error.
fn run_group(conn: &Connection, group: &[Queued]) -> Vec<Result<(), StoreError>> {
    if !conn.is_autocommit() {
        // Left inside a transaction by a caller that panicked: what it did goes.
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            return failed(group, &e.to_string());
        }
    }
    let fast = |conn: &Connection, work: &Work| Ok(apply_checked(conn, work));
    let isolated = |conn: &Connection, work: &Work| in_savepoint(conn, work).map(Some);
    in_one_transaction(conn, group, fast)
        .or_else(|| in_one_transaction(conn, group, isolated))
        .unwrap_or_else(|| failed(group, "the commit group failed"))
}

/// The same failure for every write of `group`.
fn failed(group: &[Queued], why: &str) -> Vec<Result<(), StoreError>> {
    group
        .iter()
        .map(|_| Err(StoreError::Backend(why.into())))
        .collect()
}

/// Applies every write of `group` with `apply` in one transaction and commits it; `None`
/// (rolled back) when `apply` answers `None` for a write that failed part way. An error
/// the transaction cannot survive rolls it back and every write gets it.
fn in_one_transaction(
    conn: &Connection,
    group: &[Queued],
    apply: impl Fn(&Connection, &Work) -> Result<Option<Result<(), StoreError>>, rusqlite::Error>,
) -> Option<Vec<Result<(), StoreError>>> {
    let all = |e: rusqlite::Error| Some(failed(group, &e.to_string()));
    if let Err(e) = run(conn, "BEGIN IMMEDIATE") {
        return all(e);
    }
    let mut results = Vec::with_capacity(group.len());
    for queued in group {
        match apply(conn, &queued.work) {
            Ok(Some(result)) => results.push(result),
            Ok(None) => {
                return match conn.execute_batch("ROLLBACK") {
                    Ok(()) => None,
                    Err(e) => all(e),
                };
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return all(e);
            }
        }
    }
    match run(conn, "COMMIT") {
        Ok(()) => Some(results),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            all(e)
        }
    }
}

/// Applies one write without a savepoint: `Some` when it landed whole or wrote nothing
/// (a conflict, or an error found before its first statement), `None` when it failed
/// after writing part of itself, which only rolling back the transaction undoes.
fn apply_checked(conn: &Connection, work: &Work) -> Option<Result<(), StoreError>> {
    match work {
        Work::Commit(changes) => {
            let batch = match changes_batch(changes) {
                Ok(batch) => batch,
                Err(e) => return Some(Err(e)),
            };
            match device_revision_holds(conn, changes) {
                Ok(true) => {}
                Ok(false) => return Some(Err(StoreError::Conflict)),
                Err(e) => return Some(Err(e)),
            }
            match run_direct(conn, &batch) {
                Ok(()) => Some(Ok(())),
                // Its first statement's compare-and-set: nothing was written.
                Err(Ran {
                    at: 0,
                    error: StoreError::Conflict,
                }) => Some(Err(StoreError::Conflict)),
                Err(_) => None,
            }
        }
        // No compare-and-set: any failure is after a write.
        #[cfg(feature = "server")]
        Work::Record { .. } => work.apply(conn).ok().map(Ok),
    }
}

impl Work {
    /// Runs this write's statements in the caller's transaction.
    fn apply(&self, conn: &Connection) -> Result<(), StoreError> {
        match self {
            Self::Commit(changes) => {
                changes_batch(changes).and_then(|batch| Ok(run_direct(conn, &batch)?))
            }
            #[cfg(feature = "server")]
            Self::Record {
                decoded,
                views,
                at,
                keep,
            } => record_direct(conn, decoded, views, *at, *keep),
        }
    }
}

/// The revision of a device record, for [`device_revision_holds`].
const DEVICE_REVISION_SQL: &str = "SELECT revision FROM devices WHERE id = $1";

/// Whether the device record is at the revision `changes` read (absent: 0), read before
/// the commit writes, so that a stale decision is found before any of its statements.
fn device_revision_holds(conn: &Connection, changes: &Changes) -> Result<bool, StoreError> {
    let (Some(device), Some(read)) = (&changes.device, changes.device_revision) else {
        return Ok(true);
    };
    let found = rows(conn, DEVICE_REVISION_SQL, &[Value::blob(&device.id.0)])?;
    let revision: i64 = found.first().map(|r| col(r, 0)).transpose()?.unwrap_or(0);
    Ok(revision == int(read)?)
}

/// Applies one write inside a savepoint, rolled back to if any statement fails or a
/// compare-and-set did not change exactly one row. The outer error is one the savepoint
/// itself could not survive: the whole transaction must go.
fn in_savepoint(
    conn: &Connection,
    work: &Work,
) -> Result<Result<(), StoreError>, rusqlite::Error> {
    run(conn, "SAVEPOINT change")?;
    let applied = work.apply(conn);
    match applied {
        Ok(()) => run(conn, "RELEASE change")?,
        Err(_) => {
            run(conn, "ROLLBACK TO change")?;
            run(conn, "RELEASE change")?;
        }
    }
    Ok(applied)
}

/// Runs one statement without values or rows (`BEGIN`, `SAVEPOINT`, ...), prepared once
/// per connection: parsing it again for every load and commit was measurable.
fn run(conn: &Connection, sql: &str) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Binds `values` to the statement's `$1..$n`, every one of them.
fn bind(statement: &mut rusqlite::Statement<'_>, values: &[Value<'_>]) -> Result<(), StoreError> {
    if statement.parameter_count() != values.len() {
        return Err(StoreError::Backend(format!(
            "{} values for a statement of {} placeholders",
            values.len(),
            statement.parameter_count()
        )));
    }
    for (n, value) in values.iter().enumerate() {
        let index = placeholder_index(statement, n + 1)?;
        let bound = match value {
            Value::Blob(b) => statement.raw_bind_parameter(index, b.as_deref()),
            Value::Int(v) => statement.raw_bind_parameter(index, v),
            Value::Bool(v) => statement.raw_bind_parameter(index, v),
            Value::Text(t) => statement.raw_bind_parameter(index, t),
        };
        bound.map_err(backend)?;
    }
    Ok(())
}

/// Where `$k` is bound in `statement`: SQLite numbers named placeholders in the order
/// they first appear, so in a statement that names them in order (every one here) `$k` is
/// the `k`-th, which is checked by its name; otherwise it is looked up by name. Formatting
/// `"$k"` and looking it up for every value bound was a twentieth of the writer thread.
fn placeholder_index(statement: &rusqlite::Statement<'_>, k: usize) -> Result<usize, StoreError> {
    // Exactly `$` and `k`'s decimal digits: `$01` or `$+1` is another name.
    let is_k = |name: &str| {
        name.strip_prefix('$').is_some_and(|n| {
            !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()) && n.parse() == Ok(k)
        })
    };
    if statement.parameter_name(k).is_some_and(is_k) {
        return Ok(k);
    }
    let name = format!("${k}");
    statement
        .parameter_index(&name)
        .map_err(backend)?
        .ok_or_else(|| StoreError::Backend(format!("no placeholder {name}")))
}

/// A result row read out of rusqlite, for the record parsers of `ops.rs`.
struct OwnedRow(Vec<rusqlite::types::Value>);

impl Cols for OwnedRow {
    fn column<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        let value = self
            .0
            .get(i)
            .ok_or_else(|| StoreError::Backend(format!("no column {i}")))?;
        T::column_result(value.into())
            .map_err(|e| StoreError::Backend(format!("column {i}: {e}")))
    }
}

/// The rows of one query.
fn rows(conn: &Connection, sql: &str, values: &[Value<'_>]) -> Result<Vec<OwnedRow>, StoreError> {
    let mut statement = conn.prepare_cached(sql).map_err(backend)?;
    bind(&mut statement, values)?;
    let width = statement.column_count();
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        let columns = (0..width)
            .map(|i| row.get::<_, rusqlite::types::Value>(i))
            .collect::<Result<_, _>>()
            .map_err(backend)?;
        out.push(OwnedRow(columns));
    }
    Ok(out)
}

/// [`Direct::load`] inside its read transaction.
fn load_on(
    conn: &Connection,
    envelopes: &Mutex<Envelopes>,
    request: &LoadRequest,
) -> Result<Loaded, StoreError> {
    Ok(match request {
        LoadRequest::Session(token) => {
            let found = rows(conn, &session_sql(), &[Value::blob(token)])?;
            Loaded::Session(found.first().map(session_from_row).transpose()?.map(Box::new))
        }
        LoadRequest::AnonymousSessions { keep } => {
            let keep = i64::try_from(*keep).unwrap_or(i64::MAX);
            let found = rows(conn, SQLITE_ANONYMOUS_SQL, &[Value::Int(Some(keep))])?;
            Loaded::Anonymous(found.iter().map(|r| col(r, 0)).collect::<Result<_, _>>()?)
        }
        LoadRequest::Device { id, class } => {
            Loaded::Device(Box::new(device_view(conn, envelopes, id, class.as_deref())?))
        }
    })
}

/// The anonymous sessions to retire on SQLite: the oldest outstanding sessions of devices not known yet
/// beyond the newest `$1`, oldest first, counted from the triggers' `anonymous_sessions`
/// (migration 0012) so that the walk reads only the sessions it returns; OFFSET walked
/// past every session it kept, on every connect. `MAX(0, …)`: a negative LIMIT is none.
const SQLITE_ANONYMOUS_SQL: &str = "SELECT token FROM sessions \
     WHERE device IS NULL AND consumed = FALSE \
     ORDER BY issued_at, issue_order, token \
     LIMIT MAX(0, (SELECT n FROM anonymous_sessions) - $1)";

/// The view `MemoryState::device_view` gives, walked in the same order: the first
/// statements of [`view_head`], then the releases of a [`ReleaseWalk`].
fn device_view(
    conn: &Connection,
    envelopes: &Mutex<Envelopes>,
    id: &DeviceId,
    default_class: Option<&str>,
) -> Result<DeviceView, StoreError> {
    let head = view_queries(id, default_class)
        .iter()
        .map(|(sql, values)| rows(conn, sql, values))
        .collect::<Result<Vec<_>, _>>()?;
    let mut view = view_head(id, &head)?;
    let mut walk = ReleaseWalk::new(&view.policy);
    while let Some(wanted) = walk.wanted() {
        let found = rows(conn, &latest_sql(wanted.len()), &latest_values(&wanted))?;
        walk.fetched(wanted, found.iter().map(walked_from_row).collect::<Result<_, _>>()?);
    }
    let mut found = Vec::with_capacity(walk.releases.len());
    let mut missing = Vec::new();
    {
        let held = lock(envelopes);
        for (row, _) in &walk.releases {
            match held.by_row.get(row) {
                Some(envelope) => found.push((*row, envelope.clone())),
                None => missing.push(*row),
            }
        }
    }
    if !missing.is_empty() {
        for r in rows(conn, &envelopes_sql(missing.len()), &envelope_values(&missing))? {
            let (row, envelope): (i64, Vec<u8>) = (col(&r, 0)?, col(&r, 1)?);
            let envelope = Arc::<[u8]>::from(envelope);
            lock(envelopes).keep(row, &envelope);
            found.push((row, envelope));
        }
    }
    view.releases = fill_envelopes(walk.releases, found)?;
    Ok(view)
}

/// Envelopes of release rows read before, by row id (a release row is never changed or
/// removed, and SQLite's `AUTOINCREMENT` never gives a row id twice): a device view
/// carries the envelopes of the releases it names, and reading them again from SQLite's
/// overflow pages on every QueryResponse and Success cost a tenth of a session's CPU.
#[derive(Default)]
struct Envelopes {
    by_row: std::collections::HashMap<i64, Arc<[u8]>>,
    bytes: usize,
}

/// At most this many bytes of envelopes are held (all are let go when one more would not
/// fit; one larger than this is not held).
const ENVELOPES_HELD: usize = 64 << 20;

impl Envelopes {
    fn keep(&mut self, row: i64, envelope: &Arc<[u8]>) {
        if envelope.len() > ENVELOPES_HELD || self.by_row.contains_key(&row) {
            return;
        }
        if self.bytes + envelope.len() > ENVELOPES_HELD {
            self.by_row.clear();
            self.bytes = 0;
        }
        self.bytes += envelope.len();
        self.by_row.insert(row, Arc::clone(envelope));
    }
}

/// Runs a commit's statements in order; [`StoreError::Conflict`] as soon as one of its
/// [`Batch::guards`] changed other than exactly one row.
fn run_direct(conn: &Connection, batch: &Batch<'_>) -> Result<(), Ran> {
    for (at, (sql, values)) in batch.statements.iter().enumerate() {
        let ran = |error| Ran { at, error };
        let mut statement = conn.prepare_cached(sql).map_err(|e| ran(backend(e)))?;
        bind(&mut statement, values).map_err(ran)?;
        let changed = statement.raw_execute().map_err(|e| ran(backend(e)))?;
        if batch.guards.contains(&at) && changed != 1 {
            return Err(ran(StoreError::Conflict));
        }
    }
    Ok(())
}

/// Why a [`Batch`] stopped, and at which of its statements (those before it ran).
struct Ran {
    at: usize,
    error: StoreError,
}

impl From<Ran> for StoreError {
    fn from(ran: Ran) -> Self {
        ran.error
    }
}

#[cfg(feature = "server")]
/// The message log's record of one exchange (`message_ops.rs`'s statements, the same
/// steps as PostgreSQL's `record_messages`), inside the writer's savepoint.
fn record_direct(
    conn: &Connection,
    decoded: &Decoded,
    views: &[String],
    at: u64,
    keep: usize,
) -> Result<(), StoreError> {
    let known: Option<String> = match &decoded.request_token {
        Some(token) => rows(conn, SESSION_OF_TOKEN_SQL, &[Value::Text(Some(token))])?
            .first()
            .map(|r| col(r, 0))
            .transpose()?,
        None => None,
    };
    let session = decoded.session(known, at);
    let mut last = 0_i64;
    for (m, json) in decoded.messages.iter().zip(views) {
        let inserted = rows(conn, INSERT_MESSAGE_SQL, &message_values(&session, m, json)?)?;
        last = inserted
            .first()
            .map(|r| col(r, 0))
            .transpose()?
            .ok_or_else(|| StoreError::Backend("no seq for a message row".into()))?;
    }
    Ok(run_direct(conn, &session_rows(&session, decoded, last, keep)?)?)
}

#[cfg(test)]
mod bind_tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::{Connection, Value, col, rows};

    /// `$k` gets the `k`-th value whether the statement names its placeholders in order
    /// (found by position) or not (found by name), also when one repeats.
    #[test]
    fn each_placeholder_gets_its_own_value_in_any_order() {
        let conn = Connection::open_in_memory().unwrap();
        let values = [Value::Int(Some(10)), Value::Int(Some(20)), Value::Int(Some(30))];
        for (sql, expected) in [
            ("SELECT $1, $2, $3", [10, 20, 30]),
            ("SELECT $3, $1, $2", [30, 10, 20]),
            ("SELECT $2, $2 + $1 - $1, $3", [20, 20, 30]),
            ("SELECT $1, $3, $2", [10, 30, 20]),
        ] {
            let found = rows(&conn, sql, &values).unwrap();
            let got: Vec<i64> = (0..3).map(|i| col(&found[0], i).unwrap()).collect();
            assert_eq!(got, expected, "{sql}");
        }
        assert!(rows(&conn, "SELECT $1, $2", &values).is_err(), "a value too many");
        assert!(rows(&conn, "SELECT $1, $4, $3", &values).is_err(), "no $2");
        // `$01` and `$+1` are names of their own, not `$1`.
        for other in ["SELECT $01, $2", "SELECT $+1, $2"] {
            assert!(rows(&conn, other, &values[..2]).is_err(), "{other}");
        }
    }
}
