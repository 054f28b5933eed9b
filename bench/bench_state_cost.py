"""What the shared state (STATE_BACKEND=dynamodb) costs per million records, for INDEX_EVENTS=
alerts and all: DynamoDB requests, write and read units, and the bytes it keeps. A measurement,
not a test.

    python bench/bench_state_cost.py [--files 50] [--records 1000] [--alerts 1]

`umbrellabot run --once` (list mode) ingests --files files of --records records, --alerts of
them alerted each, from moto's S3 into a table on moto's DynamoDB, in this process. Every call
the state makes is seen by a botocore hook: write units are counted from the items sent (1 per
KB, rounded up per item; twice in a transaction; an update by the item it leaves), read units
from the items returned (1 per 4 KB, strongly consistent; a query's summed, then rounded).
Item sizes follow DynamoDB's rule (names and values in UTF-8 bytes, numbers ~1 byte per 2
digits). Prices: on-demand, us-east-1 (per million write units $0.625, read units $0.125;
storage $0.25 per GB-month).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import logging
import math
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import orjson
from moto.server import ThreadedMotoServer

from umbrellabot.storage import dynamodb as dynamodb_state

WRITE_PRICE, READ_PRICE, STORAGE_PRICE = 0.625, 0.125, 0.25  # $ per million units, per GB-month
ACCOUNT = "111122223333"


def value_size(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind in ("S", "B"):
        return len(inner.encode() if isinstance(inner, str) else inner)
    if kind == "N":
        return len(str(inner).lstrip("-").replace(".", "")) // 2 + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + value_size(v) for k, v in inner.items())
    return sum(len(str(v)) for v in inner)  # sets


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


class Meter:
    """Requests, write and read units of one client, from botocore's call events."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.write_units = 0.0
        self.read_units = 0.0

    def attach(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    def _before(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        name = model.name
        self.requests[name] += 1
        if name == "PutItem":
            self.write_units += math.ceil(item_size(params["Item"]) / 1024)
        elif name == "BatchWriteItem":
            for requests in params["RequestItems"].values():
                for request in requests:
                    item = request.get("PutRequest", {}).get("Item", {})
                    self.write_units += max(1, math.ceil(item_size(item) / 1024))
        elif name == "DeleteItem":
            self.write_units += 1
        elif name == "TransactWriteItems":
            for action in params["TransactItems"]:
                item = action.get("Put", {}).get("Item")
                self.write_units += 2 * (math.ceil(item_size(item) / 1024) if item else 1)

    def _after(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        name = model.name
        if name == "UpdateItem":
            after = parsed.get("Attributes") or {}
            self.write_units += max(1, math.ceil(item_size(after) / 1024))
        elif name == "GetItem":
            self.read_units += max(1, math.ceil(item_size(parsed.get("Item") or {}) / 4096))
        elif name == "BatchGetItem":
            for items in parsed.get("Responses", {}).values():
                self.read_units += sum(max(1, math.ceil(item_size(i) / 4096)) for i in items)
        elif name == "Query":
            size = sum(item_size(i) for i in parsed.get("Items", []))
            self.read_units += max(1, math.ceil(size / 4096))


def log_file(file: int, records: int, alerts: int) -> bytes:
    rows = []
    for n in range(records):
        alerted = n < alerts
        rows.append(
            {
                "eventVersion": "1.09",
                "eventTime": "2026-12-03T10:00:00Z",
                "eventSource": "iam.amazonaws.com" if alerted else "s3.amazonaws.com",
                "eventName": "CreateUser" if alerted else "GetObject",
                "awsRegion": "us-east-1",
                "sourceIPAddress": "52.95.110.1",
                "userAgent": "aws-cli/2.22",
                "userIdentity": {
                    "type": "IAMUser",
                    "arn": f"arn:aws:iam::{ACCOUNT}:user/alice",
                    "accountId": ACCOUNT,
                    "userName": "alice",
                },
                "requestParameters": {"userName": f"u-{file}-{n}"} if alerted else {"key": "k"},
                "eventID": f"{file:06d}-{n:06d}-4e5b-9a61-0c1d2e3f0000",
                "eventType": "AwsApiCall",
                "recipientAccountId": ACCOUNT,
            }
        )
    return gzip.compress(orjson.dumps({"Records": rows}))


def measure(endpoint: str, index: str, args: argparse.Namespace, root: Path) -> None:
    bucket = f"cost-{index}"
    s3 = boto3.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket=bucket)
    for file in range(args.files):
        key = (
            f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/12/03/"
            f"{ACCOUNT}_CloudTrail_us-east-1_20261203T1000Z_c{file:06d}.json.gz"
        )
        s3.put_object(Bucket=bucket, Key=key, Body=log_file(file, args.records, args.alerts))
    table = f"{bucket}-state"
    meter = Meter()
    plain_connect = dynamodb_state.connect

    def metered(*a: Any, **kw: Any) -> dynamodb_state.DynamoState:
        state = plain_connect(*a, **kw)
        meter.attach(state.table.client)
        return state

    setup = plain_connect(table, region="us-east-1", retention_days=90, index_all_events=False)
    dynamodb_state.setup_table(setup.table)
    dynamodb_state.connect = metered  # wiring_state imports it when it opens the state
    os.environ.update(
        CLOUDTRAIL_BUCKET_NAME=bucket,
        STATE_BACKEND="dynamodb",
        DYNAMODB_TABLE=table,
        INDEX_EVENTS=index,
        STATE_DIR=str(root / index),
        ATHENA_SETUP_ON_START="false",
        DETECTIONS_ENABLED="false",
        ALLOWED_COUNTRIES="US",
        ENRICH_WORKERS="1",
    )
    from umbrellabot.cli.main import main as umbrellabot

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the alerts, on the console
            code = umbrellabot(["run", "--once"])
    finally:
        dynamodb_state.connect = plain_connect
    assert code == 0, f"run --once exited {code}"
    kept = 0
    scan = setup.table.client.get_paginator("scan")
    for page in scan.paginate(TableName=table):
        kept += sum(item_size(item) for item in page["Items"])
    setup.close()
    per_million = 1e6 / (args.files * args.records)
    writes, reads = meter.write_units * per_million, meter.read_units * per_million
    dollars = (writes * WRITE_PRICE + reads * READ_PRICE) / 1e6
    requests = sum(meter.requests.values()) * per_million
    stored = kept * per_million / 1e9
    print(
        f"  INDEX_EVENTS={index:6s} per million records: {requests:9,.0f}"
        f" requests, {writes:9,.0f} write units, {reads:7,.0f} read units = ${dollars:.3f};"
        f" keeps {stored:.3f} GB = ${stored * STORAGE_PRICE:.3f} a month"
        f" (retained STATE_RETENTION_DAYS); requests: {dict(meter.requests)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=1, help="alerted records per file")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name in list(os.environ):
        if name.startswith(("AWS_", "UMBRELLABOT_")):
            del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
    )
    print(
        f"{args.files} files of {args.records} records, {args.alerts} alerted a file;"
        " the state's DynamoDB calls:"
    )
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # no stray .env
        try:
            for index in ("alerts", "all"):
                measure(endpoint, index, args, Path(tmp))
        finally:
            server.stop()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
