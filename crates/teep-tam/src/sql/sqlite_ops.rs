// SQLite's commit in one hand-off: included by `sql/mod.rs` in the SQLite module only,
// after `ops.rs` (whose `Batch`, `run_sql` and `changes_batch` it uses).

impl<'a> Batch<'a> {
    /// Runs the batch as a transaction of its own, `BEGIN IMMEDIATE`, the
    /// statements and `COMMIT` travelling as one multi-statement query: one hand-off to
    /// the connection's worker thread instead of three. Each compare-and-set of
    /// [`Self::guards`] is followed by [`ONE_ROW_CHANGED`], which fails unless it changed
    /// exactly one row, so SQLite stops before `COMMIT` (the worker runs ahead of the
    /// rows we read, so the check cannot be made here); that failure is
    /// [`StoreError::Conflict`]. After any failure the transaction is rolled back here, and
    /// if that fails too, or this future is dropped before the answer, the connection is
    /// closed instead of returned to the pool (closing rolls back), so no pooled connection
    /// is ever left inside a transaction sqlx does not know of.
    async fn run_in_own_transaction(&self, conn: &mut PoolConn) -> Result<(), StoreError> {
        let mut sql = String::from("BEGIN IMMEDIATE");
        let mut values: Vec<&Value<'a>> = Vec::new();
        let mut raising = Vec::new();
        let mut count = 1;
        for (i, (text, v)) in self.statements.iter().enumerate() {
            sql.push_str(";\n");
            renumber(text, values.len(), &mut sql);
            values.extend(v);
            count += 1;
            if self.guards.contains(&i) {
                sql.push_str(";\n");
                sql.push_str(ONE_ROW_CHANGED);
                raising.push(count);
                count += 1;
            }
        }
        sql.push_str(";\nCOMMIT");
        count += 1;
        let mut guard = CloseUnlessAnswered {
            conn,
            answered: false,
        };
        let mut outputs = Vec::with_capacity(count);
        let ran = run_sql(guard.conn, &sql, &values, &[], &raising, &mut outputs).await;
        let result = ran.and_then(|()| {
            if outputs.len() == count {
                Ok(())
            } else {
                Err(StoreError::Backend(format!(
                    "{} results for a transaction of {count} statements",
                    outputs.len()
                )))
            }
        });
        guard.answered = result.is_ok()
            || sqlx::query("ROLLBACK")
                .execute(&mut **guard.conn)
                .await
                .is_ok();
        result
    }
}

/// A pooled connection, with the pool that lends it.
pub(super) type PoolConn = sqlx::pool::PoolConnection<Db>;

/// A statement that fails (malformed JSON) unless the statement just before it changed
/// exactly one row: SQLite has no `RAISE` outside triggers, and `CASE` evaluates only the
/// branch taken. See [`Batch::run_in_own_transaction`].
const ONE_ROW_CHANGED: &str = "SELECT json(CASE changes() WHEN 1 THEN '1' ELSE 'conflict' END)";

/// Marks its connection to be closed, not returned to the pool, if dropped before
/// `answered` is set (see [`Batch::run_in_own_transaction`]).
struct CloseUnlessAnswered<'c> {
    conn: &'c mut PoolConn,
    answered: bool,
}

impl Drop for CloseUnlessAnswered<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.conn.close_on_drop();
        }
    }
}

/// [`apply`] as a transaction of its own, in one hand-off (SQLite only, see
/// [`Batch::run_in_own_transaction`]).
pub(super) async fn apply_alone(conn: &mut PoolConn, c: &Changes) -> Result<(), StoreError> {
    changes_batch(c)?.run_in_own_transaction(conn).await
}
