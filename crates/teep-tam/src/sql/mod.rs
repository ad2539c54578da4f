//! [`SqlStore`]: the [`Store`] on SQLite (a file in the data directory, the default) or
//! PostgreSQL (`postgres://`, for several replicas), through sqlx.
//!
//! Every table maps one field of [`MemoryState`] (see `migrations/<dialect>/`), so a
//! replica keeps nothing in memory between messages. The queries are runtime-checked
//! (no database at build time) and written once for both dialects (`ops.rs`, compiled
//! per dialect). A commit is one transaction that starts with the compare-and-set
//! `UPDATE sessions SET consumed = TRUE WHERE token = $1 AND consumed = FALSE`: unless
//! exactly one row changed, the transaction is rolled back and the commit fails with
//! [`StoreError::Conflict`]. On PostgreSQL (READ COMMITTED) a second transaction on the
//! same token waits on the row lock and then finds it consumed; on SQLite the
//! transaction is `BEGIN IMMEDIATE`, so writers are serialised from their first statement.

mod codec;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use teep_proto::ComponentId;

#[cfg(feature = "server")]
use crate::messages::{Exchange, MessageLog, SessionRecord as LogSession};
use crate::store::{
    AdminFuture, AdminStore, AttestationOutcome, AttestationRecord, AuditEntry, Changes, Device,
    DeviceId, DevicePage, DeviceSummary, LoadRequest, Loaded, MemoryState, Policies, Registration,
    SignerRecord, Store, StoreError, TcPolicy, TcRelease,
};

mod sqlite {
    //! The queries for SQLite.
    type Db = sqlx::Sqlite;
    include!("ops.rs");
    #[cfg(feature = "server")]
    include!("message_ops.rs");
    include!("sqlite_ops.rs");
}

mod postgres {
    //! The queries for PostgreSQL.
    type Db = sqlx::Postgres;
    include!("ops.rs");
    #[cfg(feature = "server")]
    include!("message_ops.rs");
    include!("load_ops.rs");

    /// Applies one commit of the engine inside the caller's transaction (SQLite's run
    /// through `sqlite_ops.rs` instead).
    pub(super) async fn apply(conn: &mut Conn, c: &Changes) -> Result<(), StoreError> {
        changes_batch(c)?.run(conn).await?;
        Ok(())
    }
}

/// The SQLite file [`SqlStore::open_data_dir`] keeps in the data directory.
pub const SQLITE_FILE: &str = "tam.sqlite3";

/// How long an SQLite writer waits for another one before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub use crate::store::PolicyScope;

#[derive(Clone, Debug)]
enum Pool {
    /// sqlx's pool for the admin side and the migrations, and the engine's loads, commits
    /// and message-log records (`sqlite_ops.rs`).
    Sqlite(SqlitePool, std::sync::Arc<sqlite::Direct>),
    Postgres(PgPool),
}

/// A [`Store`] in SQLite or PostgreSQL. Cloning shares the connection pool.
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: Pool,
}

/// How PostgreSQL reads begin: one snapshot for the whole transaction.
const READ_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";

