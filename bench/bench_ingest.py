"""S3 requests and backlog speed of the ingest cycle, against moto's S3 server. A benchmark, not
a test.

    python bench/bench_ingest.py [--history-days 60] [--files 200] [--records 1000] [--quick]

moto's S3 server (ThreadedMotoServer on 127.0.0.1, in a child process: see `MotoHost`) stands in
for S3; AWS_ENDPOINT_URL points botocore at it, with fake credentials. Each cycle is a real
`Ingestor.run_cycle` from `services.ingestor(settings)`. Measured:

  1. S3 requests per cycle, independent of history. One bucket with --history-days days x 2
     accounts x 3 regions x 288 files a day (103,680 log files for 60 days, plus the processed
     copies a bot that kept up would have written), one with 2 days of the same; the files of the
     lookback window (yesterday and today, UTC) are known to the state store as done. Requests
     per S3 operation (`CycleReport.requests`) of a cycle with nothing new, then of one after 10
     new files in today's folders, side by side. Exits 1 unless both buckets take the same
     requests: that is the claim being measured.
  2. Backlog throughput: one cycle over --files files of --records records (~1.5 KB each, from
     bench_enrich.synthetic_record) in one of today's folders, with the default worker pool
     (ENRICH_WORKERS=-1: one process per core, at most 4), already started: files/s, records/s,
     MB/s (uncompressed and gzip).
  3. The longest event-loop stall during that cycle: a coroutine beside it sleeps 5 ms in a loop
     and records how late each wake-up is (max and p99). The same cycle with ENRICH_WORKERS=0
     (enrichment on one thread of this process) is measured too, for the comparison.

--moto-in-process runs moto in this process instead, as the tests do, to show what its GIL
time does to the loop. Exit codes: 0 measured, 1 the claim of (1) failed or a file failed,
2 the UTC day changed during (1) (run again).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import gzip
import hashlib
import logging
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson
from bench_enrich import synthetic_record  # bench/ is sys.path[0] when run as a script

from umbrellabot.app import services
from umbrellabot.app.ingest import Ingestor
from umbrellabot.config import Settings
from umbrellabot.model.layout import lookback_days, output_key
from umbrellabot.model.report import CycleReport
from umbrellabot.storage.sqlite import SqliteState

LOOKBACK_DAYS = 2  # the default LOOKBACK_DAYS: yesterday and today (UTC)
ACCOUNTS = ("111122223333", "444455556666")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
FILES_PER_DAY = 288  # CloudTrail delivers a file about every 5 minutes per account and region
NEW_FILES = 10
NEW_FILE_RECORDS = 5
TICK_S = 0.005
PROCESSED = "processed/"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


# moto


def _start_moto() -> tuple[Any, str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def _moto_command(command: tuple[Any, ...]) -> Any:
    """Runs where moto runs: bulk writes straight into its in-memory store (an HTTP PUT each
    would take minutes for 100,000 objects), and its CPU time."""
    from moto.backends import get_backend
    from moto.core.models import DEFAULT_ACCOUNT_ID

    backend = get_backend("s3")[DEFAULT_ACCOUNT_ID]["aws"]
    match command:
        case ("bucket", str(name)):
            backend.create_bucket(name, FAKE_AWS["AWS_REGION"])
            return None
        case ("put", str(bucket), list(items)):
            return [backend.put_object(bucket, key, body).etag.strip('"') for key, body in items]
        case ("cpu",):
            return time.process_time()
    raise ValueError(f"unknown command {command!r}")


def _moto_child(conn: Connection) -> None:
    server, endpoint = _start_moto()
    conn.send(endpoint)
    while (command := conn.recv()) is not None:
        conn.send(_moto_command(command))
    server.stop()


class MotoHost:
    """moto's S3 server, by default in a child process rather than a thread of this one: moto
    answers each request in Python holding the GIL, so in this process its work would show up as
    stalls (and CPU) of our event loop, which real S3 never costs us."""

    def __init__(self, in_process: bool) -> None:
        self._server: Any = None
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None
        if in_process:
            self._server, self.endpoint = _start_moto()
            return
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_moto_child, args=(child,), daemon=True)
        self._process.start()
        child.close()
        self.endpoint = str(self._conn.recv())

    @property
    def in_process(self) -> bool:
        return self._conn is None

    def _call(self, *command: Any) -> Any:
        if self._conn is None:
            return _moto_command(command)
        self._conn.send(command)
        return self._conn.recv()

    def create_bucket(self, name: str) -> None:
        self._call("bucket", name)

    def put(self, bucket: str, items: Sequence[tuple[str, bytes]]) -> list[str]:
        """Objects straight into moto's store; their ETags as S3 reports them (no quotes)."""
        return list(self._call("put", bucket, list(items)))

    def cpu_s(self) -> float:
        """CPU seconds moto's process has used (this process's when it runs here)."""
        return float(self._call("cpu"))

    def close(self) -> None:
        if self._server is not None:
            self._server.stop()
        if self._conn is not None and self._process is not None:
            self._conn.send(None)
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join()


