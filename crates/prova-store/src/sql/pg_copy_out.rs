//! PostgreSQL's bulk path for reading events: the read as one
//! `COPY (SELECT …) TO STDOUT (FORMAT binary)`, decoded here.
//!
//! A `SELECT` of 100,000 events costs sqlx a row object per event (its
//! own buffers, column offsets and statement metadata) on top of decoding
//! the values; `COPY` sends the same bytes as plain tuples, read here in
//! place: a `bigint` is its 8 bytes in network order, a `text` its UTF-8
//! bytes. The format is the one [`super::pg_copy`] writes (PostgreSQL's
//! `COPY` page, "Binary Format"); sqlx streams it but decodes none.
//!
//! `COPY` takes no bind parameters, so only statements whose arguments
//! are all integers are read this way (they are written into the text as
//! digits, which cannot change what the statement means); reads filtered
//! by a text go through the driver's rows.

use futures::TryStreamExt;
use prova_core::Event;
use sqlx::postgres::PgPoolCopyExt;

use super::event_rows::EventParts;
use super::statement::{Arg, Sql};
use super::{corrupt, q};
use crate::{Result, StoreError};

/// `COPY (<sql>) TO STDOUT (FORMAT binary)` with `sql`'s arguments in
/// its text, or `None` when one of them is not an integer.
pub(super) fn copy_out_statement(sql: &Sql) -> Option<String> {
    let mut text = sql.text.clone();
    // Highest first, so `$1` does not match the start of `$12`.
    for (i, arg) in sql.args.iter().enumerate().rev() {
        let Arg::I64(v) = arg else { return None };
        let placeholder = format!("${}", i + 1);
        if !text.contains(&placeholder) {
            return None;
        }
        text = text.replace(&placeholder, &format!("({v})"));
    }
    Some(format!("COPY ({text}) TO STDOUT (FORMAT binary)"))
}

/// Runs `statement` (from [`copy_out_statement`], selecting
/// [`super::event_rows::EVENT_COLUMNS`]) and decodes its events.
pub(super) async fn read_events(pg: &sqlx::PgPool, statement: &str) -> Result<Vec<Event>> {
    let mut chunks = pg
        .copy_out_raw(statement)
        .await
        .map_err(q("query events"))?;
    let mut reader = CopyOutReader::default();
    let mut out = Vec::new();
    while let Some(chunk) = chunks.try_next().await.map_err(q("query events"))? {
        reader.feed(&chunk, &mut out)?;
    }
    reader.finish()?;
    Ok(out)
}

/// The binary format's signature and flags (no OIDs); the header's
/// extension length follows.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0";

/// Fields per tuple: [`super::event_rows::EVENT_COLUMNS`].
const FIELDS: i16 = 11;

/// Decodes binary `COPY` data as it arrives. PostgreSQL sends a tuple per
/// message, but the protocol does not promise it: what a chunk ends with
/// short of a whole tuple waits in `pending` for the next.
#[derive(Default)]
struct CopyOutReader {
    pending: Vec<u8>,
    header_read: bool,
    trailer_read: bool,
}

impl CopyOutReader {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<()> {
        if self.pending.is_empty() {
            let used = self.decode(chunk, out)?;
            self.pending.extend_from_slice(&chunk[used..]);
        } else {
            let mut pending = std::mem::take(&mut self.pending);
            pending.extend_from_slice(chunk);
            let used = self.decode(&pending, out)?;
            pending.drain(..used);
            self.pending = pending;
        }
        Ok(())
    }

    /// Decodes the whole tuples at the start of `buf`; returns the bytes
    /// used.
    fn decode(&mut self, buf: &[u8], out: &mut Vec<Event>) -> Result<usize> {
        let mut at = 0;
        if !self.header_read {
            let Some(used) = header(buf)? else {
                return Ok(0);
            };
            at = used;
            self.header_read = true;
        }
        while at < buf.len() {
            if self.trailer_read {
                return Err(bad("data after the trailer", at));
            }
            let mut t = Tuple { buf, at };
            match t.event() {
                Ok(Some(event)) => out.push(event),
                Ok(None) => self.trailer_read = true,
                Err(Incomplete::Short) => break,
                Err(Incomplete::Bad(e)) => return Err(*e),
            }
            at = t.at;
        }
        Ok(at)
    }