/// Runs `$body` with `$conn` bound to a fresh transaction of the store's dialect
/// (`BEGIN IMMEDIATE` on SQLite), committing it if `$body` is `Ok`; on `Err` the
/// transaction is dropped, which rolls it back. `$ops` names the dialect's query module.
///
/// `in_transaction!(read self, ...)` is for bodies that only read: they see the database
/// at one point in time, however many statements they run. PostgreSQL's default READ
/// COMMITTED gives each statement the commits done before it, so a read of several tables
/// could pair one commit's sessions with the rows before it; reads run at REPEATABLE READ
/// (read only) instead. SQLite's WAL reader already holds one snapshot from its first
/// statement, so reads take a deferred `BEGIN` and do not wait for this process's writer.
macro_rules! in_transaction {
    ($store:expr, |$ops:ident, $conn:ident| $body:expr) => {
        in_transaction!(@ $store, true, "BEGIN IMMEDIATE", "BEGIN", |$ops, $conn| $body)
    };
    (read $store:expr, |$ops:ident, $conn:ident| $body:expr) => {
        in_transaction!(@ $store, false, "BEGIN", READ_SNAPSHOT, |$ops, $conn| $body)
    };
    (@ $store:expr, $gate:expr, $sqlite_begin:expr, $pg_begin:expr,
     |$ops:ident, $conn:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite(pool, direct) => {
                use sqlite as $ops;
                // One writer at a time in this process (see `sqlite_ops.rs`).
                let _writing = if $gate { Some(direct.writing().await) } else { None };
                let mut tx = pool.begin_with($sqlite_begin).await.map_err(db)?;
                let $conn: &mut $ops::Conn = &mut tx;
                let value = $body?;
                tx.commit().await.map_err(db)?;
                Ok(value)
            }
            Pool::Postgres(pool) => {
                use postgres as $ops;
                let mut tx = pool.begin_with($pg_begin).await.map_err(db)?;
                let $conn: &mut $ops::Conn = &mut tx;
                let value = $body?;
                tx.commit().await.map_err(db)?;
                Ok(value)
            }
        }
    };
}

impl SqlStore {
    /// Connects by URL (`sqlite://PATH?mode=rwc`, `postgres://...`) and brings the schema
    /// up to date. SQLite runs in WAL mode with foreign keys on and a busy timeout.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url).map_err(db)?;
            Self::sqlite(options).await?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).map_err(db)?;
            let pool = PgPoolOptions::new()
                .connect_with(options)
                .await
                .map_err(db)?;
            Self {
                pool: Pool::Postgres(pool),
            }
        } else {
            return Err(StoreError::Backend(
                "store URL must start with sqlite: or postgres:".into(),
            ));
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens (creating it if need be) the SQLite store [`SQLITE_FILE`] in `dir`.
    pub async fn open_data_dir(dir: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(dir.join(SQLITE_FILE))
            .create_if_missing(true);
        let store = Self::sqlite(options).await?;
        store.migrate().await?;
        Ok(store)
    }

    async fn sqlite(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let options = options
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let file = options.get_filename().to_path_buf();
        if file.as_os_str() == ":memory:" {
            // The engine's commits use a connection of their own, which would see
            // another database.
            return Err(StoreError::Backend(
                "the SQLite store needs a file, not an in-memory database".into(),
            ));
        }
        // No ping before each acquire: an SQLite connection is a file handle in this
        // process, and the ping is one more round trip to its worker thread per load and
        // per commit (a broken connection fails the statement that follows anyway).
        let pool = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(db)?;
        // After the pool, which created the file and put it in WAL mode.
        let direct = sqlite::Direct::open(&file)?;
        Ok(Self {
            pool: Pool::Sqlite(pool, std::sync::Arc::new(direct)),
        })
    }

    /// Applies the migrations not applied yet (those applied are checked, not rerun).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let done = match &self.pool {
            Pool::Sqlite(pool, _) => sqlx::migrate!("migrations/sqlite").run(pool).await,
            Pool::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await,
        };
        done.map_err(|e| StoreError::Backend(format!("migration: {e}")))
    }

    /// Adds a TC release (the admin side: the engine only reads them).
    pub async fn put_release(&self, release: &TcRelease) -> Result<(), StoreError> {
        in_transaction!(self, |ops, conn| ops::put_release(conn, release).await)
    }

    /// Sets a class's or a device's policy.
    pub async fn put_policy(
        &self,
        scope: PolicyScope<'_>,
        policy: &TcPolicy,
    ) -> Result<(), StoreError> {
        in_transaction!(self, |ops, conn| ops::put_policy(conn, scope, policy).await)
    }

    /// Creates or replaces a device record (e.g. to classify or revoke it).
    pub async fn put_device(&self, device: &Device) -> Result<(), StoreError> {
        in_transaction!(self, |ops, conn| ops::put_device(conn, device).await)
    }

    /// Creates or replaces many device records with their attestation results, in one
    /// transaction: for an operator's tool (or `teep loadgen --seed`) that writes a fleet's
    /// state in bulk; keep a call to a few hundred devices (SQLite's bound on arguments).
    pub async fn put_devices(
        &self,
        devices: &[Device],
        attestations: &[AttestationRecord],
    ) -> Result<(), StoreError> {
        in_transaction!(self, |ops, conn| ops::put_devices(
            conn,
            devices,
            attestations
        )
        .await)
    }

    /// The whole state, read in one transaction.
    pub async fn snapshot(&self) -> Result<MemoryState, StoreError> {
        in_transaction!(read self, |ops, conn| ops::snapshot(conn).await)
    }

    /// Closes the pool (waiting for connections in use to be returned).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool, _) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// The [`MessageLog`] in a [`SqlStore`]'s database (tables `session_messages`,
