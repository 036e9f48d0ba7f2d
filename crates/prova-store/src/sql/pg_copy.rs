//! PostgreSQL's bulk path for event appends: the batch as one `COPY events
//! (…) FROM STDIN (FORMAT binary)`, encoded here.
//!
//! sqlx streams `COPY` data ([`sqlx::PgConnection::copy_in_raw`]) but
//! encodes none: it takes raw bytes. The binary format is small enough to
//! write by hand (a header, then per row a field count and, per field, its
//! length and bytes; see PostgreSQL's `COPY` page, "Binary Format"), and
//! it spares the server parsing text: a `bigint` is its 8 bytes in network
//! order, a `text` its UTF-8 bytes as they are (no escaping of tabs,
//! newlines or backslashes, as the text format would need).
//!
//! `COPY` fills `seq` from its identity default row by row in the order
//! the rows are sent, as `INSERT` does, so events are numbered in the
//! order given.

use prova_core::NewEvent;
use sqlx::PgConnection;
use sqlx::postgres::PgCopyIn;

use super::{corrupt, micros, q};
use crate::Result;

/// The statement; the columns in the order [`encode_event`] writes them.
pub(super) const COPY_EVENTS: &str = "COPY events (job_id, kind, run_id, test_name, \
     test_attempt, step_label, target_id, target, name, payload, emit_time) \
     FROM STDIN (FORMAT binary)";

/// Fields per row in [`COPY_EVENTS`].
const FIELDS: i16 = 11;

/// The binary format's signature, flags (none: no OIDs) and header
/// extension length (none).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// A field's length meaning `NULL`.
const NULL: i32 = -1;

/// The rows of a `COPY … FROM STDIN (FORMAT binary)` being written.
struct BinaryRows {
    buf: Vec<u8>,
}

impl BinaryRows {
    fn new() -> Self {
        let mut buf = Vec::with_capacity(PART_BYTES + 1024);
        buf.extend_from_slice(HEADER);
        BinaryRows { buf }
    }

    fn row(&mut self) {
        self.buf.extend_from_slice(&FIELDS.to_be_bytes());
    }

    fn bigint(&mut self, v: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn opt_bigint(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.bigint(v),
            None => self.null(),
        }
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(&NULL.to_be_bytes());
    }

