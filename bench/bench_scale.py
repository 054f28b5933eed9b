"""INGEST_MODE=sqs with N worker processes, on moto's server (S3, SQS and DynamoDB) in a child
process. A benchmark, not a test.

    python bench/bench_scale.py [--files 400] [--records 1000] [--workers 1,2,4]
                                [--idle-s 60] [--kill-every-s 3] [--skip-kills]
                                [--state dynamodb|sqlite]

Each worker is `umbrellabot run` (INGEST_MODE=sqs, ENRICH_WORKERS=1, no Slack: alerts go to its
stdout), all on one state: a DynamoDB table made as `umbrellabot state setup` makes it
(STATE_BACKEND=dynamodb, the default here), or one STATE_DIR (SQLite: one host). S3 announces
every file to the queue (moto sends the notifications). Measured:

  1. files/s with 1, 2 and 4 workers: --files files of --records records, each with one
     CreateUser (one alert), put once the workers poll; the time until every file is done in the
     ledger. moto's CPU seconds beside the workers', since on 2 cores the stand-in is part of
     the load.
  2. requests per idle minute: 2 workers through a counting proxy, --idle-s seconds with
     nothing announced: S3 LIST calls (goal 0), SQS calls per worker (goal <= 4), and the
     DynamoDB calls per worker.
  3. losses and duplicates with a worker killed (kill -9, its process group) every
     --kill-every-s seconds and started again: files without their processed copy or with
     records missing or doubled, and alerts printed never or twice across all stdout files.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import logging
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "faults"))
from fault_proxy import FaultProxy  # noqa: E402  (a counting proxy: no faults drawn)

from umbrellabot.storage.dynamodb import DynamoState, setup_table  # noqa: E402

ACCOUNT = "111122223333"
AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
EVENT = re.compile(rb"bench-alert-\d{6}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def record(index: int, file: int) -> dict[str, Any]:
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/app/s{index % 50}",
            "accountId": ACCOUNT,
        },
        "eventTime": "2026-12-03T10:00:00Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "52.94.76.10",
        "userAgent": "aws-sdk-java/2.20.0",
        "requestParameters": {"bucketName": "data", "key": f"k/{file}/{index}"},
        "eventID": f"bench-{file:06d}-{index:06d}",
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }


def log_file(file: int, records: int) -> bytes:
    body = [record(i, file) for i in range(records - 1)]
    body.insert(
        records // 2,
        {
            **record(records, file),
            "eventSource": "iam.amazonaws.com",
            "eventName": "CreateUser",
            "eventID": f"bench-alert-{file:06d}",
        },
    )
    return gzip.compress(orjson.dumps({"Records": body}), compresslevel=6)


def key_of(file: int, day: str = "2026/12/03") -> str:
    return (
        f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/{day}/"
        f"{ACCOUNT}_CloudTrail_us-east-1_20261203T1000Z_f{file:06d}.json.gz"
    )


class Moto:
    def __init__(self) -> None:
        port = free_port()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.ps = psutil.Process(self.process.pid)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto's server did not start")

    def cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint, **_creds())

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _creds() -> dict[str, str]:
    return {
        "aws_access_key_id": AWS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": AWS["AWS_SECRET_ACCESS_KEY"],
        "region_name": AWS["AWS_REGION"],
    }


class Setup:
    """One bucket, its queue and dead-letter queue, S3 notifying the queue."""

    def __init__(self, moto: Moto, name: str, state: str) -> None:
        self.s3, self.sqs = moto.client("s3"), moto.client("sqs")
        self.bucket = name
        self.shared: DynamoState | None = None
        if state == "dynamodb":  # the table, as `umbrellabot state setup` makes it
            self.shared = DynamoState(
                moto.client("dynamodb"), f"{name}-state", retention_days=30, index_all_events=False
            )
            setup_table(self.shared.table)
        self.s3.create_bucket(Bucket=name)
        self.queue = self.sqs.create_queue(QueueName=f"{name}-files")["QueueUrl"]
        self.dead = self.sqs.create_queue(QueueName=f"{name}-dead")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=["QueueArn"])
        self.s3.put_bucket_notification_configuration(
            Bucket=name,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": arn["Attributes"]["QueueArn"],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {
                            "Key": {"FilterRules": [{"Name": "prefix", "Value": "AWSLogs/"}]}
                        },
                    }
                ]
            },
        )
        self.sqs.purge_queue(QueueUrl=self.queue)  # the test event

    def put(self, bodies: dict[int, bytes]) -> None:
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda item: self.s3.put_object(
                        Bucket=self.bucket, Key=key_of(item[0]), Body=item[1]
                    ),
                    bodies.items(),
                )
            )


class Workers:
    def __init__(self, setup: Setup, endpoint: str, folder: Path, count: int) -> None:
        self.setup, self.endpoint, self.folder = setup, endpoint, folder
        self.state = folder / "state"
        self.started = 0
        self.processes: list[subprocess.Popen[bytes]] = [self.start() for _ in range(count)]

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "UMBRELLABOT"))}
        return {
            **keep,
            **AWS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "CLOUDTRAIL_BUCKET_NAME": self.setup.bucket,
            "INGEST_MODE": "sqs",
            "SQS_QUEUE_URL": self.setup.queue,
            "SQS_DEAD_LETTER_URL": self.setup.dead,
            "SQS_VISIBILITY_S": "30",
            "RECONCILE_SCHEDULE": "",
            "STATE_DIR": str(self.state),
            **(
                {"STATE_BACKEND": "dynamodb", "DYNAMODB_TABLE": self.setup.shared.table.name}
                if self.setup.shared
                else {}
            ),
            "ENRICH_WORKERS": "1",
            "S3_CONCURRENCY": "4",
            "DETECTIONS_ENABLED": "false",
            "ATHENA_SETUP_ON_START": "false",
            "HEALTH_PORT": "0",
            "LOG_FORMAT": "json",
            "POLL_INTERVAL": "300",
        }

    def start(self) -> subprocess.Popen[bytes]:
        self.started += 1
        with (
            (self.folder / f"w{self.started}.out").open("wb") as out,
            (self.folder / f"w{self.started}.err").open("wb") as err,
        ):
            return subprocess.Popen(
                [sys.executable, "-m", "umbrellabot", "run"],
                env=self.env(),
                cwd=self.folder,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def polling(self) -> bool:
        """Every worker has logged that it runs (its consumer then polls within a second)."""
        return sum(
            b"umbrellabot running" in p.read_bytes() for p in self.folder.glob("w*.err")
        ) >= len(self.processes)

    def kill_one(self, rng: random.Random) -> None:
        index = rng.randrange(len(self.processes))
        victim = self.processes[index]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.wait()
        self.processes[index] = self.start()

    def cpu_s(self) -> float:
        total = 0.0
        for process in self.processes:
            try:
                parent = psutil.Process(process.pid)
                for p in [parent, *parent.children(recursive=True)]:
                    times = p.cpu_times()
                    total += times.user + times.system + times.children_user
            except psutil.Error:
                pass
        return total

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def done(self) -> int:
        if self.setup.shared is not None:
            states = self.setup.shared.files.file_states([key_of(0).rsplit("/", 1)[0] + "/"])
            return sum(1 for state in states.values() if state.status == "done")
        database = self.state / "umbrellabot.sqlite3"
        if not database.exists():
            return 0
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as db:
                return int(
                    db.execute("SELECT count(*) FROM files WHERE status='done'").fetchone()[0]
                )
        except sqlite3.OperationalError:
            return 0

    def alerts(self) -> dict[bytes, int]:
        counts: dict[bytes, int] = {}
        for path in self.folder.glob("w*.out"):
            for found in set(EVENT.findall(path.read_bytes())):
                counts[found] = counts.get(found, 0) + 1
        return counts


async def wait_for(condition: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def throughput(
    moto: Moto, bodies: dict[int, bytes], count: int, root: Path, state: str
) -> None:
    setup = Setup(moto, f"scale-{count}-{int(time.time())}", state)
    folder = Path(tempfile.mkdtemp(dir=root))
    workers = Workers(setup, moto.endpoint, folder, count)
    try:
        await wait_for(workers.polling, 60, "workers up")
        moto_before, workers_before = moto.cpu_s(), workers.cpu_s()
        started = time.monotonic()
        await asyncio.to_thread(setup.put, bodies)
        await wait_for(lambda: workers.done() >= len(bodies), 900, "every file done")
        spent = time.monotonic() - started
        moto_cpu, worker_cpu = moto.cpu_s() - moto_before, workers.cpu_s() - workers_before
        print(
            f"  {count} worker{'s' if count > 1 else ' '}: {len(bodies) / spent:6.1f} files/s"
            f" ({len(bodies)} files in {spent:5.1f} s); CPU s: moto {moto_cpu:5.1f},"
            f" workers {worker_cpu:5.1f} (moto's share {moto_cpu / (moto_cpu + worker_cpu):.0%})"
        )
    finally:
        workers.stop()


async def idle_requests(moto: Moto, root: Path, seconds: float, state: str) -> None:
    proxy = FaultProxy(moto.endpoint, seed=1, rates={})
    await proxy.start()
    setup = Setup(moto, f"idle-{int(time.time())}", state)
    folder = Path(tempfile.mkdtemp(dir=root))
    workers = Workers(setup, proxy.url, folder, 2)
    try:
        await wait_for(workers.polling, 60, "workers up")
        await asyncio.sleep(5)  # startup calls done
        proxy.passed.clear()
        await asyncio.sleep(seconds)
        minutes = seconds / 60
        lists = proxy.passed.get("ListObjectsV2", 0) + proxy.passed.get("GetBucket", 0)
        sqs = sum(n for op, n in proxy.passed.items() if op in _SQS_OPS)
        table = sum(n for op, n in proxy.passed.items() if op in _DYNAMODB_OPS)
        print(
            f"  idle, 2 workers, {seconds:.0f} s: S3 LIST {lists / minutes:.1f}/min (goal 0);"
            f" SQS {sqs / minutes / 2:.1f}/min per worker (goal <= 4); DynamoDB"
            f" {table / minutes / 2:.1f}/min per worker; all: {dict(proxy.passed)}"
        )
    finally:
        workers.stop()
        await proxy.stop()


_SQS_OPS = {"ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility", "SendMessage"}
_DYNAMODB_OPS = {
    "GetItem",
    "BatchGetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
    "Query",
    "DescribeTable",
}


async def with_kills(
    moto: Moto, bodies: dict[int, bytes], records: int, every_s: float, root: Path, state: str
) -> None:
    setup = Setup(moto, f"kills-{int(time.time())}", state)
    folder = Path(tempfile.mkdtemp(dir=root))
    workers = Workers(setup, moto.endpoint, folder, 2)
    rng = random.Random(7)
    kills = 0
    try:
        await wait_for(workers.polling, 60, "workers up")
        await asyncio.to_thread(setup.put, bodies)
        deadline = time.monotonic() + 1200
        while workers.done() < len(bodies):
            if time.monotonic() > deadline:
                raise RuntimeError("not every file done within 20 minutes")
            await asyncio.sleep(every_s)
            if workers.done() < len(bodies) * 0.9:  # kills while most work is in flight
                workers.kill_one(rng)
                kills += 1
        await wait_for(lambda: len(workers.alerts()) >= len(bodies), 120, "every alert")
        await asyncio.sleep(5)  # a duplicate would be printed by now
    finally:
        workers.stop()
    lost_files, doubled = 0, 0
    for file in bodies:
        try:
            body = setup.s3.get_object(Bucket=setup.bucket, Key=f"processed/{key_of(file)}")
        except setup.s3.exceptions.NoSuchKey:
            lost_files += 1
            continue
        lines = gzip.decompress(body["Body"].read()).splitlines()
        ids = [orjson.loads(line)["eventID"] for line in lines]
        lost_files += len(set(ids)) < records
        doubled += len(ids) - len(set(ids))
    alerts = workers.alerts()
    expected = {f"bench-alert-{file:06d}".encode() for file in bodies}
    print(
        f"  2 workers, {kills} kill -9 (one every {every_s:.0f} s): files lost {lost_files},"
        f" records doubled {doubled}; alerts lost {len(expected - set(alerts))},"
        f" printed twice {sum(1 for n in alerts.values() if n > 1)}"
    )


async def main() -> None:
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # cut long polls at stops
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--kill-every-s", type=float, default=3.0)
    parser.add_argument("--skip-kills", action="store_true")
    parser.add_argument("--state", choices=["dynamodb", "sqlite"], default="dynamodb")
    args = parser.parse_args()
    bodies = {file: log_file(file, args.records) for file in range(args.files)}
    print(
        f"{args.files} files of {args.records} records"
        f" ({sum(map(len, bodies.values())) / 1e6:.1f} MB gzip); {os.cpu_count()} cores;"
        f" state: {args.state}"
    )
    moto = Moto()
    keep = os.environ.get("BENCH_KEEP")  # a folder: the workers' logs stay there
    with tempfile.TemporaryDirectory(prefix="umbrellabot-scale-", dir=keep) as tmp:
        root = Path(tmp)
        try:
            for count in (int(n) for n in args.workers.split(",") if n.strip()):
                await throughput(moto, bodies, count, root, args.state)
            if args.idle_s > 0:
                await idle_requests(moto, root, args.idle_s, args.state)
            if not args.skip_kills:
                await with_kills(moto, bodies, args.records, args.kill_every_s, root, args.state)
        finally:
            moto.close()


if __name__ == "__main__":
    asyncio.run(main())
