-- prova store schema, version 6: what the jobs list shows is kept on the
-- job's row (issue 13), not read from its events per request. Keep this
-- file and ../postgres/0006_job_list.sql the same schema.
--
-- 1. `jobs.verdict` is the job's verdict (`passed`, `failed`, `error`,
--    `cancelled`: prova_core::status::Verdict) as `prova status` gives
--    it, written by the store when an append moves the job to a final
--    state. NULL while the job has not ended, and for jobs that ended
--    before this migration (the readers compute those as before).
-- 2. `jobs.name_folded` is the job's name lower-cased (by prova, with
--    Rust's Unicode `to_lowercase`), so the jobs list's "name contains"
--    filter is one case-insensitive `LIKE` that both backends answer
--    alike. Rows from before this migration are folded here by the
--    database's `lower()` (on SQLite: ASCII letters only).
--    `jobs_id_name` lets the filter read that column alone: the name is
--    tested in the index, then only matching rows are read (SQLite,
--    10,000 jobs with ~2 KB descriptors, a part matching one job: 25-27 ms
--    reading every row, 0.46-0.51 ms through the index).
ALTER TABLE jobs ADD COLUMN verdict TEXT;
ALTER TABLE jobs ADD COLUMN name_folded TEXT NOT NULL DEFAULT '';
UPDATE jobs SET name_folded = lower(name);
CREATE INDEX jobs_id_name ON jobs (id, name_folded);
