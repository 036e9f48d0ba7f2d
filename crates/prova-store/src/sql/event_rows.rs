//! Decoding events read from the store: a row per event, or (SQLite) many
//! events packed into one row.

use prova_core::{Event, EventKind, NewEvent, Target};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{corrupt, from_micros, to_u32};
use crate::{Result, StoreError};

/// The columns of an event, in the order the decoders here expect them.
pub(super) const EVENT_COLUMNS: &str = "seq, job_id, kind, run_id, test_name, test_attempt, \
                                        step_label, target, name, payload, emit_time";

/// An event's columns, borrowed from a row or a packed chunk.
pub(super) struct EventParts<'a> {
    pub(super) seq: i64,
    pub(super) job_id: i64,
    pub(super) kind: &'a str,
    pub(super) run_id: i64,
    pub(super) test_name: Option<&'a str>,
    pub(super) test_attempt: Option<i64>,
    pub(super) step_label: Option<&'a str>,
    pub(super) target: Option<&'a str>,
    pub(super) name: &'a str,
    pub(super) payload: Option<&'a str>,
    pub(super) emit_time: i64,
}

impl EventParts<'_> {
    pub(super) fn into_event(self) -> Result<Event> {
        let seq = self.seq;
        let kind = event_kind(seq, self.kind)?;
        let target = match self.target {
            Some(t) => Some(
                serde_json::from_str::<Target>(t)
                    .map_err(|e| corrupt("event target", format!("seq {seq}: {e}")))?,
            ),
            None => None,
        };
        let payload = match self.payload {
            Some(p) => Some(
                serde_json::from_str::<serde_json::Value>(p)
                    .map_err(|e| corrupt("event payload", format!("seq {seq}: {e}")))?,
            ),
            None => None,
        };
        Ok(Event {
            seq,
            event: NewEvent {
                kind,
                job_id: self.job_id,
                run_id: to_u32("event run_id", self.run_id)?,
                test_name: self.test_name.map(str::to_owned),
                test_attempt: match self.test_attempt {
                    Some(a) => Some(to_u32("event test_attempt", a)?),
                    None => None,
                },
                step_label: self.step_label.map(str::to_owned),
                target,
                name: self.name.to_owned(),
                payload,
                emit_time: from_micros("event emit_time", self.emit_time)?,
            },
        })
    }
}

/// A stored event kind.
fn event_kind(seq: i64, kind: &str) -> Result<EventKind> {
    match kind {
        "job" => Ok(EventKind::Job),
        "test" => Ok(EventKind::Test),
        other => Err(corrupt("event kind", format!("seq {seq}: {other:?}"))),
    }
}

/// An event row, selected as [`EVENT_COLUMNS`], from `Any` or from a
/// backend's own driver.
pub(super) fn event_from_row<'r, R>(row: &'r R) -> Result<Event>
where
    R: Row,
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let get = |e: sqlx::Error| corrupt("event row", e);
    EventParts {
        seq: row.try_get(0).map_err(get)?,
        job_id: row.try_get(1).map_err(get)?,
        kind: row.try_get(2).map_err(get)?,
        run_id: row.try_get(3).map_err(get)?,
        test_name: row.try_get(4).map_err(get)?,
        test_attempt: row.try_get(5).map_err(get)?,
        step_label: row.try_get(6).map_err(get)?,
        target: row.try_get(7).map_err(get)?,
        name: row.try_get(8).map_err(get)?,
        payload: row.try_get(9).map_err(get)?,
        emit_time: row.try_get(10).map_err(get)?,
    }
    .into_event()
}

/// Events per packed row when reading from SQLite.
pub(super) const EVENTS_PER_PACK: usize = 1024;

/// Wraps an event SELECT (columns [`EVENT_COLUMNS`], ordered by seq) so
/// SQLite returns its rows packed, up to [`EVENTS_PER_PACK`] per row, as
/// one text (see [`PackReader`] for the format). sqlx's SQLite driver hands
/// every row from its worker thread to the caller's task and copies every
/// value on the way; `Any` copies each value again: for 100,000 events
/// that was over half of a read. Packing cuts it to ~100 rows.
/// (PostgreSQL reads binary `COPY` instead, see [`super::pg_copy_out`]:
/// its `json_agg`, and this packing with `string_agg`, were slower than
/// even plain rows, 161–175 ms against 140–154 ms for 100,000 events.)
///
/// The pack is not JSON: JSON made SQLite escape every string and this
/// side unescape it into a new one, and the payload (itself JSON) was
/// parsed twice. Here each text is its byte length and its bytes, copied
/// as they are, and read back as borrowed slices.
pub(super) fn packed_events_sql(inner: &str) -> String {
    let text = |c: &str| format!("ifnull(octet_length({c}) || ':' || {c}, '-')");
    format!(
        "SELECT group_concat(seq || ',' || job_id || ',' || run_id || ',' || \
         ifnull(test_attempt, '') || ',' || emit_time || ',' || {} || {} || {} || {} || {} || {}, '') \
         FROM ({inner}) GROUP BY seq / {EVENTS_PER_PACK} ORDER BY min(seq)",
        text("kind"),
        text("test_name"),
        text("step_label"),
        text("target"),
        text("name"),
        text("payload"),
    )
}