/// `message_sessions`, `message_tokens`): replicas sharing the database share the log, and
/// it outlives a restart. Each record also trims the log to its newest `keep` messages
/// (see `message_ops.rs`), in one transaction (PostgreSQL) or one savepoint of the writer
/// thread's group (SQLite, beside the engine's commits).
#[cfg(feature = "server")]
#[derive(Clone, Debug)]
pub struct SqlMessageLog {
    store: SqlStore,
    keep: usize,
}

#[cfg(feature = "server")]
impl SqlStore {
    /// The message log in this store's database, keeping the newest `keep` messages (at
    /// least one).
    pub fn message_log(&self, keep: usize) -> SqlMessageLog {
        SqlMessageLog {
            store: self.clone(),
            keep: keep.max(1),
        }
    }
}

#[cfg(feature = "server")]
impl MessageLog for SqlMessageLog {
    fn record<'a>(&'a self, exchange: &'a Exchange<'a>) -> AdminFuture<'a, ()> {
        Box::pin(async move {
            let decoded = exchange.decode();
            match &self.store.pool {
                // In the writer's groups, beside the engine's commits: `sqlite_ops.rs`.
                Pool::Sqlite(_, direct) => {
                    Ok(direct.record(decoded, exchange.at, self.keep).await?)
                }
                Pool::Postgres(pool) => {
                    let mut tx = pool.begin().await.map_err(db)?;
                    postgres::record_messages(&mut tx, &decoded, exchange.at, self.keep).await?;
                    Ok(tx.commit().await.map_err(db)?)
                }
            }
        })
    }

    fn device_sessions<'a>(
        &'a self,
        device: &'a DeviceId,
        limit: usize,
    ) -> AdminFuture<'a, Vec<LogSession>> {
        Box::pin(async move {
            let device = hex::encode(device.0);
            in_transaction!(read self.store, |ops, conn| ops::log_sessions(
                conn,
                Some(&device),
                limit
            )
            .await)
        })
    }

    fn latest_sessions(&self, limit: usize) -> AdminFuture<'_, Vec<LogSession>> {
        Box::pin(async move {
            in_transaction!(read self.store, |ops, conn| ops::log_sessions(conn, None, limit)
                .await)
        })
    }
}

impl Store for SqlStore {
    async fn load(&self, request: &LoadRequest) -> Result<Loaded, StoreError> {
        match &self.pool {
            // On the calling thread: `sqlite_ops.rs`.
            Pool::Sqlite(_, direct) => direct.load(request),
            // A device view is read in several statements: in one snapshot.
            Pool::Postgres(pool) if matches!(request, LoadRequest::Device { .. }) => {
                let mut tx = pool.begin_with(READ_SNAPSHOT).await.map_err(db)?;
                let loaded = postgres::load(&mut tx, request).await?;
                tx.commit().await.map_err(db)?;
                Ok(loaded)
            }
            Pool::Postgres(pool) => {
                let mut conn = pool.acquire().await.map_err(db)?;
                postgres::load(&mut conn, request).await
            }
        }
    }

    async fn commit(&self, changes: &Changes) -> Result<(), StoreError> {
        match &self.pool {
            // On the writer thread, grouped with concurrent commits: `sqlite_ops.rs`.
            Pool::Sqlite(_, direct) => direct.commit(changes).await,
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(db)?;
                postgres::apply(&mut tx, changes).await?;
                tx.commit().await.map_err(db)
            }
        }
    }
}