# CloudTrail layout and files


def log_key(account: str, region: str, day: date, slot: int, tag: str = "") -> str:
    """A CloudTrail key; `slot` is the 5-minute slot of the day, the suffix is stable."""
    minute = slot % FILES_PER_DAY * 5
    unique = hashlib.blake2b(
        f"{account}{region}{day}{slot}{tag}".encode(), digest_size=8
    ).hexdigest()
    return (
        f"AWSLogs/{account}/CloudTrail/{region}/{day:%Y/%m/%d}/{account}_CloudTrail_{region}_"
        f"{day:%Y%m%d}T{minute // 60:02d}{minute % 60:02d}Z_{unique}.json.gz"
    )


def day_keys(days: Sequence[date]) -> list[str]:
    return [
        log_key(account, region, day, slot)
        for day in days
        for account in ACCOUNTS
        for region in REGIONS
        for slot in range(FILES_PER_DAY)
    ]


def log_file(rng: random.Random, records: int, start: int = 0) -> tuple[bytes, int]:
    """A gzip CloudTrail file (level 6, as bench_enrich); returns it and its uncompressed size."""
    raw = orjson.dumps({"Records": [synthetic_record(rng, start + i) for i in range(records)]})
    return gzip.compress(raw, compresslevel=6, mtime=0), len(raw)


def last_days(today: date, count: int) -> list[date]:
    return [today - timedelta(days=offset) for offset in range(count - 1, -1, -1)]


def make_settings(bucket: str, state_dir: Path, enrich_workers: int) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,  # a stray .env must not change what is measured
        "cloudtrail_bucket_name": bucket,
        "cloudtrail_initial_prefix": "",  # the bucket root: discovery does the whole search
        "cloudtrail_processed_prefix": PROCESSED,
        "state_dir": state_dir,
        "lookback_days": LOOKBACK_DAYS,
        "enrich_workers": enrich_workers,
        "rules_path": [],  # the packaged default pack
        "ipstack_access_key": None,  # offline geo-IP only
        "aws_region": None,
    }
    return Settings(**values)


def pool_size(settings: Settings) -> int:
    """As Ingestor sizes its pool."""
    if settings.enrich_workers > 0:
        return settings.enrich_workers
    return min(os.cpu_count() or 1, 4)


class LoopLag:
    """How late each wake-up of a coroutine sleeping TICK_S is: what any other coroutine on the
    loop (the Slack bot's) waits at worst."""

    def __init__(self) -> None:
        self.late: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        while not self._stop.is_set():
            asleep = time.perf_counter()
            await asyncio.sleep(TICK_S)
            self.late.append(max(time.perf_counter() - asleep - TICK_S, 0.0))

    def start(self) -> None:
        self._task = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task

    def max_ms(self) -> float:
        return max(self.late, default=0.0) * 1000

    def p99_ms(self) -> float:
        if not self.late:
            return 0.0
        ordered = sorted(self.late)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000


@dataclass
class Measured:
    """One cycle with the loop's lateness beside it and the CPU it cost here and in moto."""

    report: CycleReport
    lag: LoopLag
    our_cpu_s: float
    moto_cpu_s: float


async def measured_cycle(runner: Ingestor, host: MotoHost) -> Measured:
    lag = LoopLag()
    ours, moto = time.process_time(), host.cpu_s()
    lag.start()
    try:
        report = await runner.run_cycle()
    finally:
        await lag.stop()
    return Measured(report, lag, time.process_time() - ours, host.cpu_s() - moto)


# 1. requests per cycle

CYCLES = ("nothing new", f"{NEW_FILES} new files")


@dataclass
class HistoryBucket:
    label: str
    bucket: str
    objects: int
    settings: Settings
    cycles: dict[str, Measured] = field(default_factory=dict)


