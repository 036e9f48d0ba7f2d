-- prova store schema, version 7: a job's artifacts in the store (issue 11),
-- so every `prova serve` instance on the same store serves them, not only
-- the one whose steps fetched them. Keep this file and
-- ../postgres/0007_artifacts.sql the same schema.
--
-- `artifacts` has one row per file a step kept (its results directory),
-- `path` relative to the job's artifacts directory
-- (`run-<n>/<test>/attempt-<a>/<step>/<target>/<file>`). `stored` = 0: the
-- file was over the store's limits (see docs/store.md) and stays on the
-- disk of the instance that ran the step only; it has no chunks.
--
-- The content is in `artifact_chunks`, in pieces of at most 1 MiB
-- (`seq` 0, 1, ...): a download reads one piece at a time, so a server
-- holds 1 MiB per download, not the whole file, on both backends.
CREATE TABLE artifacts (
    job_id    BIGINT  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    path      TEXT    NOT NULL,
    bytes     BIGINT  NOT NULL,
    stored    BIGINT  NOT NULL CHECK (stored IN (0, 1)),
    kept_at   BIGINT  NOT NULL,                          -- microseconds
    PRIMARY KEY (job_id, path)
);

CREATE TABLE artifact_chunks (
    job_id    BIGINT  NOT NULL,
    path      TEXT    NOT NULL,
    seq       BIGINT  NOT NULL,
    data      BLOB    NOT NULL,
    PRIMARY KEY (job_id, path, seq),
    FOREIGN KEY (job_id, path) REFERENCES artifacts (job_id, path) ON DELETE CASCADE
);