impl AdminStore for SqlStore {
    fn add_release<'a>(&'a self, release: &'a TcRelease) -> AdminFuture<'a, ()> {
        Box::pin(
            async move { in_transaction!(self, |ops, conn| ops::add_release(conn, release).await) },
        )
    }

    fn releases(&self) -> AdminFuture<'_, Vec<TcRelease>> {
        Box::pin(async move { in_transaction!(read self, |ops, conn| ops::releases(conn).await) })
    }

    fn revoked_tcs(&self) -> AdminFuture<'_, Vec<ComponentId>> {
        Box::pin(
            async move { in_transaction!(read self, |ops, conn| ops::revoked_tcs(conn).await) },
        )
    }

    fn revoke_tc<'a>(&'a self, id: &'a ComponentId) -> AdminFuture<'a, ()> {
        Box::pin(async move { in_transaction!(self, |ops, conn| ops::revoke_tc(conn, id).await) })
    }

    fn set_policy<'a>(
        &'a self,
        scope: PolicyScope<'a>,
        policy: &'a TcPolicy,
    ) -> AdminFuture<'a, ()> {
        Box::pin(async move { Ok(self.put_policy(scope, policy).await?) })
    }

    fn policies(&self) -> AdminFuture<'_, Policies> {
        Box::pin(async move { in_transaction!(read self, |ops, conn| ops::policies(conn).await) })
    }

    fn devices(&self, page: DevicePage) -> AdminFuture<'_, Vec<DeviceSummary>> {
        Box::pin(async move {
            in_transaction!(read self, |ops, conn| ops::device_summaries(conn, page).await)
        })
    }

    fn attestation_outcomes<'a>(
        &'a self,
        id: &'a DeviceId,
        limit: u64,
    ) -> AdminFuture<'a, Vec<AttestationOutcome>> {
        Box::pin(async move {
            in_transaction!(read self, |ops, conn| ops::attestation_outcomes(conn, id, limit)
                .await)
        })
    }

    fn revoke_device<'a>(&'a self, id: &'a DeviceId) -> AdminFuture<'a, ()> {
        Box::pin(
            async move { in_transaction!(self, |ops, conn| ops::revoke_device(conn, id).await) },
        )
    }

    fn register_device<'a>(&'a self, registration: &'a Registration) -> AdminFuture<'a, bool> {
        Box::pin(async move {
            in_transaction!(self, |ops, conn| ops::register_device(conn, registration)
                .await)
        })
    }

    fn set_device_class<'a>(
        &'a self,
        id: &'a DeviceId,
        class: Option<&'a str>,
    ) -> AdminFuture<'a, ()> {
        Box::pin(async move {
            in_transaction!(self, |ops, conn| ops::set_device_class(conn, id, class)
                .await)
        })
    }

    fn signers(&self) -> AdminFuture<'_, Vec<SignerRecord>> {
        Box::pin(async move { in_transaction!(read self, |ops, conn| ops::signers(conn).await) })
    }

    fn put_signer<'a>(&'a self, signer: &'a SignerRecord) -> AdminFuture<'a, ()> {
        Box::pin(
            async move { in_transaction!(self, |ops, conn| ops::put_signer(conn, signer).await) },
        )
    }

    fn remove_signer<'a>(&'a self, name: &'a str) -> AdminFuture<'a, ()> {
        Box::pin(
            async move { in_transaction!(self, |ops, conn| ops::remove_signer(conn, name).await) },
        )
    }

    fn audit(&self, offset: u64, limit: u64) -> AdminFuture<'_, Vec<AuditEntry>> {
        Box::pin(async move {
            in_transaction!(read self, |ops, conn| ops::audit(conn, offset, limit).await)
        })
    }

    fn append_audit<'a>(&'a self, entry: &'a AuditEntry) -> AdminFuture<'a, ()> {
        Box::pin(
            async move { in_transaction!(self, |ops, conn| ops::append_audit(conn, entry).await) },
        )
    }
}

