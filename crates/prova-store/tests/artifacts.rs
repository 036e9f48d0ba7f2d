//! A job's artifacts in the store (migration 0007), on every backend
//! available: binary content comes back byte for byte in pieces of
//! `ARTIFACT_CHUNK`, the job's limit decides what is stored, a file is
//! replaced whole, and paths are kept as given.

use prova_store::{
    ARTIFACT_CHUNK, ArtifactMeta, ArtifactStore, EventStore, JobStore, NewJob, PruneRule,
    PruneStore, SqlStore,
};

mod support;
use support::for_each_backend;

/// Every byte value, in an order that is not a pattern a bug could keep.
fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(2_654_435_761) >> 7) as u8 ^ seed)
        .collect()
}

/// A file's content as a downloader reads it: piece after piece until none.
async fn read_all(store: &SqlStore, job: i64, path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for seq in 0.. {
        match store.artifact_chunk(job, path, seq).await.unwrap() {
            Some(piece) => {
                assert!(piece.len() <= ARTIFACT_CHUNK, "piece {seq} too big");
                out.extend_from_slice(&piece);
            }
            None => break,
        }
    }
    out
}

async fn job(store: &SqlStore) -> i64 {
    store
        .create_job(NewJob {
            name: "artifacts".into(),
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn binary_files_round_trip_in_pieces() {
    for_each_backend(|store| async move {
        let id = job(&store).await;
        let other = job(&store).await;
        let files = [
            ("run-1/t/attempt-0/docker/host-1/junit.xml", binary(300, 1)),
            // Exactly one piece, one byte over, and several.
            (
                "run-1/t/attempt-0/docker/host-1/one",
                binary(ARTIFACT_CHUNK, 2),
            ),
            (
                "run-1/t/attempt-0/docker/host-1/one+1",
                binary(ARTIFACT_CHUNK + 1, 3),
            ),
            (
                "run-1/t/attempt-0/docker/host-1/sub/three",
                binary(3 * ARTIFACT_CHUNK - 5, 4),
            ),
            ("run-1/t/attempt-0/docker/host-1/empty", Vec::new()),
            // Names as a results directory may have them.
            (
                "run-1/t/attempt-0/docker/host-1/ü ñ 'q' %20.log",
                b"\0\xff\n".to_vec(),
            ),
        ];
        for (path, content) in &files {
            assert!(
                store
                    .put_artifact(id, path, content, u64::MAX)
                    .await
                    .unwrap()
            );
        }
        for (path, content) in &files {
            let got = read_all(&store, id, path).await;
            assert_eq!(got.len(), content.len(), "{path}");
            assert!(got == *content, "{path}: content differs");
            assert_eq!(
                store.artifact(id, path).await.unwrap(),
                Some(ArtifactMeta {
                    path: path.to_string(),
                    bytes: content.len() as u64,
                    stored: true,
                })
            );
        }
        let listed = store.list_artifacts(id, 100).await.unwrap();
        let mut want: Vec<&str> = files.iter().map(|(p, _)| *p).collect();
        want.sort();
        assert_eq!(
            listed.iter().map(|m| m.path.as_str()).collect::<Vec<_>>(),
            want
        );
        assert_eq!(store.list_artifacts(id, 2).await.unwrap().len(), 2);
        // Another job has none of them.
        assert!(store.list_artifacts(other, 100).await.unwrap().is_empty());
        assert_eq!(store.artifact(other, files[0].0).await.unwrap(), None);
        assert_eq!(
            store.artifact_chunk(other, files[0].0, 0).await.unwrap(),
            None
        );

        // Storing a file again replaces it whole: a shorter one leaves no
        // piece of the longer behind.
        let path = files[3].0;
        assert!(
            store
                .put_artifact(id, path, b"short", u64::MAX)
                .await
                .unwrap()
        );
        assert_eq!(read_all(&store, id, path).await, b"short");
        assert_eq!(store.artifact(id, path).await.unwrap().unwrap().bytes, 5);
    })
    .await;
}

#[tokio::test]
async fn the_job_limit_keeps_files_on_disk_only_past_it() {
    for_each_backend(|store| async move {
        let id = job(&store).await;
        let limit = 10u64;
        assert!(
            store
                .put_artifact(id, "a", &binary(6, 0), limit)
                .await
                .unwrap()
        );
        // 6 + 4 = the limit exactly: stored.
        assert!(
            store
                .put_artifact(id, "b", &binary(4, 0), limit)
                .await
                .unwrap()
        );
        // One byte over: recorded, not stored.
        assert!(
            !store
                .put_artifact(id, "c", &binary(1, 0), limit)
                .await
                .unwrap()
        );
        let c = store.artifact(id, "c").await.unwrap().unwrap();
        assert_eq!((c.bytes, c.stored), (1, false));
        assert_eq!(store.artifact_chunk(id, "c", 0).await.unwrap(), None);
        // Replacing a stored file counts its new size, not both.
        assert!(
            store
                .put_artifact(id, "a", &binary(5, 1), limit)
                .await
                .unwrap()
        );
        assert!(
            store
                .put_artifact(id, "c", &binary(1, 0), limit)
                .await
                .unwrap()
        );
        assert_eq!(read_all(&store, id, "c").await, binary(1, 0));

        // A file over the per-file limit is only recorded.
        store
            .put_unstored_artifact(id, "huge", 1 << 40)
            .await
            .unwrap();
        let huge = store.artifact(id, "huge").await.unwrap().unwrap();
        assert_eq!((huge.bytes, huge.stored), (1 << 40, false));
        assert_eq!(store.artifact_chunk(id, "huge", 0).await.unwrap(), None);
        // It does not count against the job's limit.
        assert!(
            !store
                .put_artifact(id, "d", &binary(1, 0), limit)
                .await
                .unwrap()
        );
        assert!(store.put_artifact(id, "d", &[], limit).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn artifacts_of_an_unknown_job_are_refused_and_pruned_with_their_job() {
    for_each_backend(|store| async move {
        assert!(store.put_artifact(999, "x", b"x", u64::MAX).await.is_err());

        let id = job(&store).await;
        let kept = job(&store).await;
        store
            .put_artifact(id, "x", &binary(3 * ARTIFACT_CHUNK / 2, 9), u64::MAX)
            .await
            .unwrap();
        store
            .put_artifact(kept, "x", b"kept", u64::MAX)
            .await
            .unwrap();
        // Prune selects ended jobs only: end the first.
        store
            .append_events(&[prova_core::NewEvent::job(
                id,
                prova_core::JobState::Completed.event_name(),
                None,
            )])
            .await
            .unwrap();
        let rule = PruneRule {
            ended_before: jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60),
            keep_last: None,
        };
        assert_eq!(store.prune_jobs(&rule).await.unwrap().jobs, 1);
        assert!(store.list_artifacts(id, 10).await.unwrap().is_empty());
        assert_eq!(store.artifact_chunk(id, "x", 0).await.unwrap(), None);
        assert_eq!(read_all(&store, kept, "x").await, b"kept");
    })
    .await;
}
