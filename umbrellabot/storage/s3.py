"""The S3 adapter (aioboto3): listing with delimiters and pagination, download to a file, upload.

Transient trouble (5xx, SlowDown, resets, timeouts) is retried by botocore's own retry modes.
What no retry can fix (access denied, no such bucket, no credentials) becomes `S3AccessError`,
one sentence naming the bucket, the prefix and the action that was refused.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from umbrellabot.errors import one_line
from umbrellabot.storage.aws import NO_CREDENTIALS, AssumedRole, aws_session, client_config
from umbrellabot.storage.ports import ObjectInfo, S3AccessError, S3Refused, S3TransientError

__all__ = ["S3AccessError", "S3Bucket", "S3Refused", "S3TransientError", "open_bucket"]

# Error codes no retry fixes: the cycle stops with one clear message instead of failing per file.
FATAL_CODES = frozenset(
    {
        "AccessDenied",
        "AllAccessDisabled",
        "NoSuchBucket",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AccountProblem",
    }
)
_ACTIONS = {
    "list_objects_v2": "s3:ListBucket",
    "get_object": "s3:GetObject",
    "put_object": "s3:PutObject",
    "head_bucket": "s3:ListBucket",
}
DOWNLOAD_CHUNK = 1 << 20


def _describe(
    err: Exception, action: str, bucket: str, where: str, setting: str = "CLOUDTRAIL_BUCKET_NAME"
) -> Exception:
    if isinstance(err, NoCredentialsError):
        return S3AccessError(NO_CREDENTIALS)
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")).rstrip(".")
        if code == "NoSuchBucket":
            return S3AccessError(f"bucket {bucket!r} does not exist ({setting})")
        resource = f"s3://{bucket}/{_quoted(where)}"
        if code in ("AccessDenied", "KMS.AccessDeniedException") and "kms:" in message:
            key = _KMS_KEY.search(message)
            kms_action = _KMS_ACTION.search(message)
            return S3Refused(
                _kms_refusal(message, action, bucket, where),
                kms_action.group(0) if kms_action else "kms:Decrypt",
                resource,
                key.group(0) if key else None,
            )
        if code == "AccessDenied":
            return S3Refused(
                f"S3 refused {action} on bucket {bucket!r}, {where}: {code}"
                f"{': ' + message if message else ''}. Check the credentials and the IAM policy"
                " (config/iam-policy.json)",
                action,
                resource,
                None,
            )
        if code in FATAL_CODES:
            return S3AccessError(
                f"S3 refused {action} on bucket {bucket!r}, {where}: {code}"
                f"{': ' + message if message else ''}. Check the credentials and the IAM policy"
                " (config/iam-policy.json)"
            )
        return S3TransientError(f"{action} {where}: {code}{': ' + message if message else ''}")
    return S3TransientError(f"{action} {where}: {type(err).__name__}: {one_line(str(err))}")


def _quoted(where: str) -> str:
    """The key or prefix out of "key 'x'" / "prefix 'x'"."""
    _, _, quoted = where.partition(" ")
    return quoted.strip("'\"")


THROTTLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled"}
)


_KMS_KEY = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key|alias)/[A-Za-z0-9/_-]+")
_KMS_ACTION = re.compile(r"kms:[A-Za-z]+")


def _kms_refusal(message: str, action: str, bucket: str, where: str) -> str:
    """S3 refused because KMS refused: the sentence names the key and the KMS action."""
    key = _KMS_KEY.search(message)
    kms_action = _KMS_ACTION.search(message)
    return (
        f"KMS refused {kms_action.group(0) if kms_action else 'the use of the key'} on"
        f" {key.group(0) if key else 'the bucket key'} for {action} on bucket {bucket!r}, {where}."
        " Allow it in the key policy and in the KMS statement of config/iam-policy.json"
        " (README: SSE-KMS trails)"
    )


def fault_kind(response: Any, caught_exception: Exception | None) -> str | None:
    """What went wrong with one attempt, in S3's terms: `throttle` (SlowDown and the like),
    `5xx`, `connection` (reset, timeout, refused), or None for an answer that is no fault."""
    if caught_exception is not None:
        return "connection"
    if not response:
        return None
    http, parsed = response
    status = int(getattr(http, "status_code", 0) or 0)
    code = (parsed or {}).get("Error", {}).get("Code") if isinstance(parsed, dict) else None
    if code in THROTTLE_CODES or status == 503:
        return "throttle"
    if status >= 500:
        return "5xx"
    return None


class S3Bucket:
    """`ports.ObjectStore` over one bucket through one aioboto3 client; counts requests per
    operation."""

    def __init__(self, client: Any, bucket: str, setting: str = "CLOUDTRAIL_BUCKET_NAME") -> None:
        self._client = client
        self.bucket = bucket
        self.setting = setting  # the setting that names the bucket, for messages
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()  # failed attempts botocore saw: throttle, 5xx...
        client.meta.events.register("before-send.s3", self._count)
        client.meta.events.register("needs-retry.s3", self._count_fault)

    def _count(self, event_name: str = "", **_: Any) -> None:
        self.requests[event_name.rsplit(".", 1)[-1]] += 1

    def _count_fault(
        self, response: Any = None, caught_exception: Exception | None = None, **_: Any
    ) -> None:
        """Called by botocore after every attempt, before it decides on a retry; only looks."""
        kind = fault_kind(response, caught_exception)
        if kind is not None:
            self.faults[kind] += 1

    async def _call(self, operation: str, where: str, **params: Any) -> Any:
        try:
            return await getattr(self._client, operation)(Bucket=self.bucket, **params)
        except (ClientError, BotoCoreError, aiohttp.ClientError) as err:
            raise _describe(
                err, _ACTIONS.get(operation, operation), self.bucket, where, self.setting
            ) from err

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    async def list_folders(self, prefix: str) -> list[str]:
        """The sub-folders (common prefixes) directly under `prefix`."""
        folders: list[str] = []
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = await self._call(
                "list_objects_v2", f"prefix {prefix!r}", Prefix=prefix, Delimiter="/", **extra
            )
            folders.extend(item["Prefix"] for item in page.get("CommonPrefixes", []))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return folders

    async def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Every object under `prefix`, across pages of 1,000."""
        found: list[ObjectInfo] = []
        token: str | None = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = await self._call("list_objects_v2", f"prefix {prefix!r}", Prefix=prefix, **extra)
            found.extend(
                ObjectInfo(
                    item["Key"],
                    str(item.get("ETag", "")).strip('"') or None,
                    int(item.get("Size", 0)),
                    item["LastModified"].timestamp() if item.get("LastModified") else None,
                )
                for item in page.get("Contents", [])
            )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found

    async def download(self, key: str, target: Path) -> str | None:
        """Stream one object into `target`; returns its ETag."""
        response = await self._call("get_object", f"key {key!r}", Key=key)
        body = response["Body"]
        try:
            with target.open("wb") as sink:
                while chunk := await body.read(DOWNLOAD_CHUNK):
                    sink.write(chunk)
        except (TimeoutError, ClientError, BotoCoreError, aiohttp.ClientError, OSError) as err:
            # a body cut short (ClientPayloadError), a reset: the file is fine, the read is not
            reason = f"s3:GetObject key {key!r}: {type(err).__name__}: {one_line(str(err))}"
            raise S3TransientError(reason) from err
        finally:
            body.close()
        return str(response.get("ETag", "")).strip('"') or None

    async def read(self, key: str) -> bytes:
        """A whole (small) object, by key or by `s3://bucket/key` URL (Athena's "$path")."""
        if key.startswith("s3://"):
            bucket, _, key = key.removeprefix("s3://").partition("/")
            if bucket != self.bucket:
                raise FileNotFoundError(f"s3://{bucket}/{key} is not in bucket {self.bucket!r}")
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileNotFoundError(key) from None
            raise _describe(err, "s3:GetObject", self.bucket, f"key {key!r}", self.setting) from err
        body = response["Body"]
        try:
            return bytes(await body.read())
        finally:
            body.close()

    async def upload(self, source: Path, key: str) -> None:
        """One PutObject: the object appears whole or not at all. The enriched copy (gzip, a
        tenth of the log or less) is read in a thread, not on the event loop."""
        body = await asyncio.to_thread(source.read_bytes)
        await self._call(
            "put_object",
            f"key {key!r}",
            Key=key,
            Body=body,
            ContentType="application/x-ndjson",
        )


@asynccontextmanager
async def open_bucket(
    bucket: str,
    *,
    region: str | None,
    concurrency: int,
    max_attempts: int,
    role: AssumedRole | None = None,
    setting: str = "CLOUDTRAIL_BUCKET_NAME",
) -> AsyncIterator[S3Bucket]:
    """An S3Bucket; AWS_ENDPOINT_URL and the standard credential chain apply (botocore), or the
    credentials of `role`."""
    session = aws_session(role, region)
    config = client_config(concurrency, max_attempts)
    async with session.client("s3", region_name=region, config=config) as client:
        yield S3Bucket(client, bucket, setting)
