//! The history reads: the newest jobs of a name, and only their history
//! events, pre-filtered by text, on every backend.

use prova_core::{EventKind, JobId, NewEvent, Target};
use prova_store::history::{HISTORY_EVENT_NAMES, HistoryEventFilter, HistoryStore};
use prova_store::{EventStore, JobStore, NewJob, SqlStore};
use serde_json::json;

mod support;

fn ev(job: JobId, test: &str, name: &str, payload: Option<serde_json::Value>) -> NewEvent {
    NewEvent {
        kind: EventKind::Test,
        job_id: job,
        run_id: 1,
        test_name: Some(test.into()),
        test_attempt: Some(0),
        step_label: Some("s".into()),
        target: Some(Target::with_id("t1")),
        name: name.into(),
        payload,
        emit_time: jiff::Timestamp::now(),
    }
}

async fn job(store: &SqlStore, name: &str) -> JobId {
    store
        .create_job(NewJob {
            name: name.into(),
            extended_descriptor: format!("{{\"name\": {name:?}}}"),
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn reads_the_newest_jobs_of_a_name_and_only_their_history_events() {
    support::for_each_backend(|store| async move {
        let a1 = job(&store, "nightly").await;
        let b = job(&store, "other").await;
        let a2 = job(&store, "nightly").await;
        let a3 = job(&store, "nightly").await;
        let case = |name: &str| {
            json!({"Suite": "s", "Name": name, "Classname": "pkg.Class", "Status": "passed", "File": "j.xml"})
        };
        let mut events = Vec::new();
        for j in [a1, b, a2, a3] {
            events.push(ev(j, "Boot test", "TestStarted", None));
            events.push(ev(j, "Boot test", "CmdStdout", Some(json!({"Msg": "Boot test noise"}))));
            events.push(ev(j, "Boot test", "TestCaseResult", Some(case("quote \" and ünïcode"))));
            events.push(ev(j, "Boot test", "TestCaseResult", Some(case("other_case"))));
            events.push(ev(j, "Other", "TestFinished", Some(json!({"Success": true}))));
        }
        store.append_events(&events).await.unwrap();

        let named = store.jobs_named("nightly", 2).await.unwrap();
        assert_eq!(named.iter().map(|j| j.id).collect::<Vec<_>>(), [a3, a2]);
        assert_eq!(named[0].extended_descriptor, "{\"name\": \"nightly\"}");
        assert_eq!(store.newest_jobs(10).await.unwrap().len(), 4);
        let by_id = store.history_jobs(&[a2, 999_999, a1]).await.unwrap();
        assert_eq!(by_id.iter().map(|j| j.id).collect::<Vec<_>>(), [a2, a1]);

        let all = store
            .history_events(&HistoryEventFilter {
                jobs: vec![a2, a3],
                contains: None,
            })
            .await
            .unwrap();
        assert_eq!(all.len(), 8, "4 history events per job; CmdStdout left out");
        assert!(all.iter().all(|e| HISTORY_EVENT_NAMES.contains(&e.name.as_str())));
        assert!(all.is_sorted_by_key(|e| e.seq));

        // Test events by test name; cases by payload text (JSON-escaped).
        let filtered = |text: &str| {
            let store = &store;
            let text = text.to_string();
            async move {
                store
                    .history_events(&HistoryEventFilter {
                        jobs: vec![a3],
                        contains: Some(text),
                    })
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| e.event.name)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(filtered("Boot").await, ["TestStarted"]);
        assert_eq!(filtered("quote \" and ün").await, ["TestCaseResult"]);
        assert_eq!(filtered("Class").await, ["TestCaseResult", "TestCaseResult"]);
        assert!(filtered("boot").await.is_empty(), "case-sensitive on both backends");
        assert!(filtered("100%").await.is_empty(), "no LIKE wildcards");
    })
    .await;
}