    fn text(&mut self, what: &str, s: &str) -> Result<()> {
        self.buf
            .extend_from_slice(&field_len(what, s.len())?.to_be_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn opt_text(&mut self, what: &str, s: Option<&str>) -> Result<()> {
        match s {
            Some(s) => self.text(what, s),
            None => {
                self.null();
                Ok(())
            }
        }
    }

    /// `value` as JSON text, serialized straight into the buffer (no
    /// string of its own), its length filled in after.
    fn json(&mut self, what: &str, value: &impl serde::Serialize) -> Result<()> {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        serde_json::to_writer(&mut self.buf, value).map_err(|e| corrupt(what, e))?;
        let len = field_len(what, self.buf.len() - at - 4)?;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    fn opt_json(&mut self, what: &str, value: Option<&impl serde::Serialize>) -> Result<()> {
        match value {
            Some(v) => self.json(what, v),
            None => {
                self.null();
                Ok(())
            }
        }
    }

    /// The data, ended by the trailer (a field count of -1).
    fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

/// A field's length as the format carries it (an `i32`).
fn field_len(what: &str, len: usize) -> Result<i32> {
    i32::try_from(len).map_err(|_| corrupt(what, format!("{len} bytes, over 2 GiB")))
}

/// Sends the data in parts of about this many bytes: the server inserts
/// one part while the next is encoded.
const PART_BYTES: usize = 64 * 1024;

/// Appends one event as a row.
fn encode_event(rows: &mut BinaryRows, e: &NewEvent) -> Result<()> {
    rows.row();
    rows.bigint(e.job_id);
    rows.text("event kind", e.kind.as_str())?;
    rows.bigint(i64::from(e.run_id));
    rows.opt_text("event test name", e.test_name.as_deref())?;
    rows.opt_bigint(e.test_attempt.map(i64::from));
    rows.opt_text("event step label", e.step_label.as_deref())?;
    rows.opt_text("event target id", e.target.as_ref().map(|t| t.id.as_str()))?;
    rows.opt_json("event target", e.target.as_ref())?;
    rows.text("event name", &e.name)?;
    rows.opt_json("event payload", e.payload.as_ref())?;
    rows.bigint(micros(e.emit_time));
    Ok(())
}

/// `events` as the whole data of [`COPY_EVENTS`] (tests).
#[cfg(test)]
pub(super) fn encode_events(events: &[NewEvent]) -> Result<Vec<u8>> {
    let mut rows = BinaryRows::new();
    for e in events {
        encode_event(&mut rows, e)?;
    }
    Ok(rows.finish())
}

/// A `COPY` of events under way on a connection (in its transaction).
/// [`EventCopy::finish`] must end it; dropped unfinished, the `COPY`
/// fails and so does the transaction.
pub(super) struct EventCopy<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
}

impl<'c> EventCopy<'c> {
    pub(super) async fn begin(conn: &'c mut PgConnection) -> Result<Self> {
        let copy = conn
            .copy_in_raw(COPY_EVENTS)
            .await
            .map_err(q("append events"))?;
        Ok(EventCopy { copy })
    }

    /// Encodes `events` and sends them, a part at a time. The server
    /// inserts rows as they arrive, so once this returns only the last
    /// part's rows may still be in flight. An event that cannot be encoded
    /// aborts the `COPY` (the server drops the rows sent).
    pub(super) async fn send(mut self, events: &[NewEvent]) -> Result<Self> {
        let mut rows = BinaryRows::new();
        for e in events {
            if let Err(err) = encode_event(&mut rows, e) {
                // The server answers an abort with an error, expected.
                let _ = self.copy.abort(err.to_string()).await;
                return Err(err);
            }
            if rows.buf.len() >= PART_BYTES {
                let part = std::mem::replace(&mut rows.buf, Vec::with_capacity(PART_BYTES + 1024));
                self.copy.send(part).await.map_err(q("append events"))?;
            }
        }
        self.copy
            .send(rows.finish())
            .await
            .map_err(q("append events"))?;
        Ok(self)
    }

    /// Ends the `COPY` and waits for the server to have inserted every row.
    pub(super) async fn finish(self) -> Result<()> {
        self.copy.finish().await.map_err(q("append events"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use prova_core::{EventKind, NewEvent};

    use super::*;

    fn field(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    }

    #[test]
    fn an_event_is_encoded_field_by_field_with_nulls_as_minus_one() {
        let e = NewEvent {
            kind: EventKind::Job,
            job_id: 7,
            run_id: 2,
            test_name: None,
            test_attempt: Some(1),
            step_label: Some("a\tb\n".into()),
            target: None,
            name: "Ünï".into(),
            payload: Some(serde_json::json!({"k": "v"})),
            emit_time: jiff::Timestamp::from_microsecond(-3).unwrap(),
        };
        let got = encode_events(&[e]).unwrap();

        let mut want = b"PGCOPY\n\xff\r\n\0".to_vec();
        want.extend_from_slice(&[0; 8]); // flags, header extension length
        want.extend_from_slice(&11i16.to_be_bytes());
        field(&mut want, &7i64.to_be_bytes());
        field(&mut want, b"job");
        field(&mut want, &2i64.to_be_bytes());
        want.extend_from_slice(&(-1i32).to_be_bytes()); // test_name
        field(&mut want, &1i64.to_be_bytes());
        field(&mut want, b"a\tb\n"); // as is: no escapes in binary
        want.extend_from_slice(&(-1i32).to_be_bytes()); // target_id
        want.extend_from_slice(&(-1i32).to_be_bytes()); // target
        field(&mut want, "Ünï".as_bytes());
        field(&mut want, br#"{"k":"v"}"#);
        field(&mut want, &(-3i64).to_be_bytes());
        want.extend_from_slice(&(-1i16).to_be_bytes()); // trailer
        assert_eq!(got, want);
    }

    #[test]
    fn no_events_is_a_header_and_a_trailer() {
        let got = encode_events(&[]).unwrap();
        assert_eq!(got.len(), HEADER.len() + 2);
        assert_eq!(&got[HEADER.len()..], &[0xff, 0xff]);
    }
}