def setup_history(
    host: MotoHost, root: Path, days: int, today: date, body: bytes, label: str
) -> HistoryBucket:
    bucket = f"bench-history-{days}d-{uuid.uuid4().hex[:8]}"
    host.create_bucket(bucket)
    keys = day_keys(last_days(today, days))
    # with the processed copies a bot that kept up has written: the bucket as it really looks
    items = [(key, body) for key in keys] + [(output_key(PROCESSED, key), body) for key in keys]
    etags = dict(zip(keys, host.put(bucket, items)[: len(keys)], strict=True))
    settings = make_settings(bucket, root / bucket, enrich_workers=0)  # no pool: 10 tiny files
    # The window's files as a finished cycle leaves them: the same `record_done` row that
    # Ingestor._process commits after uploading the enriched copy (status done, the ETag S3
    # reports, which for a single-part PUT is the same in ListObjectsV2 as in GetObject, the
    # output key, the record count). Its events and alerts are left out: what a cycle reads to
    # decide what to do is the files table only (the file ledger's file_states, needs_work).
    store = SqliteState(settings.state_dir)
    try:
        for key in day_keys(lookback_days(today, LOOKBACK_DAYS)):
            store.files.record_done(key, etags[key], output_key(PROCESSED, key), 1, [], [])
    finally:
        store.close()
    return HistoryBucket(label, bucket, len(items), settings)


def expected_listings() -> int:
    """Discovery from the bucket root: the root, AWSLogs/, each account, its CloudTrail/; then
    one listing per region and day (each day folder holds fewer than 1,000 keys)."""
    return 2 + 2 * len(ACCOUNTS) + len(ACCOUNTS) * len(REGIONS) * LOOKBACK_DAYS


def request_table(buckets: Sequence[HistoryBucket]) -> bool:
    """Prints requests per operation side by side; True if they agree between the buckets."""
    header = "".join(f"{b.label:>16}" for b in buckets)
    print(f"   {'cycle':<15}{'S3 operation':<19}{header}")
    equal = True
    for title in CYCLES:
        runs = [b.cycles[title] for b in buckets]
        reports = [run.report for run in runs]
        operations = sorted(set().union(*(r.requests for r in reports)))
        rows = [(op, [f"{r.requests[op]:,}" for r in reports]) for op in operations]
        rows += [
            ("total", [f"{r.requests.total():,}" for r in reports]),
            ("(listed/done)", [f"{r.listed:,}/{r.files}" for r in reports]),
            ("(cycle s)", [f"{r.duration_s:.2f}" for r in reports]),
            ("(CPU s ours/moto)", [f"{m.our_cpu_s:.2f}/{m.moto_cpu_s:.2f}" for m in runs]),
            ("(loop stall ms)", [f"{m.lag.max_ms():.1f}" for m in runs]),
        ]
        for number, (operation, cells) in enumerate(rows):
            line = "".join(f"{cell:>16}" for cell in cells)
            print(f"   {title if number == 0 else '':<15}{operation:<19}{line}")
        equal = equal and all(r.requests == reports[0].requests for r in reports)
    return equal


