#!/usr/bin/env python3
"""Yardstick: read an audit log (JSON lines) with a plain json.loads loop.

Usage: python3 json_loads.py AUDIT_LOG
Prints the throughput in MB/s, as `prova coverage bench --python` reports it.
"""
import json
import sys
import time


def main() -> None:
    path = sys.argv[1]
    total = 0
    events = 0
    start = time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            total += len(line)
            if line.strip():
                ev = json.loads(line)
                # touch the fields coverage needs, like prova does
                ev.get("verb"), ev.get("requestURI"), ev.get("userAgent")
                events += 1
    secs = time.perf_counter() - start
    print(f"{total / 1e6:.1f} MB, {events} events in {secs:.2f} s = {total / 1e6 / secs:.1f} MB/s")


if __name__ == "__main__":
    main()
