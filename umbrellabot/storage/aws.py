"""What every AWS client of umbrellabot shares: the session, the retry configuration, and the
sentence for missing credentials."""

from __future__ import annotations

from datetime import datetime

import aioboto3
import aiobotocore.session
from botocore.config import Config
from botocore.utils import parse_timestamp

NO_CREDENTIALS = (
    "no AWS credentials found (set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE,"
    " or run with an instance or task role)"
)


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


def aws_session() -> aioboto3.Session:
    """An aioboto3 session whose responses parse timestamps cheaply."""
    core = aiobotocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    return aioboto3.Session(botocore_session=core)


def client_config(concurrency: int, max_attempts: int) -> Config:
    return Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        max_pool_connections=max(10, concurrency * 2),
        connect_timeout=10,
        read_timeout=60,
    )
