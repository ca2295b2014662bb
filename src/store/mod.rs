//! Persistence. One `Db` value speaks to either backend: SQLite (embedded default, one writer
//! connection plus a pool of readers, WAL) or PostgreSQL (scale-out). Queries are plain SQL written
//! once where both dialects agree (`$1` placeholders work on both), in the module of the resource
//! they serve; each backend keeps its own migrations with its native column types.

pub mod automations;
pub mod calls;
pub mod campaigns;
pub mod contacts;
pub mod counts;
pub mod do_not_call;
pub mod erasure;
pub mod idempotency;
pub mod keys;
pub mod lists;
pub mod numbers;
pub mod objects;
pub mod retention;
pub mod scripts;
pub mod teams;
pub mod trunks;
pub mod twilio;
pub mod users;
pub mod webhooks;

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    PgPool, SqlitePool,
};

/// Where a listing's page starts, which way it runs and how many rows it fetches. Listings are by
/// id, and ids are time-ordered, so oldest first is creation order.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seek {
    /// The cursor: rows strictly beyond this id, in the listing's direction.
    pub after: Option<uuid::Uuid>,
    pub newest_first: bool,
    pub limit: i64,
}

impl Seek {
    pub fn oldest_first(limit: i64) -> Self {
        Seek {
            after: None,
            newest_first: false,
            limit,
        }
    }

    /// The cursor condition on `column`, its bound at placeholder `$n` (null: no cursor).
    pub fn beyond(&self, column: &str, n: u8) -> String {
        let op = if self.newest_first { "<" } else { ">" };
        format!("(${n} IS NULL OR {column} {op} ${n})")
    }

    /// The ORDER BY of this direction.
    pub fn order_by(&self, column: &str) -> String {
        let dir = if self.newest_first { "DESC" } else { "ASC" };
        format!("ORDER BY {column} {dir}")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; carries the constraint's (or column's) name.
    #[error("conflict on {0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database settings name something that cannot be opened.
    #[error("{0}")]
    Settings(String),
}

impl StoreError {
    /// Maps unique-key violations to `Conflict`; sqlx reports both backends' alike.
    pub fn from_write(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                let name = db
                    .constraint()
                    .map(str::to_owned)
                    .unwrap_or_else(|| db.message().to_owned());
                return StoreError::Conflict(name);
            }
        }
        StoreError::Database(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A write refused for a reason of the domain (nothing was written), or failed in the store.
#[derive(Debug, thiserror::Error)]
pub enum WriteError<R: std::fmt::Debug> {
    #[error("refused: {0:?}")]
    Refused(R),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<R: std::fmt::Debug> From<sqlx::Error> for WriteError<R> {
    fn from(e: sqlx::Error) -> Self {
        WriteError::Store(e.into())
    }
}

impl<R: std::fmt::Debug> WriteError<R> {
    /// The refusal turned into the caller's error by `f`; store failures as they are.
    pub fn refused_as<E: From<StoreError>>(self, f: impl FnOnce(R) -> E) -> E {
        match self {
            WriteError::Refused(r) => f(r),
            WriteError::Store(s) => s.into(),
        }
    }
}

/// A unique key turned into the caller's error where the insert is made; other failures as they are.
pub trait OnUnique<T> {
    fn on_unique<E: From<StoreError>>(self, f: impl FnOnce() -> E) -> std::result::Result<T, E>;
}

impl<T> OnUnique<T> for Result<T> {
    fn on_unique<E: From<StoreError>>(self, f: impl FnOnce() -> E) -> std::result::Result<T, E> {
        self.map_err(|e| match e {
            StoreError::Conflict(_) => f(),
            other => other.into(),
        })
    }
}

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite { read: SqlitePool, write: SqlitePool },
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to a pool for reads (SQLite: the reader pool).
macro_rules! read_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { read: $pool, .. } => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$pool` bound to the pool for writes (SQLite: the single writer connection).
/// For one statement, which SQLite and PostgreSQL each make atomic on their own: a write statement
/// takes SQLite's write lock when it starts, so it waits its turn like `BEGIN IMMEDIATE` does.
macro_rules! write_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { write: $pool, .. } => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` inside a transaction bound to `$tx`; commits when the body finishes, rolls back when
/// it returns early with `?`. On SQLite the transaction takes the write lock up front
/// (`BEGIN IMMEDIATE`) on the single writer connection, so concurrent writers queue instead of
/// failing with "database is locked".
/// Runs `$body` (a `Result`) in a write transaction, committed only when the body is `Ok`: an
/// error or refusal rolls back whatever the body wrote. (A macro so that the same code expands for
/// each backend's transaction type.)
macro_rules! transaction {
    ($db:expr, $tx:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { write, .. } => {
                let mut $tx = write.begin_with("BEGIN IMMEDIATE").await?;
                let out: std::result::Result<_, _> = $body;
                if out.is_ok() {
                    $tx.commit().await?;
                }
                out
            }
            $crate::store::Db::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let out: std::result::Result<_, _> = $body;
                if out.is_ok() {
                    $tx.commit().await?;
                }
                out
            }
        }
    };
}

