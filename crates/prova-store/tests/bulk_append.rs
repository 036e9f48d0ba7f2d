//! Event appends through each backend's bulk path (PostgreSQL: a binary
//! `COPY` encoded by the store; SQLite: multi-row `INSERT`s) give back
//! exactly what was appended, whatever the text holds, in order.

use prova_core::{EventKind, EventQuery, NewEvent, Target};
use prova_store::{Backend, EventStore, JobStore, NewJob, SqlStore};
use serde_json::json;

mod support;
use support::for_each_backend;

fn new_job(name: &str) -> NewJob {
    NewJob {
        name: name.into(),
        tags: vec![],
        requestor: String::new(),
        descriptor: "{}".into(),
        extended_descriptor: "{}".into(),
        source_path: None,
    }
}

fn at(us: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_microsecond(1_700_000_000_000_000 + us).unwrap()
}

/// Text that a text-format `COPY` would have to escape, that is not
/// ASCII, or that is empty (which must stay apart from `NULL`).
const AWKWARD: [&str; 9] = [
    "",
    "tab\there",
    "line\nbreak\r\nand return",
    r"back\slash \N \\N \t",
    "quote \" and ' and ,;|",
    "ünïcødé ✓ 日本語 🦀 e\u{301}",
    "\u{7f}\u{1}\u{1f} controls",
    "trailing space ",
    "PGCOPY\n\u{ff}\r\n",
];

fn awkward_events(job: i64) -> Vec<NewEvent> {
    let mut evs = Vec::new();
    for (i, s) in AWKWARD.iter().enumerate() {
        evs.push(NewEvent {
            kind: EventKind::Test,
            job_id: job,
            run_id: u32::MAX - i as u32,
            test_name: Some(s.to_string()),
            test_attempt: Some(u32::MAX),
            step_label: Some(s.to_string()),
            target: Some(Target {
                id: s.to_string(),
                fqdn: s.to_string(),
                primary_ipv4: String::new(),
                primary_ipv6: "2001:db8::1".into(),
            }),
            name: format!("{s}#{i}"),
            payload: Some(json!({"Msg": s, "Raw": [s, null, -1.5, i64::MIN, u64::MAX]})),
            emit_time: at(i as i64),
        });
        // The same text with every optional column NULL.
        evs.push(NewEvent {
            kind: EventKind::Job,
            job_id: job,
            run_id: 0,
            test_name: None,
            test_attempt: None,
            step_label: None,
            target: None,
            name: s.to_string(),
            payload: None,
            emit_time: at(-(i as i64)),
        });
        // A payload that is a bare JSON string, and one that is null.
        let mut e = NewEvent::job(job, "Str", Some(json!(s)));
        e.emit_time = at(0);
        evs.push(e);
    }
    let mut e = NewEvent::job(job, "JsonNull", Some(serde_json::Value::Null));
    e.emit_time = at(1);
    evs.push(e);
    evs
}

async fn stored(store: &SqlStore, job: i64) -> Vec<NewEvent> {
    let got = store.query_events(&EventQuery::for_job(job)).await.unwrap();
    assert!(got.windows(2).all(|w| w[0].seq < w[1].seq));
    got.into_iter().map(|e| e.event).collect()
}

#[tokio::test]
async fn awkward_text_nulls_and_extreme_numbers_round_trip() {
    for_each_backend(|store| async move {
        let j = store.create_job(new_job("awkward")).await.unwrap();
        let evs = awkward_events(j);
        store.append_events(&evs).await.unwrap();
        assert_eq!(stored(&store, j).await, evs);
    })
    .await;
}

#[tokio::test]
async fn large_payloads_and_many_parts_keep_their_order() {
    for_each_backend(|store| async move {
        let j = store.create_job(new_job("large")).await.unwrap();
        // One 3 MB payload (far over the 64 KiB parts the COPY is sent
        // in), then enough small events for several parts, then a 200 KB
        // name: each part boundary falls somewhere different.
        let big = "x\ty\n\\".repeat(750_000);
        let mut evs = vec![NewEvent::job(j, "Big", Some(json!({"Msg": big})))];
        evs.extend((0..3000).map(|i| {
            NewEvent::job(
                j,
                format!("E{i}"),
                Some(json!({"i": i, "pad": "p".repeat(i % 97)})),
            )
        }));
        evs.push(NewEvent::job(j, "ü".repeat(100_000), None));
        for (i, e) in evs.iter_mut().enumerate() {
            e.emit_time = at(i as i64);
        }
        store.append_events(&evs).await.unwrap();
        // And a second batch after it, numbered after it.
        store
            .append_events(&[NewEvent::job(j, "After", None)])
            .await
            .unwrap();
        let got = stored(&store, j).await;
        assert_eq!(got.len(), evs.len() + 1);
        assert_eq!(&got[..evs.len()], &evs[..]);
        assert_eq!(got.last().unwrap().name, "After");
    })
    .await;
}

#[tokio::test]
async fn a_batch_the_server_refuses_leaves_nothing_and_the_store_works_on() {
    for_each_backend(|store| async move {
        // PostgreSQL's text cannot hold a NUL byte: the COPY fails on the
        // server, mid-batch. SQLite stores it; nothing to refuse there.
        if store.backend() != Backend::Postgres {
            return;
        }
        let j = store.create_job(new_job("refused")).await.unwrap();
        store
            .append_events(&[NewEvent::job(j, "Before", None)])
            .await
            .unwrap();
        let mut bad: Vec<NewEvent> = (0..2000)
            .map(|i| NewEvent::job(j, format!("B{i}"), None))
            .collect();
        bad[1500].name = "nul\0byte".into();
        assert!(store.append_events(&bad).await.is_err());
        // The pool's connections all still work, and counts are right.
        for i in 0..12 {
            store
                .append_events(&[NewEvent::job(j, format!("After{i}"), None)])
                .await
                .unwrap();
        }
        let names: Vec<String> = stored(&store, j)
            .await
            .into_iter()
            .map(|e| e.name)
            .collect();
        let mut want = vec!["Before".to_string()];
        want.extend((0..12).map(|i| format!("After{i}")));
        assert_eq!(names, want);
    })
    .await;
}
