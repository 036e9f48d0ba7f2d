//! The live audit sink's hits (migration 0004), on every backend available:
//! dedupe by audit ID, time windows, case-sensitive LIKE filters that mean
//! the same on SQLite and PostgreSQL, and paging by cursor.

use prova_store::{AuditHitCursor, AuditHitQuery, AuditHitStore, NewAuditHit};

mod support;
use support::for_each_backend;

fn ts(s: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn hit(id: &str, endpoint: Option<&str>, ua: Option<&str>, at: i64) -> NewAuditHit {
    NewAuditHit {
        audit_id: id.into(),
        endpoint: endpoint.map(str::to_string),
        verb: "get".into(),
        request_uri: format!("/apis/batch/v1/namespaces/ns/jobs/{id}/status?x=1"),
        user_agent: ua.map(str::to_string),
        test_name: ua
            .and_then(|u| u.split_once(" -- "))
            .map(|(_, t)| t.to_string()),
        stage: Some("ResponseComplete".into()),
        time: ts(at),
        raw: None,
    }
}

const E2E: &str =
    "e2e.test/v1.36.0 (linux/amd64) prova -- [sig-apps] Job should apply changes to a job status";

fn ids(hits: &[prova_store::AuditHit]) -> Vec<&str> {
    hits.iter().map(|h| h.audit_id.as_str()).collect()
}

#[tokio::test]
async fn hits_dedupe_filter_and_page() {
    for_each_backend(|store| async move {
        let batch = vec![
            hit("a", Some("readBatchV1NamespacedJobStatus"), Some(E2E), 1),
            hit("b", Some("patchBatchV1NamespacedJobStatus"), Some(E2E), 2),
            hit("c", None, Some("kubelet/v1.36.0"), 3),
            // A second stage of "a" in the same batch: dropped.
            NewAuditHit {
                stage: Some("ResponseStarted".into()),
                ..hit("a", Some("x"), None, 9)
            },
            hit("d", Some("listCoreV1Node"), None, 4),
            hit("e", Some("Weird_[*?]Name"), Some("e2e.TEST other"), 5),
        ];
        assert_eq!(store.insert_audit_hits(&batch).await.unwrap(), 5);
        // The API server retries a failed batch whole: nothing new.
        assert_eq!(store.insert_audit_hits(&batch).await.unwrap(), 0);
        assert_eq!(store.insert_audit_hits(&[]).await.unwrap(), 0);

        let all = AuditHitQuery {
            limit: 100,
            ..Default::default()
        };
        let got = store.query_audit_hits(&all).await.unwrap();
        assert_eq!(ids(&got), ["a", "b", "c", "d", "e"]);
        let a = &got[0];
        assert_eq!(
            a.endpoint.as_deref(),
            Some("readBatchV1NamespacedJobStatus")
        );
        assert_eq!(a.stage.as_deref(), Some("ResponseComplete"));
        assert_eq!(a.time, ts(1));
        assert_eq!(
            a.test_name.as_deref(),
            Some("[sig-apps] Job should apply changes to a job status")
        );
        assert_eq!(got[2].endpoint, None);

        let q = |f: fn(&mut AuditHitQuery)| {
            let mut q = all.clone();
            f(&mut q);
            q
        };
        let window = q(|q| {
            q.since = Some(ts(2));
            q.until = Some(ts(4));
        });
        assert_eq!(
            ids(&store.query_audit_hits(&window).await.unwrap()),
            ["b", "c"]
        );
        // The tickets' query: e2e agents whose test name says "should".
        let e2e = q(|q| q.user_agent = Some("e2e%should%".into()));
        assert_eq!(
            ids(&store.query_audit_hits(&e2e).await.unwrap()),
            ["a", "b"]
        );
        // Case-sensitive on both backends (SQLite's LIKE is not).
        let upper = q(|q| q.user_agent = Some("E2E%".into()));
        assert!(store.query_audit_hits(&upper).await.unwrap().is_empty());
        let status = q(|q| q.endpoint = Some("%JobStatus".into()));
        assert_eq!(
            ids(&store.query_audit_hits(&status).await.unwrap()),
            ["a", "b"]
        );
        // `_` is one character; GLOB's own wildcards are literals.
        let one = q(|q| q.endpoint = Some("Weird\\_[*?]Nam_".into()));
        assert_eq!(ids(&store.query_audit_hits(&one).await.unwrap()), ["e"]);
        let glob_syntax = q(|q| q.endpoint = Some("Weird_[*]Name".into()));
        assert!(
            store
                .query_audit_hits(&glob_syntax)
                .await
                .unwrap()
                .is_empty()
        );

        // Pages of two, each after the previous page's last hit.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .query_audit_hits(&AuditHitQuery {
                    limit: 2,
                    after,
                    ..Default::default()
                })
                .await
                .unwrap();
            seen.extend(page.iter().map(|h| h.audit_id.clone()));
            match page.last() {
                Some(last) if page.len() == 2 => {
                    after = Some(AuditHitCursor {
                        time: last.time,
                        seq: last.seq,
                    })
                }
                _ => break,
            }
        }
        assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    })
    .await;
}

#[tokio::test]
async fn many_hits_in_one_call_span_several_statements() {
    for_each_backend(|store| async move {
        let hits: Vec<NewAuditHit> = (0..1000)
            .map(|i| hit(&format!("id-{i:04}"), Some("op"), None, i % 7))
            .collect();
        assert_eq!(store.insert_audit_hits(&hits).await.unwrap(), 1000);
        let mut again = hits[990..].to_vec();
        again.push(hit("new", None, None, 0));
        assert_eq!(store.insert_audit_hits(&again).await.unwrap(), 1);
        let got = store
            .query_audit_hits(&AuditHitQuery {
                limit: 5000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(got.len(), 1001);
        assert!(got.is_sorted_by_key(|h| (h.time, h.seq)));
    })
    .await;
}

#[tokio::test]
async fn batches_committed_together_are_counted_each() {
    for_each_backend(|store| async move {
        let first = [hit("a", None, None, 1)];
        assert_eq!(store.insert_audit_hits(&first).await.unwrap(), 1);
        // Each batch counted on its own; a repeat across batches (or of a
        // stored hit) is dropped where it comes later.
        let later = [hit("f", None, None, 6), hit("g", None, None, 7)];
        let again = [hit("g", None, None, 8), hit("h", None, None, 8)];
        assert_eq!(
            store
                .insert_audit_hit_batches(&[&later, &[], &again, &first])
                .await
                .unwrap(),
            [2, 0, 1, 0]
        );
        let all = store
            .query_audit_hits(&AuditHitQuery {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ids(&all), ["a", "f", "g", "h"]);
        // The first "g" won: its time, not the repeat's.
        assert_eq!(all[2].time, ts(7));
    })
    .await;
}
