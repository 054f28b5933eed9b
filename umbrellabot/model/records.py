"""CloudTrail records: field paths, derived fields and the event view rules are evaluated on.

Pure: no I/O. A record is the dict CloudTrail wrote; an `Event` wraps one record with the
values computed for it once (country, principal, account) and a cache of JSON texts parsed
while following paths.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

Record = dict[str, Any]
ValuesGetter = Callable[["Event"], list[Any]]

DERIVED_FIELDS = ("geo.country", "principal", "account")
# The eventType of CloudTrail Insights records (unusual call or error rates: CloudTrail-Insight/)
INSIGHT_EVENT_TYPE = "AwsCloudTrailInsight"
_WILDCARD = "*"


class Event:
    """One record plus what rules may ask of it beyond its own fields."""

    __slots__ = ("_json_cache", "_principal", "country", "record")

    def __init__(self, record: Record, country: str | None = None) -> None:
        self.record = record
        self.country = country
        self._principal: str | bool | None = False  # False: not computed yet
        self._json_cache: dict[int, Any] | None = None

    @property
    def principal(self) -> str | None:
        if self._principal is False:
            self._principal = principal_of(self.record)
        return self._principal  # type: ignore[return-value]

    @property
    def account(self) -> str | None:
        return account_of(self.record)

    def parsed_json(self, text: str) -> Any:
        """The JSON value inside `text`, or None; parsed once per event."""
        cache = self._json_cache
        if cache is None:
            cache = self._json_cache = {}
        key = id(text)
        if key not in cache:
            try:
                cache[key] = orjson.loads(text)
            except orjson.JSONDecodeError:
                cache[key] = None
        return cache[key]


def is_insight_record(record: Record) -> bool:
    return record.get("eventType") == INSIGHT_EVENT_TYPE


def split_path(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _flatten(value: Any, out: list[Any]) -> None:
    if isinstance(value, list):
        for item in value:
            _flatten(item, out)
    elif value is not None:
        out.append(value)


def _looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _walk(event: Event, value: Any, segments: tuple[str, ...], index: int, out: list[Any]) -> None:
    if index == len(segments):
        _flatten(value, out)
        return
    if isinstance(value, list):
        for item in value:
            _walk(event, item, segments, index, out)
        return
    if isinstance(value, str) and _looks_like_json(value):
        value = event.parsed_json(value)
    if not isinstance(value, dict):
        return
    segment = segments[index]
    if segment == _WILDCARD:
        for child in value.values():
            _walk(event, child, segments, index + 1, out)
        return
    child = value.get(segment)
    if child is not None:
        _walk(event, child, segments, index + 1, out)


def values_at(event: Event, segments: tuple[str, ...]) -> list[Any]:
    """Every value reached by following `segments` through `event.record`."""
    out: list[Any] = []
    _walk(event, event.record, segments, 0, out)
    return out


def _single(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        out: list[Any] = []
        _flatten(value, out)
        return out
    return [value]


def compile_getter(path: str) -> ValuesGetter:
    """A fast function returning the values at `path` (derived fields included)."""
    if path == "geo.country":
        return lambda event: _single(event.country)
    if path == "principal":
        return lambda event: _single(event.principal)
    if path == "account":
        return lambda event: _single(event.account)
    segments = split_path(path)
    if len(segments) == 1 and segments[0] != _WILDCARD:
        key = segments[0]
        return lambda event: _single(event.record.get(key))
    if _WILDCARD in segments:
        return lambda event: values_at(event, segments)

    def nested(event: Event) -> list[Any]:
        # Plain objects all the way down is the common case; lists and JSON text take the walk.
        value: Any = event.record
        for segment in segments:
            if value.__class__ is not dict:
                return values_at(event, segments)
            value = value.get(segment)
            if value is None:
                return []
        return _single(value)

    return nested


def get_str(record: Record, *segments: str) -> str | None:
    """A nested text field, or None when it is missing or not text (safe get)."""
    value: Any = record
    for segment in segments:
        if not isinstance(value, dict):
            return None
        value = value.get(segment)
    return value if isinstance(value, str) else None


def account_of(record: Record) -> str | None:
    account = record.get("recipientAccountId")
    if isinstance(account, str) and account:
        return account
    return get_str(record, "userIdentity", "accountId")


def _arn_tail(arn: str | None) -> str | None:
    if not arn or ":" not in arn:
        return None
    return arn.split(":", 5)[-1]


def principal_of(record: Record) -> str | None:
    """A readable who: IAM user name, role/session, root, or the service. The one derivation of
    "who": alerts, stories, detections and `recent` all say it this way."""
    identity = record.get("userIdentity")
    if not isinstance(identity, dict):
        source = record.get("sourceIPAddress")
        if isinstance(source, str) and source.endswith(".amazonaws.com"):
            return source
        return None
    kind = identity.get("type")
    arn = identity.get("arn") if isinstance(identity.get("arn"), str) else None
    if kind == "Root":
        return "root"
    if kind == "AssumedRole":
        tail = _arn_tail(arn)
        if tail and tail.startswith("assumed-role/"):
            return tail.removeprefix("assumed-role/")
        issuer = get_str(identity, "sessionContext", "sessionIssuer", "userName")
        if issuer:
            return issuer
    if kind == "FederatedUser":
        tail = _arn_tail(arn)
        if tail and tail.startswith("federated-user/"):
            return tail.removeprefix("federated-user/")
    if kind == "AWSService":
        invoked_by = identity.get("invokedBy")
        if isinstance(invoked_by, str):
            return invoked_by
    if kind == "AWSAccount":
        account = identity.get("accountId")
        if isinstance(account, str):
            return f"account {account}"
    for key in ("userName", "principalId"):
        value = identity.get(key)
        if isinstance(value, str) and value:
            return value
    tail = _arn_tail(arn)
    if tail:
        return tail
    invoked_by = identity.get("invokedBy")
    return invoked_by if isinstance(invoked_by, str) else None


def _type_of_arn(arn: str | None) -> str | None:
    tail = _arn_tail(arn) or ""
    if tail == "root":
        return "Root"
    for prefix, kind in (("assumed-role/", "AssumedRole"), ("federated-user/", "FederatedUser")):
        if tail.startswith(prefix):
            return kind
    return "IAMUser" if tail.startswith("user/") else None


def principal_of_identity(
    identity_type: str | None, arn: str | None, user_name: str | None = None
) -> str | None:
    """`principal_of` from the identity columns a query returns; without a type, the ARN says
    which kind of identity it is."""
    kind = identity_type or _type_of_arn(arn)
    tail = _arn_tail(arn) or ""
    if not user_name and kind == "IAMUser" and tail.startswith("user/"):
        user_name = tail.rsplit("/", 1)[-1]  # an IAM user's name is its ARN's last segment
    identity = {"type": kind, "arn": arn, "userName": user_name}
    return principal_of({"userIdentity": {k: v for k, v in identity.items() if v}})
