-- prova store schema, version 2: job leases and target locks, for several
-- `prova serve` instances on one database.
--
-- A lease says which instance runs a job, until `expires_at` (microseconds);
-- the owner renews it while it runs (heartbeat); once it has expired,
-- another instance may take the job over.
CREATE TABLE job_leases (
    job_id     BIGINT PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    owner      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX job_leases_owner ON job_leases (owner);

-- A target is held by at most one job at a time, until `expires_at`; the
-- holder refreshes it (ConTest's DB locker semantics).
CREATE TABLE target_locks (
    target_id  TEXT   PRIMARY KEY,
    job_id     BIGINT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX target_locks_job ON target_locks (job_id);
