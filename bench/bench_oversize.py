"""Peak memory of enriching a log file with one absurd record. A measurement, not a test.

    python bench/bench_oversize.py [--field-mb 1500] [--limit-mb 16]

Writes a small gzip (a 1.5 GB userAgent of one repeated byte compresses to ~1.5 MB) holding
three records, the middle one with a userAgent of --field-mb MB, and enriches it in a fresh
process as ingest does (`workers.enrich_file`, MAX_RECORD_BYTES = --limit-mb). Reports the
gzip's size, the time, the peak RSS of that process, what was alerted and indexed, and that
the oversize record's enriched line is its text unchanged plus the flag.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENRICH = """
import json, sys, time
from pathlib import Path
from umbrellabot.enrich import workers
from umbrellabot.rules.rule import default_rules_path
workers.load_worker_rules([str(default_rules_path())], {"allowed_countries": ["US"]})
started = time.perf_counter()
result = workers.enrich_file(sys.argv[1], sys.argv[2], "bench.json.gz", 3, None, int(sys.argv[3]))
print(json.dumps({
    "seconds": round(time.perf_counter() - started, 2),
    "records": result.records,
    "alerts": sorted({a.rule_id for a in result.alerts}),
    "indexed": [e[0] for e in result.events],
}))
"""


def record(number: int, user_agent: str) -> str:
    return json.dumps(
        {
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "accountId": "111122223333"},
            "eventTime": "2026-12-02T10:00:00Z",
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateUser",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.7",
            "userAgent": user_agent,
            "requestParameters": {"userName": f"user-{number}"},
            "eventID": f"event-{number}",
            "recipientAccountId": "111122223333",
        }
    )


def write_log(path: Path, field_mb: int) -> None:
    """The middle record's userAgent is written in pieces: the generator never holds it."""
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(b'{"Records":[' + record(0, "aws-cli").encode() + b",")
        head, _, tail = record(1, "\0").partition("\\u0000")
        out.write(head.encode())
        piece = b"A" * (1 << 20)
        for _ in range(field_mb):
            out.write(piece)
        out.write(tail.encode() + b"," + record(2, "aws-cli").encode() + b"]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--field-mb", type=int, default=1500)
    parser.add_argument("--limit-mb", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        source, target = Path(scratch, "in.json.gz"), Path(scratch, "out.json.gz")
        write_log(source, args.field_mb)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", ENRICH, str(source), str(target), str(args.limit_mb << 20)],
            capture_output=True,
            text=True,
            check=True,
        )
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        outcome = json.loads(done.stdout)
        with gzip.open(target, "rb") as lines:
            lines.readline()
            size, end = 0, b""
            while not end.endswith(b"\n"):  # the long line, a MiB at a time
                piece = lines.readline(1 << 20)
                size, end = size + len(piece), (end + piece)[-200:]
        print(f"log file: {source.stat().st_size / 1e6:.1f} MB gzip, {args.field_mb} MB userAgent")
        print(
            f"enriched in {outcome['seconds']} s"
            f" ({time.perf_counter() - started:.1f} s with startup)"
        )
        print(f"peak RSS of the enriching process: {peak_mb:.0f} MB")
        print(
            f"records {outcome['records']}, alerts {outcome['alerts']},"
            f" indexed {outcome['indexed']}"
        )
        mark = b',"xpriority":"HIGH","xrules":["umbrellabot-record-too-large"]}\n'
        print(f"oversize line: {size / 1e6:.0f} MB, ends with the flag: {end.endswith(mark)}")


if __name__ == "__main__":
    main()
