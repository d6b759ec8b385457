//! A service's own database in SQLite: one SQLite table per table the service writes, each
//! `(key TEXT PRIMARY KEY, value TEXT, version INTEGER)`.
//!
//! [`Tables`] is synchronous and infallible because the service logic is; a failing database
//! (a full disk) is logged and reads as a missing row, which the services already handle.

use rusqlite::{Connection, OptionalExtension, params};
use shared::service::{Row, Tables, Write};
use std::collections::BTreeSet;
use std::path::Path;
use tracing::error;

/// One service's SQLite database.
pub struct SqliteTables {
    connection: Connection,
    /// Tables known to exist, so reads of a table never written need no query.
    created: BTreeSet<String>,
}

impl SqliteTables {
    /// Opens (creating) the database file at `path`, with a write-ahead log so that another
    /// connection (a person's `sqlite3`, a test) can read it while the service writes.
    pub fn open_file(path: &Path) -> rusqlite::Result<SqliteTables> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        // A crash of the process may lose the last writes, never corrupt the file; that is the
        // trade-off a demo wants for speed.
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        SqliteTables::with(connection)
    }

    /// A database held in memory, gone when the run ends.
    pub fn open_in_memory() -> rusqlite::Result<SqliteTables> {
        SqliteTables::with(Connection::open_in_memory()?)
    }

    fn with(connection: Connection) -> rusqlite::Result<SqliteTables> {
        let created = SqliteTables::existing_tables(&connection)?;
        Ok(SqliteTables {
            connection,
            created,
        })
    }

    /// The tables the database holds.
    fn existing_tables(connection: &Connection) -> rusqlite::Result<BTreeSet<String>> {
        let mut statement =
            connection.prepare("SELECT name FROM sqlite_master WHERE type = 'table'")?;
        statement
            .query_map([], |row| row.get::<_, String>(0))?
            .collect()
    }

    /// Every row of `table`, ordered by key as text.
    pub fn rows(&self, table: &str) -> rusqlite::Result<Vec<(String, Row)>> {
        if !self.created.contains(table) {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT key, value, version FROM {} ORDER BY key",
            quoted(table)
        );
        let mut statement = self.connection.prepare_cached(&sql)?;
        statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    Row {
                        value: row.get(1)?,
                        version: row.get::<_, i64>(2)? as u64,
                    },
                ))
            })?
            .collect()
    }

    fn try_get(&self, table: &str, key: &str) -> rusqlite::Result<Option<Row>> {
        if !self.created.contains(table) {
            return Ok(None);
        }
        let sql = format!(
            "SELECT value, version FROM {} WHERE key = ?1",
            quoted(table)
        );
        self.connection
            .prepare_cached(&sql)?
            .query_row(params![key], |row| {
                Ok(Row {
                    value: row.get(0)?,
                    version: row.get::<_, i64>(1)? as u64,
                })
            })
            .optional()
    }

    fn try_put(&mut self, table: &str, key: &str, row: &Row) -> rusqlite::Result<()> {
        if !self.created.contains(table) {
            self.connection.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {} (key TEXT PRIMARY KEY, value TEXT NOT NULL, \
                 version INTEGER NOT NULL)",
                quoted(table)
            ))?;
            self.created.insert(table.to_string());
        }
        let sql = format!(
            "INSERT INTO {} (key, value, version) VALUES (?1, ?2, ?3) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version",
            quoted(table)
        );
        let version = i64::try_from(row.version).unwrap_or(i64::MAX);
        self.connection
            .prepare_cached(&sql)?
            .execute(params![key, row.value, version])?;
        Ok(())
    }
}

impl SqliteTables {
    /// Stores `writes` in one SQLite transaction: committed together, or rolled back together
    /// when any fails.
    fn try_put_all(&mut self, writes: &[Write]) -> rusqlite::Result<()> {
        self.connection.execute_batch("BEGIN IMMEDIATE")?;
        let stored = writes
            .iter()
            .try_for_each(|write| self.try_put(&write.table, &write.key, &write.row));
        match stored {
            Ok(()) => self.connection.execute_batch("COMMIT"),
            Err(err) => {
                // A failed write leaves the transaction open: undo the ones before it.
                let _ = self.connection.execute_batch("ROLLBACK");
                // Tables created inside it are gone again.
                self.created = SqliteTables::existing_tables(&self.connection)?;
                Err(err)
            }
        }
    }
}