    fn finish(self) -> Result<()> {
        if !self.pending.is_empty() || !self.trailer_read {
            return Err(bad("data cut short", self.pending.len()));
        }
        Ok(())
    }
}

/// The header's length, or `None` when `buf` does not hold all of it yet.
fn header(buf: &[u8]) -> Result<Option<usize>> {
    let fixed = SIGNATURE.len() + 4;
    if buf.len() < fixed {
        return Ok(None);
    }
    if &buf[..SIGNATURE.len()] != SIGNATURE {
        return Err(bad("not binary COPY data (signature)", 0));
    }
    let ext = u32::from_be_bytes(buf[SIGNATURE.len()..fixed].try_into().expect("4 bytes"));
    let end = fixed.saturating_add(ext as usize);
    Ok((buf.len() >= end).then_some(end))
}

fn bad(what: &str, at: usize) -> StoreError {
    corrupt("copied events", format!("{what} at byte {at}"))
}

/// Why a tuple could not be read. Boxed: every field read returns one
/// in its `Result`, which stays two words this way.
enum Incomplete {
    /// It goes on in the next chunk.
    Short,
    Bad(Box<StoreError>),
}

impl From<StoreError> for Incomplete {
    fn from(e: StoreError) -> Self {
        Incomplete::Bad(Box::new(e))
    }
}

/// One tuple being read from `buf` at `at`.
struct Tuple<'a> {
    buf: &'a [u8],
    at: usize,
}

type Field<T> = std::result::Result<T, Incomplete>;

