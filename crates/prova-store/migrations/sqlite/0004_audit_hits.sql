-- prova store schema, version 4: the live audit sink's hits.
--
-- One row per API request seen by `POST /api/v1/audit/events` (the
-- kube-apiserver audit webhook), mapped to its endpoint by the coverage
-- rules. `audit_id` is unique: the API server retries a failed batch whole,
-- and a long request is audited at two stages (ResponseStarted, then
-- ResponseComplete); the first row stored wins and the others are dropped.
-- Keep this file and ../postgres/0004_audit_hits.sql the same schema.
CREATE TABLE audit_hits (
    -- Orders hits stored at the same time; the cursor of GET /api/v1/audit/hits.
    seq         INTEGER PRIMARY KEY,
    audit_id    TEXT    NOT NULL,
    endpoint    TEXT,                                    -- operation id; NULL: unmapped
    verb        TEXT    NOT NULL,
    request_uri TEXT    NOT NULL,                        -- path and query, as audited
    user_agent  TEXT,
    test_name   TEXT,                                    -- from the user agent's ` -- ` suffix
    stage       TEXT,
    time        BIGINT  NOT NULL,                        -- stageTimestamp, microseconds
    raw         TEXT                                     -- the event's JSON, only with --audit-keep-raw
);
-- Two indexes only: every index costs ingest dearly (see docs/apisnoop.md).
CREATE UNIQUE INDEX audit_hits_audit_id ON audit_hits (audit_id);
CREATE INDEX audit_hits_time ON audit_hits (time, seq);