impl Tables for SqliteTables {
    fn get(&self, table: &str, key: &str) -> Option<Row> {
        self.try_get(table, key).unwrap_or_else(|err| {
            error!("reading {table}/{key} failed: {err}");
            None
        })
    }

    fn put(&mut self, table: &str, key: &str, row: Row) {
        if let Err(err) = self.try_put(table, key, &row) {
            error!("writing {table}/{key} failed: {err}");
        }
    }

    fn scan(&self, table: &str) -> Vec<(String, Row)> {
        self.rows(table).unwrap_or_else(|err| {
            error!("reading {table} failed: {err}");
            Vec::new()
        })
    }

    fn put_all(&mut self, writes: &[Write]) {
        if let Err(err) = self.try_put_all(writes) {
            error!(
                "a transaction of {} writes failed, none stored: {err}",
                writes.len()
            );
        }
    }
}

/// `name` as an SQL identifier: double quotes around it, inner ones doubled.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: &str, version: u64) -> Row {
        Row {
            value: value.to_string(),
            version,
        }
    }

    #[test]
    fn rows_round_trip_and_overwrite() {
        let mut tables = SqliteTables::open_in_memory().unwrap();
        assert_eq!(tables.get("products", "1"), None, "no table yet");
        tables.put("products", "1", row("Lamp", 1));
        tables.put("products", "2", row("Desk", 1));
        tables.put("products", "1", row("Brass Lamp", 2));
        assert_eq!(tables.get("products", "1"), Some(row("Brass Lamp", 2)));
        assert_eq!(tables.get("products", "3"), None);
        let rows = tables.rows("products").unwrap();
        assert_eq!(
            rows,
            vec![
                ("1".to_string(), row("Brass Lamp", 2)),
                ("2".to_string(), row("Desk", 1))
            ]
        );
    }

    #[test]
    fn a_transaction_stores_all_its_writes_or_none() {
        let mut tables = SqliteTables::open_in_memory().unwrap();
        tables.put_all(&[
            Write::new("products", "1", "Lamp", 2),
            Write::new("outbox", "00000001", "pending", 1),
        ]);
        assert_eq!(tables.get("products", "1"), Some(row("Lamp", 2)));
        assert_eq!(tables.get("outbox", "00000001"), Some(row("pending", 1)));
        // The second write fails (a trigger stands in for a full disk): the first is undone.
        tables
            .connection
            .execute_batch(
                "CREATE TRIGGER refuse BEFORE INSERT ON outbox \
                 BEGIN SELECT RAISE(ABORT, 'disk full'); END",
            )
            .unwrap();
        tables.put_all(&[
            Write::new("products", "1", "Brass Lamp", 3),
            Write::new("outbox", "00000002", "pending", 1),
        ]);
        assert_eq!(
            tables.get("products", "1"),
            Some(row("Lamp", 2)),
            "rolled back"
        );
        assert_eq!(tables.get("outbox", "00000002"), None);
        let in_transaction = !tables.connection.is_autocommit();
        assert!(!in_transaction, "the transaction was closed");
    }

    #[test]
    fn odd_table_names_are_quoted() {
        let mut tables = SqliteTables::open_in_memory().unwrap();
        tables.put("a \"quoted\" table; DROP", "k", row("v", 7));
        assert_eq!(
            tables.get("a \"quoted\" table; DROP", "k"),
            Some(row("v", 7))
        );
    }

    #[test]
    fn a_file_database_survives_reopening() {
        let path =
            std::env::temp_dir().join(format!("crosstalk-tables-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&path);
        {
            let mut tables = SqliteTables::open_file(&path).unwrap();
            tables.put("orders", "4", row("1,2", 1));
        }
        let tables = SqliteTables::open_file(&path).unwrap();
        assert_eq!(tables.get("orders", "4"), Some(row("1,2", 1)));
        drop(tables);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