/// A database error as a store error.
fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// An unsigned value (a time, a position) as a BIGINT column.
fn int(v: impl TryInto<i64>) -> Result<i64, StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Backend("integer out of the column's range".into()))
}

/// A BIGINT column holding an unsigned value.
fn uint(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Backend("negative integer column".into()))
}

/// A sequence number as a BIGINT column: bit-cast, since a manifest may use all 64 bits
/// (they are compared after loading, never in SQL).
fn seq_to_db(v: u64) -> i64 {
    i64::from_ne_bytes(v.to_ne_bytes())
}

/// The inverse of [`seq_to_db`].
fn seq_from_db(v: i64) -> u64 {
    u64::from_ne_bytes(v.to_ne_bytes())
}

/// A fixed-size id or digest column.
fn array<const N: usize>(v: Vec<u8>) -> Result<[u8; N], StoreError> {
    v.try_into()
        .map_err(|v: Vec<u8>| StoreError::Backend(format!("column of {} bytes, not {N}", v.len())))
}

/// A type a column is read as, from sqlx's rows of either dialect and from rusqlite's
/// (`sqlite_ops.rs`), so that one parser per record serves every backend.
trait Column:
    Sized
    + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
    + sqlx::Type<sqlx::Sqlite>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
    + rusqlite::types::FromSql
{
}

impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite>
        + sqlx::Type<sqlx::Sqlite>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + rusqlite::types::FromSql
{
}

/// A result row whose columns the record parsers read.
trait Cols {
    /// Column `i` as `T`.
    fn column<T: Column>(&self, i: usize) -> Result<T, StoreError>;
}

impl Cols for sqlx::sqlite::SqliteRow {
    fn column<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        sqlx::Row::try_get(self, i).map_err(db)
    }
}

impl Cols for sqlx::postgres::PgRow {
    fn column<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        sqlx::Row::try_get(self, i).map_err(db)
    }
}

/// A value bound to one statement of a batch (`ops.rs`'s `Batch`).
enum Value<'a> {
    /// A BLOB (bytes borrowed from the changes, or encoded for the statement).
    Blob(Option<std::borrow::Cow<'a, [u8]>>),
    /// A BIGINT.
    Int(Option<i64>),
    /// A BOOLEAN.
    Bool(bool),
    /// A TEXT.
    Text(Option<&'a str>),
}

impl<'a> Value<'a> {
    /// Borrowed bytes.
    fn blob(b: &'a [u8]) -> Self {
        Self::Blob(Some(std::borrow::Cow::Borrowed(b)))
    }

    /// Bytes encoded for this statement.
    fn owned(b: Vec<u8>) -> Self {
        Self::Blob(Some(std::borrow::Cow::Owned(b)))
    }
}

/// Appends `sql` to `out` with every placeholder `$n` made `$(n + offset)`: the statements
/// of one SQLite batch share one argument list, each keeping its own `$1..` in the source.
/// Our SQL has no `$` outside placeholders (no string literals hold one).
fn renumber(sql: &str, offset: usize, out: &mut String) {
    let mut rest = sql;
    while let Some((head, tail)) = rest.split_once('$') {
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        let (number, after) = tail.split_at(digits);
        match number.parse::<usize>() {
            Ok(n) => {
                out.push('$');
                out.push_str(&(n + offset).to_string());
            }
            Err(_) => out.push('$'),
        }
        rest = after;
    }
    out.push_str(rest);
}

/// `$first, $first+1, ..` for `n` values: the placeholders of an `IN (...)` list.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::{placeholders, renumber};

    #[test]
    fn renumbering_shifts_every_placeholder_and_nothing_else() {
        let mut out = String::from("SELECT 1;\n");
        renumber(
            "UPDATE t SET a = $1 WHERE b = $12 AND c = $1 OR d = '$'",
            3,
            &mut out,
        );
        assert_eq!(
            out,
            "SELECT 1;\nUPDATE t SET a = $4 WHERE b = $15 AND c = $4 OR d = '$'"
        );
        assert_eq!(placeholders(2, 3), "$2, $3, $4");
        assert_eq!(placeholders(1, 0), "");
    }
}
