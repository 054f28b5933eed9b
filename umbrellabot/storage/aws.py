"""What every AWS client of umbrellabot shares: the session, the retry configuration, and the
sentence for missing credentials."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

import aioboto3
import aiobotocore.session
from aiobotocore.credentials import AioDeferredRefreshableCredentials
from botocore.config import Config
from botocore.utils import parse_timestamp

NO_CREDENTIALS = (
    "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE,"
    " or run with an instance or task role)"
)


def resolved_region(region: str | None) -> str | None:
    """The region a client would use: the setting, else botocore's own (AWS_DEFAULT_REGION,
    the profile's `region`); None when there is none, which botocore reports only later, as a
    NoRegionError traceback from the first client."""
    if region:
        return region
    found = aiobotocore.session.get_session().get_config_variable("region")
    return str(found) if found else None


def _timestamp(value: str | float) -> datetime:
    """botocore parses every key's LastModified with dateutil, on the event loop: a 1,000-key
    listing page cost ~100 ms of loop time. S3's XML carries ISO 8601, which the stdlib parses
    far faster; anything else still goes to botocore's parser."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    parsed: datetime = parse_timestamp(value)  # HTTP dates, epoch numbers (JSON protocols)
    return parsed


@dataclass(frozen=True)
class AssumedRole:
    """A role in another account (the log archive's) to read the trail's bucket as."""

    arn: str
    external_id: str | None = None
    session_name: str = "umbrellabot"
    duration_s: int = 3600


def aws_session(role: AssumedRole | None = None, region: str | None = None) -> aioboto3.Session:
    """An aioboto3 session whose responses parse timestamps cheaply; with `role`, its
    credentials are the role's (sts:AssumeRole with the default credentials, refreshed before
    they expire)."""
    core = aiobotocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    if role is not None:
        # botocore keeps a session's credentials here; refreshable ones renew themselves
        core._credentials = AioDeferredRefreshableCredentials(
            refresh_using=partial(_assume, role, region), method="sts-assume-role"
        )
    return aioboto3.Session(botocore_session=core)


async def _assume(role: AssumedRole, region: str | None) -> dict[str, str]:
    params: dict[str, object] = {
        "RoleArn": role.arn,
        "RoleSessionName": role.session_name,
        "DurationSeconds": role.duration_s,
    }
    if role.external_id:
        params["ExternalId"] = role.external_id
    async with aws_session().client("sts", region_name=region) as sts:
        answer = await sts.assume_role(**params)
    credentials = answer["Credentials"]
    return {
        "access_key": credentials["AccessKeyId"],
        "secret_key": credentials["SecretAccessKey"],
        "token": credentials["SessionToken"],
        "expiry_time": credentials["Expiration"].isoformat(),
    }


def client_config(concurrency: int, max_attempts: int) -> Config:
    return Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        max_pool_connections=max(10, concurrency * 2),
        connect_timeout=10,
        read_timeout=60,
    )
