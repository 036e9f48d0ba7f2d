//! Decoding events read from the store: a row per event, or (SQLite) many
//! events packed into one row as JSON.

use std::borrow::Cow;

use prova_core::{Event, EventKind, NewEvent, Target};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{corrupt, from_micros, to_u32};
use crate::Result;

/// The columns of an event, in the order the decoders here expect them.
pub(super) const EVENT_COLUMNS: &str = "seq, job_id, kind, run_id, test_name, test_attempt, \
                                        step_label, target, name, payload, emit_time";

/// An event's columns, borrowed from a row or a packed chunk.
struct EventParts<'a> {
    seq: i64,
    job_id: i64,
    kind: &'a str,
    run_id: i64,
    test_name: Option<&'a str>,
    test_attempt: Option<i64>,
    step_label: Option<&'a str>,
    target: Option<&'a str>,
    name: &'a str,
    payload: Option<&'a str>,
    emit_time: i64,
}

impl EventParts<'_> {
    fn into_event(self) -> Result<Event> {
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
/// JSON arrays of arrays. sqlx's SQLite driver hands every row from its
/// worker thread to the caller's task and copies every value on the way;
/// `Any` copies each value again: for 100,000 events that was over half of
/// a read. Packing cuts it to ~100 rows. (PostgreSQL's `json_agg` was
/// slower than its plain rows, so PostgreSQL reads rows.)
///
/// Target and payload go in as JSON (`json(…)`), not as strings holding
/// JSON: a string would be escaped by SQLite, unescaped into a new string
/// here and parsed once more. The payload is wrapped in a one-element
/// array so that a stored JSON `null` stays distinct from no payload.
pub(super) fn packed_events_sql(inner: &str) -> String {
    format!(
        "SELECT json_group_array(json_array(seq, job_id, kind, run_id, test_name, \
         test_attempt, step_label, json(target), name, \
         CASE WHEN payload IS NULL THEN NULL ELSE json_array(json(payload)) END, emit_time)) \
         FROM ({inner}) GROUP BY seq / {EVENTS_PER_PACK} ORDER BY min(seq)"
    )
}

/// One event of a packed row: `[seq, job_id, kind, ...]`, its target an
/// object and its payload `[payload]` (see [`packed_events_sql`]).
#[derive(serde::Deserialize)]
struct PackedEvent<'a>(
    i64,
    i64,
    #[serde(borrow)] Cow<'a, str>,
    i64,
    #[serde(borrow)] Option<Cow<'a, str>>,
    Option<i64>,
    #[serde(borrow)] Option<Cow<'a, str>>,
    Option<Target>,
    #[serde(borrow)] Cow<'a, str>,
    Option<(serde_json::Value,)>,
    i64,
);

/// Decodes a packed row (see [`packed_events_sql`]) onto `out`.
pub(super) fn events_from_packed(row: &AnyRow, out: &mut Vec<Event>) -> Result<()> {
    let text: &str = row.try_get(0).map_err(|e| corrupt("packed events", e))?;
    let packed: Vec<PackedEvent<'_>> =
        serde_json::from_str(text).map_err(|e| corrupt("packed events", e))?;
    out.reserve(packed.len());
    for p in packed {
        let seq = p.0;
        out.push(Event {
            seq,
            event: NewEvent {
                kind: event_kind(seq, &p.2)?,
                job_id: p.1,
                run_id: to_u32("event run_id", p.3)?,
                test_name: p.4.map(Cow::into_owned),
                test_attempt: p.5.map(|a| to_u32("event test_attempt", a)).transpose()?,
                step_label: p.6.map(Cow::into_owned),
                target: p.7,
                name: p.8.into_owned(),
                payload: p.9.map(|(v,)| v),
                emit_time: from_micros("event emit_time", p.10)?,
            },
        });
    }
    Ok(())
}
