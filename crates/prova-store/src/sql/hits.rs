//! [`AuditHitStore`] on SQL: the `audit_hits` table (migration 0004).
//!
//! Inserts are multi-row statements with `ON CONFLICT (audit_id) DO
//! NOTHING`, so a batch the API server sends again, or a second stage of the
//! same request, is dropped by the unique index in the same statement that
//! stores the rest. `LIKE` filters are case-sensitive on both backends:
//! PostgreSQL's `LIKE` is; SQLite's is not, so there the pattern becomes the
//! equivalent `GLOB` (see [`LikePattern`]).

use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::statement::{Arg, CachedSql, Sql, multi_row_insert};
use super::{Backend, SqlStore, corrupt, from_micros, micros, q};
use crate::{
    AuditHit, AuditHitQuery, AuditHitStore, MAX_AUDIT_HITS_PER_QUERY, NewAuditHit, Result,
};

/// Bound parameters per hit row.
const HIT_PARAMS: usize = 9;
/// Rows per INSERT statement (9 parameters each: far under both backends'
/// limits). The same size as the events table's inserts, measured there.
const HIT_ROWS_PER_INSERT: usize = 64;

/// `INSERT ... VALUES (...), ... ON CONFLICT (audit_id) DO NOTHING` for
/// `rows` rows.
fn insert_hits_sql(backend: Backend, rows: usize) -> String {
    multi_row_insert(
        backend,
        "INSERT INTO audit_hits (audit_id, endpoint, verb, request_uri, user_agent, \
         test_name, stage, time, raw) VALUES ",
        HIT_PARAMS,
        rows,
        " ON CONFLICT (audit_id) DO NOTHING",
    )
}

/// The full-size INSERT, built once per backend.
fn full_insert_sql(backend: Backend) -> Arc<str> {
    static FULL: CachedSql = CachedSql::new();
    FULL.get(backend, |b| insert_hits_sql(b, HIT_ROWS_PER_INSERT))
}

const HIT_COLUMNS: &str =
    "seq, audit_id, endpoint, verb, request_uri, user_agent, test_name, stage, time";

fn hit_from_row(row: &AnyRow) -> Result<AuditHit> {
    let get = |e: sqlx::Error| corrupt("audit hit row", e);
    Ok(AuditHit {
        seq: row.try_get(0).map_err(get)?,
        audit_id: row.try_get(1).map_err(get)?,
        endpoint: row.try_get(2).map_err(get)?,
        verb: row.try_get(3).map_err(get)?,
        request_uri: row.try_get(4).map_err(get)?,
        user_agent: row.try_get(5).map_err(get)?,
        test_name: row.try_get(6).map_err(get)?,
        stage: row.try_get(7).map_err(get)?,
        time: from_micros("audit hit time", row.try_get(8).map_err(get)?)?,
    })
}

/// A SQL `LIKE` pattern (`%`, `_`, `\` escapes the next character; a
/// trailing `\` is a literal one, as prova's coverage commands read it),
/// rendered for each backend so both match exactly the same texts.
struct LikePattern(Vec<LikeToken>);

#[derive(Clone, Copy)]
enum LikeToken {
    Lit(char),
    One,
    Any,
}

impl LikePattern {
    fn parse(pattern: &str) -> Self {
        let mut out = Vec::new();
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            out.push(match c {
                '%' => LikeToken::Any,
                '_' => LikeToken::One,
                '\\' => LikeToken::Lit(chars.next().unwrap_or('\\')),
                c => LikeToken::Lit(c),
            });
        }
        LikePattern(out)
    }

    /// PostgreSQL `LIKE` (default escape `\`), every literal that could
    /// be read as syntax escaped.
    fn to_like(&self) -> String {
        let mut s = String::new();
        for t in &self.0 {
            match t {
                LikeToken::Any => s.push('%'),
                LikeToken::One => s.push('_'),
                LikeToken::Lit(c @ ('%' | '_' | '\\')) => {
                    s.push('\\');
                    s.push(*c);
                }
                LikeToken::Lit(c) => s.push(*c),
            }
        }
        s
    }

    /// SQLite `GLOB` (case-sensitive): `*`, `?`, and `[c]` for a literal
    /// `*`, `?` or `[`.
    fn to_glob(&self) -> String {
        let mut s = String::new();
        for t in &self.0 {
            match t {
                LikeToken::Any => s.push('*'),
                LikeToken::One => s.push('?'),
                LikeToken::Lit(c @ ('*' | '?' | '[')) => {
                    s.push('[');
                    s.push(*c);
                    s.push(']');
                }
                LikeToken::Lit(c) => s.push(*c),
            }
        }
        s
    }
}

impl SqlStore {
    /// `AND column LIKE pattern`, case-sensitive on both backends.
    fn push_like(&self, sql: &mut Sql, column: &str, pattern: &str) {
        let p = LikePattern::parse(pattern);
        match self.backend {
            Backend::Sqlite => {
                sql.push(&format!(" AND {column} GLOB "))
                    .arg(Arg::Text(p.to_glob()));
            }
            Backend::Postgres => {
                sql.push(&format!(" AND {column} LIKE "))
                    .arg(Arg::Text(p.to_like()));
            }
        }
    }
}

