"""The raw-insert baseline of `prova bench store`: Python's sqlite3 inserting
the same event rows into the same schema as prova's store, the plainest
fast way to insert with SQLite (executemany over one prepared statement,
one transaction per batch).

Usage: python3 sqlite_insert.py DB ROWS BATCH

DB is a prova store freshly created by the bench (same tables, indexes,
pragmas, the job row the events reference); ROWS a JSON file of the rows
prova binds, [[job_id, kind, run_id, test_name, test_attempt, step_label,
target_id, target, name, payload, emit_time], ...], with target and payload
already JSON text. Prints the seconds the inserts took (loading ROWS is not
timed).
"""

import json
import sqlite3
import sys
import time


def main():
    db, rows_path, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(rows_path, encoding="utf-8") as f:
        rows = [tuple(r) for r in json.load(f)]
    conn = sqlite3.connect(db, isolation_level=None)
    # The pragmas prova's store sets on every connection.
    for pragma in (
        "PRAGMA busy_timeout = 5000",
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
        "PRAGMA cache_size = -16384",
    ):
        conn.execute(pragma)
    sql = (
        "INSERT INTO events (job_id, kind, run_id, test_name, test_attempt, "
        "step_label, target_id, target, name, payload, emit_time) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    )
    start = time.perf_counter()
    for i in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows[i : i + batch])
        conn.execute("COMMIT")
    took = time.perf_counter() - start
    (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
    if count != len(rows):
        sys.exit(f"inserted {count} rows, expected {len(rows)}")
    conn.close()
    print(f"{took:.6f}")


if __name__ == "__main__":
    main()
