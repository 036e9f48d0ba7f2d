//! Statements built at run time (filters, `IN` lists): SQL text with `$n`
//! placeholders and the values to bind to them.

use sqlx::AssertSqlSafe;
use sqlx::query::Query;

use super::Backend;

/// A statement text built once per backend (the driver caches prepared
/// statements by text, so reusing the same text also reuses the statement).
pub(super) struct CachedSql {
    sqlite: std::sync::OnceLock<std::sync::Arc<str>>,
    postgres: std::sync::OnceLock<std::sync::Arc<str>>,
}

impl CachedSql {
    pub(super) const fn new() -> Self {
        CachedSql {
            sqlite: std::sync::OnceLock::new(),
            postgres: std::sync::OnceLock::new(),
        }
    }

    /// The text for `backend`, built by `build` the first time.
    pub(super) fn get(
        &self,
        backend: Backend,
        build: impl FnOnce(Backend) -> String,
    ) -> std::sync::Arc<str> {
        let cell = match backend {
            Backend::Sqlite => &self.sqlite,
            Backend::Postgres => &self.postgres,
        };
        cell.get_or_init(|| build(backend).into()).clone()
    }
}

/// `head` then `rows` tuples of `params` placeholders each, then `tail`:
/// a multi-row INSERT.
///
/// SQLite gets anonymous `?` placeholders: for numbered ones (`$n`) sqlx
/// asks `sqlite3_bind_parameter_name` about each, which scans a list of
/// all names, so binding a statement costs O(n²) in its parameters — 80% of
/// the time of a 2,816-parameter INSERT. PostgreSQL needs `$n`.
pub(super) fn multi_row_insert(
    backend: Backend,
    head: &str,
    params: usize,
    rows: usize,
    tail: &str,
) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(head.len() + tail.len() + rows * params * 7);
    s.push_str(head);
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..params {
            n += 1;
            if c > 0 {
                s.push(',');
            }
            match backend {
                Backend::Sqlite => s.push('?'),
                Backend::Postgres => {
                    let _ = write!(s, "${n}");
                }
            }
        }
        s.push(')');
    }
    s.push_str(tail);
    s
}

/// A value to bind to a dynamically built query.
#[derive(Clone)]
pub(super) enum Arg {
    I64(i64),
    Text(String),
}

/// A dynamically built statement: SQL text plus its `$n` arguments.
#[derive(Default, Clone)]
pub(super) struct Sql {
    pub(super) text: String,
    pub(super) args: Vec<Arg>,
}

impl Sql {
    pub(super) fn new(text: &str) -> Self {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }
    /// Appends `$n` for a new argument.
    pub(super) fn arg(&mut self, a: Arg) -> &mut Self {
        use std::fmt::Write;
        self.args.push(a);
        let _ = write!(self.text, "${}", self.args.len());
        self
    }
    pub(super) fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    /// The statement with its arguments bound, on `Any` or on a backend's
    /// own driver (its own rows skip `Any`'s copy of every value).
    pub(super) fn query<DB: sqlx::Database>(self) -> Query<'static, DB, DB::Arguments>
    where
        for<'t> i64: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
        for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    {
        let mut qry = sqlx::query(AssertSqlSafe(self.text));
        for a in self.args {
            qry = match a {
                Arg::I64(v) => qry.bind(v),
                Arg::Text(v) => qry.bind(v),
            };
        }
        qry
    }
}
