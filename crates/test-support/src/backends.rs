//! Running one suite on both databases.

/// Which databases a test runs on (event store and read store alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    /// The embedded default: SQLite files.
    Sqlite,
    /// Fresh PostgreSQL databases of the test cluster.
    Postgres,
}

/// Runs each named `async fn(Db)` as two tests, one per backend. PostgreSQL tests are skipped
/// (with a message) where no PostgreSQL is available, and fail in CI.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Db::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Db::Postgres).await
                }
            )+
        }
    };
}
