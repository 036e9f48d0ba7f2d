-- prova store schema, version 3: API coverage reports become job events,
-- and the tables nothing reads go.
--
-- `prova coverage report --job ID` now appends a `CoverageReport` job event
-- (payload: the report; run: `--run`, else 0), so a report shows with the
-- job's other events. The reports a store already holds move there, in the
-- order they were attached, at the time they were attached.
INSERT INTO events (job_id, kind, run_id, name, payload, emit_time)
SELECT job_id, 'job', COALESCE(run_id, 0), 'CoverageReport', report, created_at
FROM coverage
ORDER BY id;
DROP TABLE coverage;

-- Reporters' verdicts are `RunReport` / `FinalReport` events; no prova
-- command ever wrote this table.
DROP TABLE reports;