pub(crate) use {read_pool, transaction, write_pool};

/// Database settings the server and the CLI share.
#[derive(Clone)]
pub struct DbOptions {
    pub url: String,
    pub max_connections: u32,
}

impl std::fmt::Debug for DbOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbOptions")
            .field("url", &redact_url(&self.url))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

/// The URL with any password replaced, for logs and `Debug`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// The default database: `voxd.db` in the data directory.
pub fn default_sqlite_url(data_dir: &Path) -> String {
    format!("sqlite://{}", data_dir.join("voxd.db").display())
}

impl Db {
    /// Opens the database named by the URL (`sqlite://…` or `postgres://…`), creating a SQLite file
    /// if needed, in a folder that must exist (only the default data dir is made, by the settings).
    /// Any other scheme is refused. Does not migrate.
    pub async fn connect(opts: &DbOptions) -> Result<Self> {
        let scheme = opts.url.split_once(':').map(|(s, _)| s).unwrap_or("");
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
            return Err(StoreError::Settings(format!(
                "`{}` is not a database URL voxd supports: use sqlite://PATH or postgres://USER@HOST/DB",
                redact_url(&opts.url)
            )));
        }
        if scheme != "sqlite" {
            let connect = PgConnectOptions::from_str(&opts.url)?;
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(connect)
                .await?;
            return Ok(Db::Postgres(pool));
        }
        let connect = SqliteConnectOptions::from_str(&opts.url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL, NORMAL loses no committed transaction on a process crash; only an OS crash or
            // power cut can drop the last commits. It is what makes small write transactions cheap.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Deleted content is overwritten, not left in free pages: an erased person must not
            // be readable from the file.
            .pragma("secure_delete", "ON");
        if let Some(dir) = Path::new(connect.get_filename()).parent() {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                return Err(StoreError::Settings(format!(
                    "the folder {} of the SQLite database does not exist (create it, or use the default data dir)",
                    dir.display()
                )));
            }
        }
        // One writer: SQLite allows one at a time anyway, and queueing in the pool is fairer and
        // cheaper than spinning on the busy handler.
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect.read_only(true))
            .await?;
        Ok(Db::Sqlite { read, write })
    }

    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite { write, .. } => sqlx::migrate!("migrations/sqlite").run(write).await?,
            Db::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        read_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.is_ok())
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite { .. } => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://./data/voxd.db"), "sqlite://./data/voxd.db");
    }
}

/// Stores a domain enum as the text it is known by (`Progress` as `in_progress`, `CallStatus` as
/// `User unavailable`), on both backends, so rows read back as the enum and no literal is repeated.
macro_rules! text_column {
    ($ty:ty, $what:literal) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $ty
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $ty
        where
            &'q str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> std::result::Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'q, DB>>::encode_by_ref(&self.as_str(), buf)
            }
        }
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $ty
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> std::result::Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<'r, DB>>::decode(value)?;
                <$ty>::parse(text).ok_or_else(|| format!("unknown {} `{text}`", $what).into())
            }
        }
    };
}

text_column!(crate::domain::call::Progress, "call progress");
text_column!(crate::domain::call::CallStatus, "call status");

impl Db {
    /// The server's secret of that name, made (32 random bytes) and stored the first time it is
    /// asked for; every process on the database gets the same one.
    pub async fn server_secret(&self, name: &str, now: chrono::DateTime<chrono::Utc>) -> Result<Vec<u8>> {
        let fresh: [u8; 32] = rand::random();
        write_pool!(self, pool => sqlx::query("INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING")
            .bind(name).bind(fresh.to_vec()).bind(now).execute(pool).await.map(|_| ())?);
        let value: Vec<u8> = write_pool!(self, pool => sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name).fetch_one(pool).await?);
        Ok(value)
    }
}
