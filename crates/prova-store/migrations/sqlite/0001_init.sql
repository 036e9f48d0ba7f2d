-- prova store schema, version 1 (SQLite).
--
-- Keep this file and ../postgres/0001_init.sql the same schema: they differ
-- only where the two dialects must (auto-numbered ids).
-- Times are BIGINT microseconds since the Unix epoch (UTC); JSON is TEXT.
-- Later migrations (0002_...) for multi-instance PostgreSQL (servers,
-- leases, target locks) go into both folders with the same number.

CREATE TABLE jobs (
    -- AUTOINCREMENT: a job id is never reused, even after the newest job is deleted.
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    name                TEXT    NOT NULL,
    tags                TEXT    NOT NULL DEFAULT '[]',   -- JSON array of strings
    requestor           TEXT    NOT NULL DEFAULT '',
    descriptor          TEXT    NOT NULL DEFAULT '',     -- JSON, as submitted
    extended_descriptor TEXT    NOT NULL DEFAULT '',     -- JSON, fetched steps resolved
    source_path         TEXT,
    created_at          BIGINT  NOT NULL,
    state               TEXT,                            -- JobState short name, NULL before the first state event
    state_time          BIGINT
);
CREATE INDEX jobs_state_id ON jobs (state, id);
CREATE INDEX jobs_requestor_id ON jobs (requestor, id);

-- One row per (job, tag): lets "jobs with all of these tags" use an index.
CREATE TABLE job_tags (
    tag    TEXT   NOT NULL,
    job_id BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, job_id)
);
CREATE INDEX job_tags_job ON job_tags (job_id);

CREATE TABLE events (
    -- seq orders events totally; rows are never deleted except with their job.
    seq          INTEGER PRIMARY KEY,
    job_id       BIGINT  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('job', 'test')),
    run_id       BIGINT  NOT NULL,
    test_name    TEXT,
    test_attempt BIGINT,
    step_label   TEXT,
    target_id    TEXT,                                   -- copy of target.ID, for filtering
    target       TEXT,                                   -- JSON object (ConTest field names)
    name         TEXT    NOT NULL,
    payload      TEXT,                                   -- JSON value
    emit_time    BIGINT  NOT NULL
);
-- Every index costs appends dearly (measured on SQLite, 100k events in
-- batches of 1000: these three ~140k events/s; plus a target_id index ~90k).
-- Queries by run, test, step or target within a job use events_job_seq or
-- events_job_run and filter; a query by target across all jobs scans.
CREATE INDEX events_job_seq ON events (job_id, seq);
CREATE INDEX events_job_name ON events (job_id, name);
CREATE INDEX events_job_run ON events (job_id, run_id);

CREATE TABLE reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id      BIGINT  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    run_id      BIGINT,                                  -- NULL: final report
    reporter    TEXT    NOT NULL,
    success     BIGINT  NOT NULL CHECK (success IN (0, 1)),  -- no BOOLEAN: `Any` cannot read SQLite booleans
    data        TEXT    NOT NULL,                        -- JSON value
    report_time BIGINT  NOT NULL
);
CREATE INDEX reports_job ON reports (job_id, id);

CREATE TABLE coverage (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     BIGINT  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    run_id     BIGINT,
    report     TEXT    NOT NULL,                         -- JSON
    created_at BIGINT  NOT NULL
);
CREATE INDEX coverage_job ON coverage (job_id, id);