/// Inserts each batch's hits in multi-row statements, returning how many
/// of each were new.
async fn insert_batches<DB>(
    conn: &mut DB::Connection,
    backend: Backend,
    batches: &[&[NewAuditHit]],
) -> Result<Vec<u64>>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    DB::QueryResult: RowsAffected,
{
    let mut counts = Vec::with_capacity(batches.len());
    for hits in batches {
        let mut stored = 0;
        for chunk in hits.chunks(HIT_ROWS_PER_INSERT) {
            let mut qry = if chunk.len() == HIT_ROWS_PER_INSERT {
                sqlx::query::<DB>(AssertSqlSafe(full_insert_sql(backend)))
            } else {
                sqlx::query::<DB>(AssertSqlSafe(insert_hits_sql(backend, chunk.len())))
            };
            for h in chunk {
                qry = qry
                    .bind(h.audit_id.as_str())
                    .bind(h.endpoint.as_deref())
                    .bind(h.verb.as_str())
                    .bind(h.request_uri.as_str())
                    .bind(h.user_agent.as_deref())
                    .bind(h.test_name.as_deref())
                    .bind(h.stage.as_deref())
                    .bind(micros(h.time))
                    .bind(h.raw.as_deref());
            }
            let done = qry
                .execute(&mut *conn)
                .await
                .map_err(q("store audit hits"))?;
            stored += done.rows();
        }
        counts.push(stored);
    }
    Ok(counts)
}

/// `rows_affected` of either driver's answer (sqlx has no trait for it).
trait RowsAffected {
    fn rows(&self) -> u64;
}
impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}
impl RowsAffected for sqlx::any::AnyQueryResult {
    fn rows(&self) -> u64 {
        self.rows_affected()
    }
}

#[async_trait]
impl AuditHitStore for SqlStore {
    async fn insert_audit_hit_batches(&self, batches: &[&[NewAuditHit]]) -> Result<Vec<u64>> {
        if batches.iter().all(|b| b.is_empty()) {
            return Ok(vec![0; batches.len()]);
        }
        // SQLite files: sqlx's own driver, on the connection event appends
        // write through (no copy of every text value on the way, and no
        // second writer to take turns with); elsewhere `Any`.
        if let Some(writer) = &self.sqlite_writer {
            let mut tx = writer
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(q("store audit hits"))?;
            let counts = insert_batches::<sqlx::Sqlite>(&mut tx, Backend::Sqlite, batches).await?;
            tx.commit().await.map_err(q("store audit hits"))?;
            return Ok(counts);
        }
        let mut tx = self.begin_write("store audit hits").await?;
        let counts = insert_batches::<sqlx::Any>(&mut tx, self.backend, batches).await?;
        tx.commit().await.map_err(q("store audit hits"))?;
        Ok(counts)
    }

    async fn query_audit_hits(&self, query: &AuditHitQuery) -> Result<Vec<AuditHit>> {
        let mut sql = Sql::new(&format!("SELECT {HIT_COLUMNS} FROM audit_hits WHERE 1 = 1"));
        if let Some(t) = query.since {
            sql.push(" AND time >= ").arg(Arg::I64(micros(t)));
        }
        if let Some(t) = query.until {
            sql.push(" AND time < ").arg(Arg::I64(micros(t)));
        }
        if let Some(c) = query.after {
            let t = micros(c.time);
            sql.push(" AND (time > ")
                .arg(Arg::I64(t))
                .push(" OR (time = ")
                .arg(Arg::I64(t))
                .push(" AND seq > ")
                .arg(Arg::I64(c.seq))
                .push("))");
        }
        if let Some(p) = &query.user_agent {
            self.push_like(&mut sql, "user_agent", p);
        }
        if let Some(p) = &query.endpoint {
            self.push_like(&mut sql, "endpoint", p);
        }
        let limit = query.limit.min(MAX_AUDIT_HITS_PER_QUERY);
        sql.push(&format!(" ORDER BY time, seq LIMIT {limit}"));
        let mut out = Vec::new();
        let mut rows = sql.query().fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(q("query audit hits"))? {
            out.push(hit_from_row(&row)?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_render_for_each_backend() {
        let p = LikePattern::parse(r"e2e%should_[x]*?\%\_\\");
        assert_eq!(p.to_glob(), r"e2e*should?[[]x][*][?]%_\");
        assert_eq!(p.to_like(), r"e2e%should_[x]*?\%\_\\");
        // A trailing escape is a literal backslash, not a PostgreSQL error.
        assert_eq!(LikePattern::parse(r"a\").to_like(), r"a\\");
    }

    #[test]
    fn insert_sql_numbers_every_parameter() {
        let s = insert_hits_sql(Backend::Postgres, 2);
        assert!(s.contains("($1,$2,$3,$4,$5,$6,$7,$8,$9),($10,$11,$12,$13,$14,$15,$16,$17,$18)"));
        let s = insert_hits_sql(Backend::Sqlite, 1);
        assert!(s.ends_with("VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (audit_id) DO NOTHING"));
    }
}