async def measure_requests(host: MotoHost, root: Path, history_days: int) -> int:
    today = datetime.now(UTC).date()
    rng = random.Random(3)
    tiny, _ = log_file(rng, 1)
    started = time.perf_counter()
    buckets = [
        setup_history(host, root, days, today, tiny, f"{days}-day history")
        for days in (history_days, LOOKBACK_DAYS)
    ]
    window = lookback_days(today, LOOKBACK_DAYS)
    known = len(day_keys(window))
    print(
        f"setup (1): buckets of {buckets[0].objects:,} and {buckets[1].objects:,} objects "
        f"(log files and their processed copies), {known:,} window files marked done: "
        f"{time.perf_counter() - started:.1f} s"
    )
    combos = [(account, region) for account in ACCOUNTS for region in REGIONS]
    new_files = [
        (
            log_key(*combos[i % len(combos)], today, 100 + i, tag="new"),
            log_file(rng, NEW_FILE_RECORDS, start=i * NEW_FILE_RECORDS)[0],
        )
        for i in range(NEW_FILES)
    ]
    for bucket in buckets:
        async with services.ingestor(bucket.settings) as runner:
            bucket.cycles[CYCLES[0]] = await measured_cycle(runner, host)
            host.put(bucket.bucket, new_files)
            bucket.cycles[CYCLES[1]] = await measured_cycle(runner, host)
    print(
        f"\n1. S3 requests per cycle; lookback window {window[0]} .. {window[-1]} (UTC), "
        f"{known:,} files there already done"
    )
    equal = request_table(buckets)
    if datetime.now(UTC).date() != today:
        print("   the UTC day changed during the measurement: run again")
        return 2
    reports = [(b.label, m.report) for b in buckets for m in b.cycles.values()]
    failed = [(label, r.failed + r.abandoned) for label, r in reports if r.failed or r.abandoned]
    for label, files in failed:
        print(f"   !! failed files in the {label} bucket: {files[:3]}")
    wrong = [
        b.label
        for b in buckets
        if (b.cycles[CYCLES[0]].report.files, b.cycles[CYCLES[1]].report.files) != (0, NEW_FILES)
        or any(m.report.listed < known for m in b.cycles.values())
    ]
    if wrong:
        print(f"   !! unexpected listed/done counts with {' and '.join(wrong)}")
    listings = {m.report.requests["ListObjectsV2"] for b in buckets for m in b.cycles.values()}
    print(
        f"   expected ListObjectsV2: 2 (root, AWSLogs/) + 2 per account + 1 per region and day "
        f"= {expected_listings()} (measured: {', '.join(map(str, sorted(listings)))}); GetObject "
        f"and PutObject: 1 per new file"
    )
    verdict = "yes" if equal else "NO: the claim does not hold"
    print(f"   requests equal with {history_days}-day and {LOOKBACK_DAYS}-day history: {verdict}")
    return 0 if equal and not failed and not wrong else 1


# 2./3. backlog


@dataclass
class Backlog:
    items: list[tuple[str, bytes]]
    records: int
    raw_bytes: int
    gzip_bytes: int


def make_backlog(files: int, records: int, today: date) -> Backlog:
    rng = random.Random(11)
    items: list[tuple[str, bytes]] = []
    raw_bytes = 0
    for i in range(files):
        body, raw = log_file(rng, records, start=i * records)
        items.append((log_key(ACCOUNTS[0], REGIONS[0], today, i, tag=f"backlog{i}"), body))
        raw_bytes += raw
    return Backlog(items, files * records, raw_bytes, sum(len(body) for _, body in items))


@dataclass
class BacklogRun:
    label: str
    workers: int
    warmup_s: float
    cycle: Measured
    worker_cpu_s: float


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def backlog_cycle(
    host: MotoHost, root: Path, backlog: Backlog, workers: int, label: str, today: date
) -> BacklogRun:
    bucket = f"bench-backlog-{uuid.uuid4().hex[:8]}"
    host.create_bucket(bucket)
    settings = make_settings(bucket, root / bucket, enrich_workers=workers)
    # tiny files from yesterday, two per lane: the first cycle starts every worker (they are
    # spawned on demand) and loads the rules there, as in a daemon that has been running
    tiny, _ = log_file(random.Random(5), 1)
    warmup = [
        (log_key(ACCOUNTS[1], REGIONS[1], today - timedelta(days=1), i, tag="warm"), tiny)
        for i in range(2 * settings.s3_concurrency)
    ]
    host.put(bucket, warmup)
    children_before = children_cpu_s()
    async with services.ingestor(settings) as runner:
        warm = await runner.run_cycle()
        gc.freeze()  # as the daemon does once it is wired (app.daemon.Daemon.run)
        host.put(bucket, backlog.items)  # CloudTrail delivered a backlog meanwhile
        cycle = await measured_cycle(runner, host)
    workers_cpu = children_cpu_s() - children_before  # the pool, joined at close; and its start
    return BacklogRun(label, workers, warm.duration_s, cycle, workers_cpu)


async def idle_lag(seconds: float) -> LoopLag:
    lag = LoopLag()
    lag.start()
    await asyncio.sleep(seconds)
    await lag.stop()
    return lag


