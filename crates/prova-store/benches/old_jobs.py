"""Fills a prova SQLite store with old ended jobs, for measuring `prova
prune` (docs/store.md, "Pruning").

Usage: python3 old_jobs.py DB JOBS EVENTS_PER_JOB NAMES DAYS_AGO

DB must already be a prova store (any prova command that writes creates
one, e.g. `prova run --db DB examples/hello.yaml`). Adds JOBS jobs named
job0..job{NAMES-1} in turn, each Completed DAYS_AGO days ago with one tag,
EVENTS_PER_JOB step-output events (~190 bytes each, as in `prova bench
store`) and a saved status row: what `prova prune` deletes. Then:

    /usr/bin/time prova prune --older-than 30d --db DB
    RUST_LOG=prova_store=debug prova prune --older-than 30d --db DB   # per batch
"""

import json
import sqlite3
import sys
import time


def main():
    db, jobs, per_job, names, days = sys.argv[1], *map(int, sys.argv[2:6])
    conn = sqlite3.connect(db)
    ended = int(time.time() * 1e6) - days * 86_400 * 1_000_000
    payload = json.dumps({"Msg": "x" * 120})
    target = json.dumps({"ID": "host-1", "FQDN": "host-1.example"})
    cur = conn.cursor()
    for j in range(jobs):
        cur.execute(
            "INSERT INTO jobs (name, tags, created_at, state, state_time, event_count) "
            "VALUES (?, '[\"nightly\"]', ?, 'Completed', ?, ?)",
            (f"job{j % names}", ended, ended, per_job),
        )
        job = cur.lastrowid
        cur.execute("INSERT INTO job_tags (tag, job_id) VALUES ('nightly', ?)", (job,))
        cur.executemany(
            "INSERT INTO events (job_id, kind, run_id, test_name, test_attempt, step_label, "
            "target_id, target, name, payload, emit_time) "
            "VALUES (?, 'test', 1, 't', 0, 's', 'host-1', ?, 'CmdStdout', ?, ?)",
            ((job, target, payload, ended + i) for i in range(per_job)),
        )
        cur.execute(
            "INSERT INTO job_status (job_id, last_seq, status) VALUES (?, 0, '{}')", (job,)
        )
    conn.commit()


if __name__ == "__main__":
    main()
