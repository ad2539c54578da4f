// SQLite's commits: included by `sql/mod.rs` in the SQLite module only, after `ops.rs`
// (whose `Batch` and `changes_batch` it runs).
//
// sqlx runs every SQLite statement on the connection's own worker thread and the async
// task waits for the answer: two thread switches per hand-off, 120-140 µs of CPU each on
// the project's VM (`SELECT 1`, see docs/tam.md "Performance"), and one WAL fsync per
// commit (~130 µs of kernel CPU with `synchronous = FULL`). The engine's commits are
// therefore run here through rusqlite on the calling thread, and grouped: every commit
// queues itself; whichever caller finds the writer connection free takes every queued
// commit and runs them in one transaction, each inside its own savepoint (a failed
// compare-and-set rolls back that commit alone), so that one fsync covers them all.
// The other callers wait for their answer without holding a thread. Loads and the admin
// side stay on sqlx.

use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

use rusqlite::Connection;

use super::SQLITE_BUSY_TIMEOUT;
use tokio::sync::oneshot;

/// The engine's commits on one SQLite file, grouped (see the top of this file).
pub(super) struct Committer {
    /// Commits waiting for a caller to take the writer.
    queue: Mutex<Vec<Queued>>,
    /// The one connection that writes the engine's commits.
    writer: Mutex<Connection>,
}

impl core::fmt::Debug for Committer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Committer")
    }
}

/// A queued commit and where its answer goes.
struct Queued {
    changes: Changes,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// How many prepared statements the writer keeps (a commit has up to about a dozen
/// shapes of statement, the `IN (...)` of retired tokens varying with their number).
const STATEMENT_CACHE: usize = 64;

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Locks `m`, keeping the data of a poisoned lock: the queue is a list changed by one
/// push or one take, and a writer connection left inside a transaction is rolled back
/// before its next use ([`run_group`]).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Committer {
    /// Opens the writer connection on the SQLite file `path` (already created, in WAL
    /// mode, by sqlx): foreign keys on, `synchronous = FULL` (a commit lost on power
    /// loss could reopen a consumed token), the same busy timeout as the pool.
    pub(super) fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(backend)?;
        conn.busy_timeout(SQLITE_BUSY_TIMEOUT).map_err(backend)?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL")
            .map_err(backend)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Self {
            queue: Mutex::new(Vec::new()),
            writer: Mutex::new(conn),
        })
    }

    /// Commits `changes` in one transaction (possibly shared with other commits, each in
    /// a savepoint of its own): all of it or, on [`StoreError::Conflict`] or any
    /// failure, none of it.
    pub(super) async fn commit(&self, changes: &Changes) -> Result<(), StoreError> {
        let (done, answer) = oneshot::channel();
        lock(&self.queue).push(Queued {
            changes: changes.clone(),
            done,
        });
        // Let the other tasks ready to run go first: those about to commit queue theirs,
        // and one transaction (one fsync) takes them all.
        tokio::task::yield_now().await;
        self.lead();
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Backend("the commit was abandoned".into())))
    }

    /// Runs the queued commits for as long as this caller can take the writer. Whoever
    /// holds it looks at the queue again after letting it go, so a commit queued while
    /// the writer was busy is never left behind: its caller found the writer taken, so
    /// the holder's next look comes after the commit was queued.
    fn lead(&self) {
        loop {
            let writer = match self.writer.try_lock() {
                Ok(w) => w,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            let group = core::mem::take(&mut *lock(&self.queue));
            if group.is_empty() {
                return;
            }
            let results = run_group(&writer, &group);
            drop(writer);
            for (queued, result) in group.into_iter().zip(results) {
                // A caller that stopped waiting has no use for the answer.
                let _ = queued.done.send(result);
            }
        }
    }
}

/// Runs `group` in one transaction, one savepoint per commit; one result per commit.
/// If the transaction cannot be opened or committed, nothing of it stays and every
/// commit gets the error.
fn run_group(conn: &Connection, group: &[Queued]) -> Vec<Result<(), StoreError>> {
    let all = |e: rusqlite::Error| {
        let why = e.to_string();
        group
            .iter()
            .map(|_| Err(StoreError::Backend(why.clone())))
            .collect()
    };
    if !conn.is_autocommit() {
        // Left inside a transaction by a caller that panicked: what it did goes.
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            return all(e);
        }
    }
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return all(e);
    }
    let mut results = Vec::with_capacity(group.len());
    for queued in group {
        match in_savepoint(conn, &queued.changes) {
            Ok(result) => results.push(result),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                return all(e);
            }
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => results,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            all(e)
        }
    }
}

/// Applies one commit's statements inside a savepoint, rolled back to if any fails or
/// a compare-and-set did not change exactly one row. The outer error is one the
/// savepoint itself could not survive: the whole transaction must go.
fn in_savepoint(
    conn: &Connection,
    changes: &Changes,
) -> Result<Result<(), StoreError>, rusqlite::Error> {
    conn.execute_batch("SAVEPOINT change")?;
    let applied = changes_batch(changes).and_then(|batch| run_direct(conn, &batch));
    match applied {
        Ok(()) => conn.execute_batch("RELEASE change")?,
        Err(_) => conn.execute_batch("ROLLBACK TO change; RELEASE change")?,
    }
    Ok(applied)
}

/// Runs a commit's statements in order; [`StoreError::Conflict`] as soon as one of its
/// [`Batch::guards`] changed other than exactly one row.
fn run_direct(conn: &Connection, batch: &Batch<'_>) -> Result<(), StoreError> {
    for (i, (sql, values)) in batch.statements.iter().enumerate() {
        let mut statement = conn.prepare_cached(sql).map_err(backend)?;
        if statement.parameter_count() != values.len() {
            return Err(StoreError::Backend(format!(
                "{} values for a statement of {} placeholders",
                values.len(),
                statement.parameter_count()
            )));
        }
        for (n, value) in values.iter().enumerate() {
            let name = format!("${}", n + 1);
            let index = statement
                .parameter_index(&name)
                .map_err(backend)?
                .ok_or_else(|| StoreError::Backend(format!("no placeholder {name}")))?;
            let bound = match value {
                Value::Blob(b) => statement.raw_bind_parameter(index, b.as_deref()),
                Value::Int(v) => statement.raw_bind_parameter(index, v),
                Value::Bool(v) => statement.raw_bind_parameter(index, v),
                Value::Text(t) => statement.raw_bind_parameter(index, t),
            };
            bound.map_err(backend)?;
        }
        let changed = statement.raw_execute().map_err(backend)?;
        if batch.guards.contains(&i) && changed != 1 {
            return Err(StoreError::Conflict);
        }
    }
    Ok(())
}