/// Reads a pack made by [`packed_events_sql`]: per event, the integers
/// `seq,job_id,run_id,test_attempt,emit_time,` (an empty `test_attempt`
/// is NULL), then kind, test name, step label, target, name and payload,
/// each `<bytes>:<text>` or `-` for NULL. Hand-written because the format
/// is ours: a dozen lines, and no copy of any text it does not keep.
struct PackReader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> PackReader<'a> {
    fn bad(&self, what: &str) -> StoreError {
        corrupt("packed events", format!("{what} at byte {}", self.at))
    }

    /// Digits (and a sign) up to `end`, which is consumed.
    fn int(&mut self, end: u8) -> Result<Option<i64>> {
        let rest = &self.text.as_bytes()[self.at..];
        let len = rest
            .iter()
            .position(|&b| b == end)
            .ok_or_else(|| self.bad("unterminated number"))?;
        let digits = &self.text[self.at..self.at + len];
        self.at += len + 1;
        if digits.is_empty() {
            return Ok(None);
        }
        digits
            .parse()
            .map(Some)
            .map_err(|_| self.bad("not a number"))
    }

    fn required_int(&mut self) -> Result<i64> {
        self.int(b',')?.ok_or_else(|| self.bad("missing number"))
    }

    /// `<bytes>:<text>` or `-` (NULL).
    fn text(&mut self) -> Result<Option<&'a str>> {
        if self.text.as_bytes().get(self.at) == Some(&b'-') {
            self.at += 1;
            return Ok(None);
        }
        let len = self.int(b':')?.ok_or_else(|| self.bad("missing length"))?;
        let len = usize::try_from(len).map_err(|_| self.bad("negative length"))?;
        let end = self.at.checked_add(len).ok_or_else(|| self.bad("length"))?;
        let t = self
            .text
            .get(self.at..end)
            .ok_or_else(|| self.bad("text past the pack's end"))?;
        self.at = end;
        Ok(Some(t))
    }

    fn required_text(&mut self) -> Result<&'a str> {
        self.text()?.ok_or_else(|| self.bad("missing text"))
    }

    fn event(&mut self) -> Result<Event> {
        let seq = self.required_int()?;
        let job_id = self.required_int()?;
        let run_id = self.required_int()?;
        let test_attempt = self.int(b',')?;
        let emit_time = self.required_int()?;
        EventParts {
            seq,
            job_id,
            run_id,
            test_attempt,
            emit_time,
            kind: self.required_text()?,
            test_name: self.text()?,
            step_label: self.text()?,
            target: self.text()?,
            name: self.required_text()?,
            payload: self.text()?,
        }
        .into_event()
    }
}

/// Decodes a packed row (see [`packed_events_sql`]) onto `out`.
pub(super) fn events_from_packed(row: &AnyRow, out: &mut Vec<Event>) -> Result<()> {
    let text: &str = row.try_get(0).map_err(|e| corrupt("packed events", e))?;
    let mut r = PackReader { text, at: 0 };
    while r.at < text.len() {
        out.push(r.event()?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Result<Vec<Event>> {
        let mut r = PackReader { text, at: 0 };
        let mut out = Vec::new();
        while r.at < text.len() {
            out.push(r.event()?);
        }
        Ok(out)
    }

    #[test]
    fn a_pack_reads_back_its_texts_as_they_are() {
        let target = r#"{"ID":"h:1"}"#;
        let pack = format!(
            "7,1,2,,1700000000000000,4:test3:a:b-{}:{target}5:N,:é-8,1,2,0,1700000000000001,3:job--------",
            target.len()
        );
        // The second event has no name: an error, not a guess.
        assert!(read_all(&pack).is_err());
        let pack = format!(
            "7,1,2,,1700000000000000,4:test3:a:b-{}:{target}5:N,:é-8,1,2,0,1700000000000001,3:job---1:x4:null",
            target.len()
        );
        let events = read_all(&pack).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].test_name.as_deref(), Some("a:b"));
        assert_eq!(events[0].step_label, None);
        assert_eq!(events[0].target.as_ref().unwrap().id, "h:1");
        assert_eq!(events[0].name, "N,:é");
        assert_eq!(events[0].payload, None);
        assert_eq!(events[1].test_attempt, Some(0));
        assert_eq!(events[1].payload, Some(serde_json::Value::Null));
    }

    #[test]
    fn a_broken_pack_is_an_error_not_a_panic() {
        for bad in [
            "1,2",
            "1,2,3,,4,3:job-",
            "1,2,3,,4,99:job",
            "x,2,3,,4,-",
            "1,2,3,,4,4:test1:é",
            "1,2,3,,4,-1:x",
            "1,2,3,,4,99999999999999999999:x",
        ] {
            let err = read_all(bad).expect_err(bad);
            assert!(err.to_string().contains("packed events"), "{bad}: {err}");
        }
    }
}
