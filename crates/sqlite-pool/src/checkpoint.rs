//! A background checkpointer: copies committed WAL frames back into the database file from a
//! connection of its own, so that the writer's commits do not wait for it.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses the threshold: that commit
//! copies thousands of pages and syncs the file while the writer (the read store's, so the
//! projection runner and every command waiting to be visible) waits behind it. A PASSIVE
//! checkpoint from another connection copies the same pages without taking the write lock. The
//! writer keeps a large automatic checkpoint as a backstop: it finds little left to copy, and it
//! is what lets the WAL start over from the beginning under a steady load. Used by the read store
//! only (ADR 16).

use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// How often the checkpointer copies what was committed since its last pass.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(1000);

/// The writers' own automatic checkpoint, in pages: a backstop, rarely reached.
pub const BACKSTOP_PAGES: u32 = 16384;

/// Runs PASSIVE checkpoints of one database file until dropped.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the (existing, WAL-mode) file at `path`, syncing as `synchronous`
    /// says (the writer's setting: a checkpoint syncs the WAL and the file under FULL and NORMAL).
    pub fn spawn(path: &Path, synchronous: &str) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_millis(100))?;
        conn.execute_batch(&format!("PRAGMA synchronous = {synchronous};"))?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    // A busy or failed pass is retried on the next tick; the writer's backstop
                    // checkpoint covers a checkpointer that keeps failing.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_pages_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (x TEXT);",
            )
            .unwrap();
        let _checkpointer = Checkpointer::spawn(&path, "NORMAL").unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        for _ in 0..200 {
            writer
                .execute("INSERT INTO t VALUES (?1)", [&"x".repeat(4000)])
                .unwrap();
        }
        // Only the checkpointer copies WAL frames into the file (the writer's own checkpoint is
        // off): the file grows once a pass has run.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::fs::metadata(&path).unwrap().len() <= before {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint copied the WAL into the file"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
