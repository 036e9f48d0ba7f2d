-- prova store schema, version 5: cheaper event appends and a saved status
-- per job (issue 13). Keep this file and ../sqlite/0005_event_speed.sql the
-- same schema.
--
-- 1. `events` loses its foreign key to `jobs`: on PostgreSQL it is a
--    row-level trigger per inserted event (100k events: 1.02 s with it,
--    0.64 s without, in the server alone). The store checks each batch's
--    jobs once instead (the `jobs.event_count` update below fails to find
--    a job that does not exist) and deletes a job's events itself where it
--    deletes the job.
-- 2. `events_job_run` and `events_job_name` go: each costs appends a
--    quarter of their time (PostgreSQL, 100k events: 0.54 s with the
--    primary key alone, 0.75-0.80 s with `events_job_seq`, 1.02-1.19 s
--    with `events_job_name` too), and no frequent read needs them: a
--    job's events by run, name, test, step or target are read by
--    `events_job_seq` and filtered, and a status reads only the events
--    after its saved status (see docs/store.md for the plan of every read).
-- 3. `jobs.event_count` counts a job's events, updated by every append in
--    the same transaction: the append's check that the job exists, and how
--    the writer knows its running status covers every event of the job.
-- 4. `job_status` holds each job's status as of its event `last_seq`,
--    saved by the writer (see docs/store.md): a status is read as that plus
--    the job's events after `last_seq`.
ALTER TABLE events DROP CONSTRAINT events_job_id_fkey;
DROP INDEX events_job_run;
DROP INDEX events_job_name;

ALTER TABLE jobs ADD COLUMN event_count BIGINT NOT NULL DEFAULT 0;
UPDATE jobs SET event_count = (SELECT count(*) FROM events WHERE events.job_id = jobs.id);

CREATE TABLE job_status (
    job_id   BIGINT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    last_seq BIGINT NOT NULL,                            -- covers the job's events with seq <= this
    status   TEXT   NOT NULL                             -- JSON: prova_core::status::JobStatus
);