async def measure_backlog(host: MotoHost, root: Path, files: int, records: int) -> int:
    today = datetime.now(UTC).date()
    started = time.perf_counter()
    backlog = make_backlog(files, records, today)
    print(
        f"\nsetup (2): {files:,} files x {records:,} records ({backlog.raw_bytes / 1e6:,.0f} MB "
        f"uncompressed, {backlog.gzip_bytes / 1e6:,.1f} MB gzip, "
        f"{backlog.raw_bytes / backlog.records:,.0f} bytes a record): "
        f"{time.perf_counter() - started:.1f} s"
    )
    idle = await idle_lag(1.0)
    processes = pool_size(make_settings("unused", root, enrich_workers=-1))
    runs = [
        await backlog_cycle(host, root, backlog, -1, f"{processes} processes (default)", today),
        await backlog_cycle(host, root, backlog, 0, "1 thread (ENRICH_WORKERS=0)", today),
    ]
    print(
        f"\n2./3. one backlog cycle over {files:,} files in one day folder, worker pool already "
        f"started; a coroutine sleeps {TICK_S * 1000:.0f} ms in a loop beside it"
    )
    print(
        f"   idle loop for 1 s, no cycle: wake-up lateness max {idle.max_ms():.2f} ms, "
        f"p99 {idle.p99_ms():.2f} ms ({len(idle.late)} wake-ups)"
    )
    print(
        f"   {'enrichment':<30}{'files/s':>9}{'records/s':>11}{'MB/s raw':>10}{'MB/s gz':>9}"
        f"{'cycle s':>9}{'stall max':>12}{'p99':>11}"
    )
    status = 0
    raw_mb, gzip_mb = backlog.raw_bytes / 1e6, backlog.gzip_bytes / 1e6
    for run in runs:
        r, lag = run.cycle.report, run.cycle.lag
        seconds = r.duration_s
        print(
            f"   {run.label:<30}{r.files / seconds:>9,.1f}{r.records / seconds:>11,.0f}"
            f"{raw_mb / seconds:>10,.1f}{gzip_mb / seconds:>9,.2f}"
            f"{seconds:>9.2f}{lag.max_ms():>9.1f} ms{lag.p99_ms():>8.1f} ms"
        )
        if (r.files, r.records) != (files, backlog.records) or r.failed or r.abandoned:
            print(f"     !! done {r.files} files {r.records} records; failed {r.failed[:3]}")
            status = 1
    for run in runs:
        cycle = run.cycle
        moto = "in ours" if host.in_process else f"{cycle.moto_cpu_s:.1f} s"
        pool = f"; pool {run.worker_cpu_s:.1f} s (with its start)" if run.workers else ""
        requests = ", ".join(f"{op} {n}" for op, n in sorted(cycle.report.requests.items()))
        print(
            f"   {run.label}: warm-up cycle {run.warmup_s:.2f} s; CPU during the cycle: this "
            f"process {cycle.our_cpu_s:.1f} s, moto {moto}{pool}; {len(cycle.lag.late):,} "
            f"wake-ups; requests: {requests}"
        )
    return status


# main


def load_average() -> str:
    """Other work on the machine shows up in every figure here: say how busy it was."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def environment(endpoint: str) -> None:
    """Fake credentials, botocore pointed at moto, and nothing of the real AWS setup used."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS)
    os.environ["AWS_ENDPOINT_URL"] = endpoint


async def run(args: argparse.Namespace, host: MotoHost, root: Path) -> int:
    status = await measure_requests(host, root, args.history_days)
    if status == 2:
        return 2
    return max(status, await measure_backlog(host, root, args.files, args.records))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--history-days", type=int, help="days of history (60; --quick: 3)")
    parser.add_argument("--files", type=int, help="files in the backlog (200; --quick: 16)")
    parser.add_argument("--records", type=int, help="records a backlog file (1,000; --quick: 200)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--moto-in-process", action="store_true", help="moto in this process (as the tests)"
    )
    args = parser.parse_args()
    quick = args.quick
    args.history_days = args.history_days or (3 if quick else 60)
    args.files = args.files or (16 if quick else 200)
    args.records = args.records or (200 if quick else 1_000)
    if args.history_days < LOOKBACK_DAYS:
        parser.error(f"--history-days must be at least {LOOKBACK_DAYS} (the lookback window)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    host = MotoHost(in_process=args.moto_in_process)
    try:
        environment(host.endpoint)
        import moto

        print(
            f"moto {moto.__version__} S3 at {host.endpoint} "
            f"({'in this process' if host.in_process else 'in a child process'}); "
            f"{os.cpu_count()} cores; Python {sys.version.split()[0]}; {load_average()}"
        )
        with tempfile.TemporaryDirectory(prefix="umbrellabot-bench-") as tmp:
            status = asyncio.run(run(args, host, Path(tmp)))
    finally:
        host.close()
    print(f"\ntotal {time.perf_counter() - started:.0f} s; {load_average()}")
    sys.exit(status)


if __name__ == "__main__":
    main()