impl<'a> Tuple<'a> {
    fn take(&mut self, n: usize) -> Field<&'a [u8]> {
        let end = self.at.checked_add(n).ok_or(Incomplete::Short)?;
        let bytes = self.buf.get(self.at..end).ok_or(Incomplete::Short)?;
        self.at = end;
        Ok(bytes)
    }

    /// A field's bytes, `None` for NULL.
    fn field(&mut self) -> Field<Option<&'a [u8]>> {
        let len = i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes"));
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| bad("negative field length", self.at))?;
        self.take(len).map(Some)
    }

    fn bigint(&mut self) -> Field<Option<i64>> {
        match self.field()? {
            None => Ok(None),
            Some(b) => Ok(Some(i64::from_be_bytes(
                b.try_into()
                    .map_err(|_| bad("a bigint not of 8 bytes", self.at))?,
            ))),
        }
    }

    fn required_bigint(&mut self) -> Field<i64> {
        Ok(self.bigint()?.ok_or_else(|| bad("NULL", self.at))?)
    }

    fn text(&mut self) -> Field<Option<&'a str>> {
        match self.field()? {
            None => Ok(None),
            Some(b) => Ok(Some(
                std::str::from_utf8(b).map_err(|_| bad("text not UTF-8", self.at))?,
            )),
        }
    }

    fn required_text(&mut self) -> Field<&'a str> {
        Ok(self.text()?.ok_or_else(|| bad("NULL", self.at))?)
    }

    /// The next event, or `None` at the trailer.
    fn event(&mut self) -> Field<Option<Event>> {
        let fields = i16::from_be_bytes(self.take(2)?.try_into().expect("2 bytes"));
        if fields == -1 {
            return Ok(None);
        }
        if fields != FIELDS {
            return Err(bad(&format!("{fields} fields, not {FIELDS}"), self.at).into());
        }
        let parts = EventParts {
            seq: self.required_bigint()?,
            job_id: self.required_bigint()?,
            kind: self.required_text()?,
            run_id: self.required_bigint()?,
            test_name: self.text()?,
            test_attempt: self.bigint()?,
            step_label: self.text()?,
            target: self.text()?,
            name: self.required_text()?,
            payload: self.text()?,
            emit_time: self.required_bigint()?,
        };
        Ok(Some(parts.into_event()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binary COPY data of `rows`, each its fields (`None`: NULL), and the
    /// trailer.
    fn copy_data(rows: &[Vec<Option<Vec<u8>>>]) -> Vec<u8> {
        let mut buf = SIGNATURE.to_vec();
        buf.extend_from_slice(&0u32.to_be_bytes());
        for row in rows {
            buf.extend_from_slice(&(row.len() as i16).to_be_bytes());
            for f in row {
                match f {
                    None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(b) => {
                        buf.extend_from_slice(&(b.len() as i32).to_be_bytes());
                        buf.extend_from_slice(b);
                    }
                }
            }
        }
        buf.extend_from_slice(&(-1i16).to_be_bytes());
        buf
    }

    fn int(v: i64) -> Option<Vec<u8>> {
        Some(v.to_be_bytes().to_vec())
    }

    fn text(s: &str) -> Option<Vec<u8>> {
        Some(s.as_bytes().to_vec())
    }

    fn row(seq: i64, name: &str) -> Vec<Option<Vec<u8>>> {
        vec![
            int(seq),
            int(3),
            text("test"),
            int(1),
            text("t\n\"é"),
            None,
            None,
            text(r#"{"ID":"h1"}"#),
            text(name),
            text(r#"{"Msg":"x"}"#),
            int(1_700_000_000_000_000),
        ]
    }

    /// Feeds `data` in chunks of `size` bytes.
    fn read(data: &[u8], size: usize) -> Result<Vec<Event>> {
        let mut reader = CopyOutReader::default();
        let mut out = Vec::new();
        for chunk in data.chunks(size) {
            reader.feed(chunk, &mut out)?;
        }
        reader.finish()?;
        Ok(out)
    }

    #[test]
    fn tuples_split_anywhere_across_chunks_read_the_same() {
        let data = copy_data(&[row(7, "N1"), row(8, "ステップ"), row(9, "")]);
        let whole = read(&data, data.len()).unwrap();
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[1].seq, 8);
        assert_eq!(whole[1].name, "ステップ");
        assert_eq!(whole[0].test_name.as_deref(), Some("t\n\"é"));
        assert_eq!(whole[0].test_attempt, None);
        assert_eq!(whole[0].target.as_ref().unwrap().id, "h1");
        assert_eq!(whole[2].payload, Some(serde_json::json!({"Msg": "x"})));
        for size in 1..40 {
            assert_eq!(read(&data, size).unwrap(), whole, "chunks of {size}");
        }
    }

    #[test]
    fn broken_data_is_an_error_not_a_guess() {
        let good = copy_data(&[row(7, "N")]);
        // Cut short: no trailer.
        assert!(read(&good[..good.len() - 2], 64).is_err());
        // A field too few.
        let mut short = row(7, "N");
        short.pop();
        assert!(read(&copy_data(&[short]), 64).is_err());
        // A NULL where a value must be.
        let mut null_name = row(7, "N");
        null_name[8] = None;
        assert!(read(&copy_data(&[null_name]), 64).is_err());
        // Not UTF-8.
        let mut latin1 = row(7, "N");
        latin1[8] = Some(vec![0xe9]);
        assert!(read(&copy_data(&[latin1]), 64).is_err());
        // A bigint of 4 bytes.
        let mut narrow = row(7, "N");
        narrow[0] = Some(7i32.to_be_bytes().to_vec());
        assert!(read(&copy_data(&[narrow]), 64).is_err());
        // Not COPY data at all.
        assert!(read(b"SELECT 1 is not binary copy data", 64).is_err());
        // Data after the trailer.
        let mut after = good.clone();
        after.extend_from_slice(&good[19..]);
        assert!(read(&after, 64).is_err());
    }

    #[test]
    fn only_integer_arguments_go_into_the_text() {
        let mut sql = Sql::new("SELECT seq FROM events WHERE job_id = ");
        sql.arg(Arg::I64(3));
        for i in 0..11 {
            sql.push(" AND seq > ").arg(Arg::I64(i));
        }
        let copy = copy_out_statement(&sql).unwrap();
        assert!(copy.starts_with("COPY (SELECT seq FROM events WHERE job_id = (3) AND seq > (0)"));
        assert!(copy.ends_with("AND seq > (10)) TO STDOUT (FORMAT binary)"));
        assert!(!copy.contains('$'));
        let mut sql = Sql::new("SELECT seq FROM events WHERE test_name = ");
        sql.arg(Arg::Text("x'); DROP TABLE events; --".into()));
        assert_eq!(copy_out_statement(&sql), None);
    }
}
