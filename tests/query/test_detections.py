"""Scheduled SQL detections: loading and checking, windows and dedup keys, alerts, and every
shipped detection on DuckDB over crafted enriched files (one dataset that fires, one that
must not)."""

from __future__ import annotations

import dataclasses
import gzip
import itertools
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from builders import ACCOUNT_A, log_key

from umbrellabot.app.wiring import detection_paths, duckdb_engine
from umbrellabot.config import Settings
from umbrellabot.model.alerts import alert_from_json, dedup_key
from umbrellabot.model.severity import Severity
from umbrellabot.query.detection_plans import plan
from umbrellabot.query.detection_runs import DetectionRunError, alerts_for, run_detections
from umbrellabot.query.detections import (
    Detection,
    DetectionError,
    DetectionResult,
    default_detections_path,
    format_duration,
    load_detections,
    parse_duration,
)
from umbrellabot.query.duckdb_engine import DuckDBEngine
from umbrellabot.query.queries import iso
from umbrellabot.storage.sqlite import SqliteState

DAY = date(2026, 3, 10)
NOW = datetime(2026, 3, 10, 12, 7, tzinfo=UTC)
_ids = itertools.count()


def t(clock: str, days_ago: int = 0) -> str:
    """An eventTime on DAY (or `days_ago` before it), clock 'HH:MM' or 'HH:MM:SS'."""
    if clock.count(":") == 1:
        clock += ":00"
    return f"{DAY - timedelta(days=days_ago):%Y-%m-%d}T{clock}Z"


def user(name: str) -> dict[str, Any]:
    return {
        "type": "IAMUser",
        "principalId": f"AIDA{name.upper()}",
        "arn": f"arn:aws:iam::{ACCOUNT_A}:user/{name}",
        "accountId": ACCOUNT_A,
        "accessKeyId": f"AKIA{name.upper()}",
        "userName": name,
    }


def arn_of(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT_A}:user/{name}"


def role_session(role: str, session: str) -> dict[str, Any]:
    return {
        "type": "AssumedRole",
        "principalId": f"AROA{role.upper()}:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT_A}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT_A,
        "accessKeyId": "ASIATEMPORARY",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "arn": f"arn:aws:iam::{ACCOUNT_A}:role/{role}",
                "userName": role,
            }
        },
    }


SERVICE = {"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"}


def event(
    name: str,
    source: str,
    when: str,
    who: dict[str, Any],
    *,
    ip: str = "198.51.100.10",
    country: str | None = "US",
    **extra: Any,
) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": who,
        "eventTime": when,
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": ip,
        "userAgent": "aws-cli/2.22",
        "eventID": f"00000000-0000-4000-8000-{next(_ids):012d}",
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT_A,
        **extra,
    }
    if country is not None:
        record["xcountry_code"] = country
    return record


def write_events(root: Path, records: Iterable[dict[str, Any]]) -> None:
    """Enriched files in the S3 layout, one per (account, region, day) and call."""
    groups: dict[tuple[str, str, date], list[dict[str, Any]]] = defaultdict(list)
    for item in records:
        day = date.fromisoformat(item["eventTime"][:10])
        groups[(item["recipientAccountId"], item["awsRegion"], day)].append(item)
    for (account, region, day), items in groups.items():
        path = root / log_key(account, region, day, f"part{next(_ids)}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress(b"".join(orjson.dumps(i) + b"\n" for i in items)))


@pytest.fixture(scope="module")
def shipped() -> dict[str, Detection]:
    return {detection.id: detection for detection in load_detections([default_detections_path()])}


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    return tmp_path / "enriched"


async def fire(lake: Path, detection: Detection, now: datetime = NOW) -> list[DetectionResult]:
    return await run_detections(DuckDBEngine(lake), [detection], now)


def failed_login(when: str, ip: str, who: str = "alice", **extra: Any) -> dict[str, Any]:
    return event(
        "ConsoleLogin",
        "signin.amazonaws.com",
        when,
        user(who),
        ip=ip,
        eventType="AwsConsoleSignIn",
        errorMessage="Failed authentication",
        responseElements={"ConsoleLogin": "Failure"},
        additionalEventData={"MFAUsed": "No"},
        **extra,
    )


# The shipped set


def test_the_shipped_set_loads(shipped: dict[str, Detection]) -> None:
    assert set(shipped) >= {
        "console-login-failures",
        "access-denied-burst",
        "new-country-for-principal",
        "discovery-burst",
        "new-access-key-foreign-use",
        "secrets-bulk-read",
        "mass-deletion",
    }
    for detection in shipped.values():
        assert detection.enabled
        assert detection.description and detection.runbook and detection.author
        assert detection.tags
        assert detection.group_by
        assert detection.source.parent == default_detections_path()


# console-login-failures: 5 failures from one IP in 15 minutes


async def test_console_login_failures_fire(lake: Path, shipped: dict[str, Detection]) -> None:
    attacker = "203.0.113.9"
    write_events(
        lake,
        [failed_login(t(f"11:4{n}"), attacker, who) for n, who in enumerate("aabbc", start=5)]
        + [event("ConsoleLogin", "signin.amazonaws.com", t("11:50"), user("alice"), ip=attacker)],
    )
    [result] = await fire(lake, shipped["console-login-failures"])
    assert result.group_key == {"source_ip": attacker}
    assert result.count == 5
    assert result.window_start == datetime(2026, 3, 10, 11, 45, tzinfo=UTC)
    assert result.window_end == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    assert result.row["principal"] == "a, b, c"
    assert result.row["last_time"] == t("11:49")
    assert result.summary() == (
        "console-login-failures [high] source_ip=203.0.113.9:"
        " 2026-03-10T11:45:00Z .. 2026-03-10T12:00:00Z, 5 in 15m"
    )


async def test_console_login_failures_do_not_fire(
    lake: Path, shipped: dict[str, Detection]
) -> None:
    write_events(
        lake,
        # four failures from one address: below the threshold
        [failed_login(t(f"11:4{n}"), "203.0.113.9") for n in range(5, 9)]
        # five failures from five addresses
        + [failed_login(t("11:50"), f"203.0.113.{n}") for n in range(20, 25)]
        # five failures from one address, but hours before the evaluated windows
        + [failed_login(t(f"09:0{n}"), "203.0.113.50") for n in range(5)]
        # five successful sign-ins
        + [
            event(
                "ConsoleLogin", "signin.amazonaws.com", t(f"11:5{n}"), user("bob"), ip="192.0.2.1"
            )
            for n in range(5)
        ],
    )
    assert await fire(lake, shipped["console-login-failures"]) == []


# access-denied-burst: 10 denied calls over 3+ APIs by one principal in 15 minutes


def denied(
    name: str, source: str, when: str, who: dict[str, Any], code: str = "AccessDenied"
) -> dict[str, Any]:
    return event(name, source, when, who, errorCode=code, errorMessage="not authorized")


DENIED_APIS = [
    ("ListUsers", "iam.amazonaws.com", "AccessDenied"),
    ("ListBuckets", "s3.amazonaws.com", "AccessDenied"),
    ("ListSecrets", "secretsmanager.amazonaws.com", "AccessDeniedException"),
    ("DescribeInstances", "ec2.amazonaws.com", "Client.UnauthorizedOperation"),
    ("ListAccounts", "organizations.amazonaws.com", "AccessDeniedException"),
]


async def test_access_denied_burst_fires(lake: Path, shipped: dict[str, Detection]) -> None:
    mallory = user("mallory")
    write_events(
        lake,
        [
            denied(name, source, t(f"11:3{n % 10}"), mallory, code)
            for n, (name, source, code) in enumerate(DENIED_APIS * 2)
        ],
    )
    [result] = await fire(lake, shipped["access-denied-burst"])
    assert result.group_key == {"principal_arn": arn_of("mallory")}
    assert result.count == 10
    assert result.row["actions"] == 5
    assert result.window_start == datetime(2026, 3, 10, 11, 30, tzinfo=UTC)


async def test_access_denied_burst_does_not_fire(lake: Path, shipped: dict[str, Detection]) -> None:
    records = [
        denied(name, source, t(f"11:3{n}"), user("mallory"), code)
        for n, (name, source, code) in enumerate((DENIED_APIS * 2)[:9])
    ]  # nine: below the threshold
    records += [
        denied("GetObject", "s3.amazonaws.com", t(f"11:4{n % 10}"), user("cronjob"))
        for n in range(30)
    ]  # one API retried: a broken job, not enumeration
    records += [
        denied(name, source, t("11:50"), SERVICE, code) for name, source, code in DENIED_APIS * 3
    ]  # AWS services
    write_events(lake, records)
    assert await fire(lake, shipped["access-denied-burst"]) == []


# new-country-for-principal: a country not seen for the principal in the previous 30 days


def call(when: str, who: dict[str, Any], country: str, **extra: Any) -> dict[str, Any]:
    return event("GetCallerIdentity", "sts.amazonaws.com", when, who, country=country, **extra)


async def test_new_country_fires(lake: Path, shipped: dict[str, Detection]) -> None:
    write_events(
        lake,
        [
            call(t("09:00", days_ago=10), user("alice"), "US"),
            call(t("09:00", days_ago=3), user("alice"), "US"),
            call(t("11:30"), user("alice"), "RU", sourceIPAddress="203.0.113.66"),
            call(t("11:40"), user("alice"), "US"),
            call(t("12:01"), user("alice"), "RU"),
            # carol was seen from both countries; bob has no history to compare with
            call(t("09:00", days_ago=5), user("carol"), "US"),
            call(t("09:00", days_ago=6), user("carol"), "DE"),
            call(t("11:15"), user("carol"), "DE"),
            call(t("11:15"), user("bob"), "CN"),
        ],
    )
    detection = shipped["new-country-for-principal"]
    [result] = await fire(lake, detection)
    assert result.group_key == {"principal_arn": arn_of("alice"), "country": "RU"}
    assert result.count == 2
    assert result.row["known_countries"] == "US"
    assert result.window_start == datetime(2026, 3, 10, 11, tzinfo=UTC)
    # Runs later in the same windows give the same key; once the first call from RU is
    # history, RU is known and nothing fires again.
    [again] = await fire(lake, detection, NOW + timedelta(minutes=20))
    assert again.alert_key == result.alert_key
    assert await fire(lake, detection, NOW + timedelta(hours=1, minutes=3)) == []


async def test_new_country_does_not_fire(lake: Path, shipped: dict[str, Detection]) -> None:
    write_events(
        lake,
        [
            call(t("09:00", days_ago=20), user("alice"), "US"),
            call(t("09:00", days_ago=20), user("alice"), "RU"),
            call(t("11:30"), user("alice"), "RU"),  # seen from RU 20 days ago
            call(t("11:30"), user("dave"), "FR"),  # no history: nothing to compare with
            call(t("11:30"), SERVICE, "IE"),
            call(t("11:30"), user("erin"), "US", xcountry_code=None),
        ],
    )
    assert await fire(lake, shipped["new-country-for-principal"]) == []


async def test_new_country_history_beyond_the_lookback_is_not_read(
    lake: Path, shipped: dict[str, Detection]
) -> None:
    write_events(
        lake,
        [
            call(t("09:00", days_ago=40), user("alice"), "RU"),  # beyond 30 days
            call(t("09:00", days_ago=2), user("alice"), "US"),
            call(t("11:30"), user("alice"), "RU"),
        ],
    )
    [result] = await fire(lake, shipped["new-country-for-principal"])
    assert result.group_key == {"principal_arn": arn_of("alice"), "country": "RU"}


# discovery-burst: 30 different Describe/List/Get calls by one principal in 10 minutes

READ_APIS = [
    (f"{verb}{noun}", f"{service}.amazonaws.com")
    for verb, noun, service in itertools.product(
        ("Describe", "List", "Get"),
        (
            "Instances",
            "Buckets",
            "Users",
            "Roles",
            "Secrets",
            "Keys",
            "Trails",
            "Policies",
            "Functions",
            "Clusters",
        ),
        ("ec2",),
    )
]


async def test_discovery_burst_fires(lake: Path, shipped: dict[str, Detection]) -> None:
    intruder = role_session("Deploy", "i-0abc")
    records = [
        event(name, source, t(f"11:5{n % 10}"), intruder)
        for n, (name, source) in enumerate(READ_APIS)
    ]
    records += [event("DescribeInstances", "ec2.amazonaws.com", t("11:55"), intruder)] * 5
    write_events(lake, records)
    [result] = await fire(lake, shipped["discovery-burst"])
    assert result.group_key == {
        "principal_arn": f"arn:aws:sts::{ACCOUNT_A}:assumed-role/Deploy/i-0abc"
    }
    assert result.count == 30
    assert result.row["calls"] == 35
    assert result.window_start == datetime(2026, 3, 10, 11, 50, tzinfo=UTC)


async def test_discovery_burst_does_not_fire(lake: Path, shipped: dict[str, Detection]) -> None:
    records = [
        event(name, source, t(f"11:5{n % 10}"), user("alice"))
        for n, (name, source) in enumerate(READ_APIS[:29] * 4)
    ]  # 29 different APIs, 116 calls
    records += [
        event(name, source, t("11:51"), SERVICE) for name, source in READ_APIS
    ]  # AWS services
    records += [
        event(name, source, t("11:51"), user("bob"), ip="ec2.amazonaws.com")
        for name, source in READ_APIS
    ]  # called through a service
    records += [
        event(name, source, t(f"11:{n + 20}"), user("carol"))
        for n, (name, source) in enumerate(READ_APIS)
    ]  # 30 APIs, but spread over three windows
    write_events(lake, records)
    assert await fire(lake, shipped["discovery-burst"]) == []


# new-access-key-foreign-use: a new key used from another country than its creation


def create_key(when: str, key_id: str, country: str, **extra: Any) -> dict[str, Any]:
    return event(
        "CreateAccessKey",
        "iam.amazonaws.com",
        when,
        user("admin"),
        country=country,
        requestParameters={"userName": "svc"},
        responseElements={
            "accessKey": {
                "accessKeyId": key_id,
                "status": "Active",
                "userName": "svc",
                "createDate": "Mar 8, 2026 9:00:00 AM",
            }
        },
        **extra,
    )


def key_user(key_id: str) -> dict[str, Any]:
    return {**user("svc"), "accessKeyId": key_id}


async def test_new_access_key_foreign_use_fires(lake: Path, shipped: dict[str, Detection]) -> None:
    key = "AKIANEWKEY0000000001"
    write_events(
        lake,
        [
            create_key(t("09:00", days_ago=2), key, "US"),
            call(t("11:10"), key_user(key), "US"),
            call(t("11:20"), key_user(key), "BR", sourceIPAddress="203.0.113.200"),
            call(t("11:25"), key_user(key), "BR"),
            call(t("11:25"), key_user("AKIAOTHER"), "BR"),  # a key not created lately
        ],
    )
    [result] = await fire(lake, shipped["new-access-key-foreign-use"])
    assert result.group_key == {"access_key_id": key, "country": "BR"}
    assert result.count == 2
    assert result.row["created_country"] == "US"
    assert result.row["key_user"] == "svc"
    assert result.row["creator_arn"] == arn_of("admin")
    assert result.window_start == datetime(2026, 3, 10, 11, tzinfo=UTC)


async def test_new_access_key_foreign_use_does_not_fire(
    lake: Path, shipped: dict[str, Detection]
) -> None:
    same, old, seen, failed = (f"AKIANEWKEY{n:010d}" for n in range(4))
    write_events(
        lake,
        [
            create_key(t("09:00", days_ago=2), same, "US"),
            call(t("11:20"), key_user(same), "US"),  # used where it was created
            create_key(t("09:00", days_ago=10), old, "US"),  # created before the lookback
            call(t("11:20"), key_user(old), "BR"),
            create_key(t("09:00", days_ago=2), seen, "US"),
            call(t("18:00", days_ago=1), key_user(seen), "BR"),  # BR fired yesterday
            call(t("11:20"), key_user(seen), "BR"),
            create_key(t("09:00", days_ago=2), failed, "US", errorCode="LimitExceeded"),
            call(t("11:20"), key_user(failed), "BR"),
        ],
    )
    assert await fire(lake, shipped["new-access-key-foreign-use"]) == []


# secrets-bulk-read: 10 different secrets read by one principal in 15 minutes


def read_secret(when: str, who: dict[str, Any], secret: str, **extra: Any) -> dict[str, Any]:
    return event(
        "GetSecretValue",
        "secretsmanager.amazonaws.com",
        when,
        who,
        requestParameters={"secretId": secret},
        **extra,
    )


async def test_secrets_bulk_read_fires(lake: Path, shipped: dict[str, Detection]) -> None:
    who = role_session("App", "stolen")
    write_events(lake, [read_secret(t(f"11:0{n}"), who, f"prod/db-{n}") for n in range(10)])
    [result] = await fire(lake, shipped["secrets-bulk-read"])
    assert result.group_key == {
        "principal_arn": f"arn:aws:sts::{ACCOUNT_A}:assumed-role/App/stolen"
    }
    assert result.count == 10
    assert result.row["secrets_sample"].startswith("prod/db-0, prod/db-1")


async def test_secrets_bulk_read_does_not_fire(lake: Path, shipped: dict[str, Detection]) -> None:
    who = role_session("App", "web")
    records = [read_secret(t(f"11:1{n % 10}"), who, f"prod/db-{n % 9}") for n in range(40)]
    records += [
        read_secret(t("11:20"), user("eve"), f"prod/x-{n}", errorCode="AccessDeniedException")
        for n in range(12)
    ]
    write_events(lake, records)
    assert await fire(lake, shipped["secrets-bulk-read"]) == []


# mass-deletion: 20 successful Delete*/Terminate* calls by one principal in 15 minutes


def delete(when: str, who: dict[str, Any], n: int, **extra: Any) -> dict[str, Any]:
    name = ("DeleteSnapshot", "TerminateInstances", "DeleteBucket", "ScheduleKeyDeletion")[n % 4]
    return event(name, "ec2.amazonaws.com", when, who, **extra)


async def test_mass_deletion_fires(lake: Path, shipped: dict[str, Detection]) -> None:
    write_events(lake, [delete(t(f"11:0{n % 10}"), user("mallory"), n) for n in range(20)])
    [result] = await fire(lake, shipped["mass-deletion"])
    assert result.group_key == {"principal_arn": arn_of("mallory")}
    assert result.count == 20
    assert result.row["actions"] == 4


async def test_mass_deletion_does_not_fire(lake: Path, shipped: dict[str, Detection]) -> None:
    records = [delete(t(f"11:0{n % 10}"), user("mallory"), n) for n in range(19)]
    records += [delete(t("11:20"), user("eve"), n, errorCode="AccessDenied") for n in range(25)]
    records += [delete(t("11:20"), SERVICE, n) for n in range(25)]
    records += [delete(t("09:00"), user("trent"), n) for n in range(25)]  # long ago
    write_events(lake, records)
    assert await fire(lake, shipped["mass-deletion"]) == []


# Running: all detections together, windows, dedup, failures


async def test_all_shipped_detections_over_an_empty_lake(
    lake: Path, shipped: dict[str, Detection]
) -> None:
    assert await run_detections(DuckDBEngine(lake), list(shipped.values()), NOW) == []


async def test_all_shipped_detections_run_together(
    lake: Path, shipped: dict[str, Detection]
) -> None:
    write_events(
        lake,
        [failed_login(t(f"11:4{n}"), "203.0.113.9") for n in range(5, 10)]
        + [delete(t(f"11:0{n % 10}"), user("mallory"), n) for n in range(20)],
    )
    results = await run_detections(DuckDBEngine(lake), list(shipped.values()), NOW)
    assert sorted(result.detection.id for result in results) == [
        "console-login-failures",
        "mass-deletion",
    ]


def test_plan_aligns_windows_and_reads_the_lookback(shipped: dict[str, Detection]) -> None:
    burst = plan(shipped["console-login-failures"], NOW)
    params = burst.query.all_params()
    assert params["window_s"] == 900
    assert params["window_start"] == "2026-03-10T11:00:00Z"  # windows ended < 1 h ago
    assert params["window_end"] == iso(NOW)
    assert params["range_start"] == "2026-03-10T11:00:00Z"
    assert params["threshold"] == 5
    assert "{in_range}" not in burst.query.sql and "{bucket}" not in burst.query.sql
    baseline = plan(shipped["new-country-for-principal"], NOW).query
    assert baseline.time_range.start == datetime(2026, 2, 8, 11, tzinfo=UTC)
    assert baseline.all_params()["first_day"] == "2026/02/08"
    assert baseline.all_params()["window_first_day"] == "2026/03/10"
    # A run within the same window evaluates the same windows.
    assert (
        plan(shipped["console-login-failures"], NOW + timedelta(minutes=7)).query.all_params()[
            "window_start"
        ]
        == params["window_start"]
    )


async def test_reruns_in_a_window_are_one_alert_in_the_outbox(
    lake: Path, shipped: dict[str, Detection], tmp_path: Path
) -> None:
    detection = shipped["console-login-failures"]
    write_events(lake, [failed_login(t(f"11:4{n}"), "203.0.113.9") for n in range(5, 10)])
    first = alerts_for(await fire(lake, detection, NOW))
    write_events(lake, [failed_login(t("11:52"), "203.0.113.9")])  # a late event, same window
    later = alerts_for(await fire(lake, detection, NOW + timedelta(minutes=5)))
    assert [alert.group_key for alert in first] == [alert.group_key for alert in later]
    assert dedup_key(first[0]) == dedup_key(later[0])
    assert dedup_key(first[0]).startswith("console-login-failures|")
    store = SqliteState(tmp_path / "state")
    try:
        assert store.files.record_done("k1", None, "o1", 0, [], first) == 1
        assert store.files.record_done("k2", None, "o2", 0, [], later) == 0
        [pending] = store.outbox.pending_alerts()
        assert pending.alert == first[0]
    finally:
        store.close()
    # The next window is another alert.
    write_events(lake, [failed_login(t(f"12:0{n}"), "203.0.113.9") for n in range(5)])
    next_window = await fire(lake, detection, NOW + timedelta(minutes=10))
    assert [r.window_start.minute for r in next_window] == [45, 0]
    assert len({dedup_key(alert) for alert in alerts_for(next_window)}) == 2


async def test_alerts_from_results(lake: Path, shipped: dict[str, Detection]) -> None:
    write_events(lake, [delete(t(f"11:0{n % 10}"), user("mallory"), n) for n in range(20)])
    results = await fire(lake, shipped["mass-deletion"])
    [alert] = alerts_for(results)
    assert alert.rule_id == "mass-deletion"
    assert alert.rule_title == "Mass deletion by one principal (20 in 15m)"
    assert alert.severity is Severity.HIGH
    assert alert.principal == "mallory"
    assert alert.identity_type == "IAMUser"
    assert alert.account == ACCOUNT_A
    assert alert.region == "us-east-1"
    assert alert.source_ip == "198.51.100.10"
    assert alert.country == "US"
    assert alert.event_time == t("11:09")
    assert alert.event_source == "ec2.amazonaws.com"
    assert alert.event_id is not None
    assert alert.runbook == shipped["mass-deletion"].runbook
    assert alert.author == "umbrellabot"
    assert alert.group_key == f'{{"principal_arn":"{arn_of("mallory")}"}}@2026-03-10T11:00:00Z'
    assert alert_from_json(orjson.dumps(alert.as_dict()).decode()) == alert
    assert alerts_for(results, Severity.CRITICAL) == []


def test_settings_choose_the_detections_and_the_folder(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, enriched_local_path=tmp_path)  # type: ignore[call-arg]
    assert detection_paths(settings) == [default_detections_path()]
    assert duckdb_engine(settings).root == tmp_path
    chosen = Settings(_env_file=None, detections_path=f"{tmp_path}/a,{tmp_path}/b")  # type: ignore[call-arg]
    assert detection_paths(chosen) == [tmp_path / "a", tmp_path / "b"]


def test_principal_of_a_role_session_arn(shipped: dict[str, Detection]) -> None:
    result = DetectionResult(
        shipped["discovery-burst"],
        {"principal_arn": "arn:aws:sts::1:assumed-role/Deploy/i-0abc"},
        NOW,
        NOW + timedelta(minutes=10),
        {"principal_arn": "arn:aws:sts::1:assumed-role/Deploy/i-0abc", "bucket": 1, "count": 3.0},
    )
    [alert] = alerts_for([result])
    assert alert.principal == "Deploy/i-0abc"
    assert alert.event_time == iso(NOW + timedelta(minutes=10))
    assert result.count == 3


DETECTION = """
id: {id}
title: Test detection
severity: low
window: 15m
threshold: 1
group_by: [principal_arn]
sql: {sql}
"""
GOOD_SQL = (
    "SELECT useridentity.arn AS principal_arn, {bucket} AS bucket, count(*) AS count"
    " FROM {events} WHERE {in_range} GROUP BY 1, 2 HAVING count(*) >= :threshold"
)


def write_detection(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_a_failing_detection_does_not_stop_the_others(
    lake: Path, shipped: dict[str, Detection], tmp_path: Path
) -> None:
    broken_sql = GOOD_SQL.replace("useridentity.arn", "no_such_column")
    write_detection(tmp_path / "d", "broken.yaml", DETECTION.format(id="broken", sql=broken_sql))
    [broken] = load_detections([tmp_path / "d"])
    write_events(lake, [delete(t(f"11:0{n % 10}"), user("mallory"), n) for n in range(20)])
    with pytest.raises(DetectionRunError) as caught:
        await run_detections(DuckDBEngine(lake), [broken, shipped["mass-deletion"]], NOW)
    assert [result.detection.id for result in caught.value.results] == ["mass-deletion"]
    assert list(caught.value.failures) == ["broken"]
    assert "no_such_column" in caught.value.failures["broken"]


async def test_in_window_reads_only_the_evaluated_windows(lake: Path, tmp_path: Path) -> None:
    sql = (
        "WITH w AS (SELECT useridentity.arn AS principal_arn, {bucket} AS bucket"
        " FROM {events} WHERE {in_window}),"
        " r AS (SELECT useridentity.arn AS principal_arn, count(*) AS total"
        " FROM {events} WHERE {in_range} GROUP BY 1)"
        " SELECT w.principal_arn, w.bucket, count(*) AS count, max(r.total) AS total"
        " FROM w JOIN r ON r.principal_arn = w.principal_arn"
        " GROUP BY 1, 2 HAVING count(*) >= :threshold"
    )
    text = with_sql(sql, "windowed").replace("window: 15m", "window: 15m\nlookback: 1d")
    write_detection(tmp_path / "d", "windowed.yaml", text)
    [detection] = load_detections([tmp_path / "d"])
    write_events(
        lake,
        [call(t("18:00", days_ago=1), user("alice"), "US")] * 3  # in the lookback only
        + [call(t("23:00", days_ago=2), user("alice"), "US")]  # before the lookback
        + [call(t("11:20"), user("alice"), "US")] * 2,
    )
    [result] = await fire(lake, detection)
    assert result.count == 2
    assert result.row["total"] == 5


async def test_rows_for_windows_outside_the_evaluated_ones_are_ignored(
    lake: Path, tmp_path: Path
) -> None:
    sql = GOOD_SQL.replace("{bucket} AS bucket", "0 AS bucket")
    write_detection(tmp_path / "d", "old.yaml", DETECTION.format(id="old", sql=sql))
    write_events(lake, [call(t("11:30"), user("alice"), "US")])
    [detection] = load_detections([tmp_path / "d"])
    assert await fire(lake, detection) == []
    disabled = dataclasses.replace(detection, enabled=False)
    assert await fire(lake, disabled) == []


# Loading


def test_durations() -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration(" 1h ") == timedelta(hours=1)
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("15", "15 minutes", "1.5h", "-1h", "h", ""):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert [format_duration(parse_duration(x)) for x in ("15m", "60m", "1d", "90s", "14d")] == [
        "15m",
        "1h",
        "1d",
        "90s",
        "2w",
    ]


def test_a_detections_list_file_loads(tmp_path: Path) -> None:
    body = "\n".join(
        "  - " + DETECTION.format(id=name, sql=f'"{GOOD_SQL}"').strip().replace("\n", "\n    ")
        for name in ("one", "two")
    )
    write_detection(tmp_path, "set.yml", f"detections:\n{body}\n")
    assert [d.id for d in load_detections([tmp_path])] == ["one", "two"]


def problems_of(tmp_path: Path, **files: str) -> list[str]:
    for name, text in files.items():
        write_detection(tmp_path, f"{name}.yaml", text)
    with pytest.raises(DetectionError) as caught:
        load_detections([tmp_path])
    return caught.value.problems


def with_sql(sql: str, detection_id: str = "x") -> str:
    return DETECTION.format(id=detection_id, sql=orjson.dumps(sql).decode())


def only_problem(tmp_path: Path, text: str) -> str:
    [problem] = problems_of(tmp_path, bad=text)
    assert problem.startswith(f"{tmp_path / 'bad.yaml'}: detection ")
    return problem


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ("15 minutes", "window: expected a duration such as 15m"),
        ("0m", "window: expected between 1m and 1w"),
        ("30d", "window: expected between 1m and 1w"),
        ("15", "window: expected a duration"),
    ],
)
def test_a_bad_window(tmp_path: Path, window: str, expected: str) -> None:
    text = with_sql(GOOD_SQL).replace("window: 15m", f"window: {window}")
    assert expected in only_problem(tmp_path, text)


def test_sql_without_in_range(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, with_sql(GOOD_SQL.replace("WHERE {in_range}", "")))
    assert "detection 'x': sql: does not restrict the partitions: add {in_range}" in problem


def test_a_second_scan_without_its_own_restriction(tmp_path: Path) -> None:
    sql = GOOD_SQL + " UNION ALL SELECT principal_arn, 1, 1 FROM {events}"
    assert "reads {events} 2 times but restricts only 1" in only_problem(tmp_path, with_sql(sql))


def test_sql_that_does_not_parse(tmp_path: Path) -> None:
    sql = GOOD_SQL.replace("GROUP BY 1, 2", "GROUP BY BY 1, 2 ((")
    assert "sql: does not parse as Trino SQL" in only_problem(tmp_path, with_sql(sql))


def test_sql_that_is_not_a_select(tmp_path: Path) -> None:
    sql = "DELETE FROM {events} WHERE {in_range}"
    assert "sql: expected a SELECT statement" in only_problem(tmp_path, with_sql(sql))


def test_an_unknown_parameter_or_placeholder(tmp_path: Path) -> None:
    sql = GOOD_SQL.replace(":threshold", ":treshold")
    assert "sql: unknown parameter :treshold" in only_problem(tmp_path, with_sql(sql))
    sql = GOOD_SQL.replace("{in_range}", "{in_rnage} AND {in_window}")
    assert "sql: unknown placeholder {in_rnage}" in only_problem(tmp_path / "2", with_sql(sql))


def test_a_result_without_the_bucket_or_a_group_column(tmp_path: Path) -> None:
    sql = GOOD_SQL.replace("{bucket} AS bucket", "{bucket} AS window_no")
    assert "sql: the result has no column 'bucket'" in only_problem(tmp_path, with_sql(sql))
    sql = GOOD_SQL.replace("AS principal_arn", "AS who")
    problem = only_problem(tmp_path / "2", with_sql(sql))
    assert "sql: the result has no column 'principal_arn'" in problem


def test_unknown_key_and_missing_key(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, with_sql(GOOD_SQL) + "treshold: 5\n")
    assert "detection 'x': treshold: unknown key" in problem
    problem = only_problem(tmp_path / "2", with_sql(GOOD_SQL).replace("threshold: 1\n", ""))
    assert "detection 'x': threshold: missing required key" in problem


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("threshold: 1", "threshold: 0", "threshold: expected a whole number, 1 or more"),
        ("threshold: 1", "threshold: true", "threshold: expected a whole number"),
        ("severity: low", "severity: urgent", "severity: unknown severity 'urgent'"),
        ("group_by: [principal_arn]", "group_by: principal_arn", "group_by: expected a list"),
        ("group_by: [principal_arn]", "group_by: [Principal]", "group_by: 'Principal' is not"),
        ("window: 15m", "window: 15m\nlookback: 2y", "lookback: expected a duration"),
        ("window: 15m", "window: 15m\nenabled: yes", "enabled: expected true or false"),
    ],
)
def test_bad_values(tmp_path: Path, old: str, new: str, expected: str) -> None:
    text = with_sql(GOOD_SQL)
    assert old in text
    assert expected in only_problem(tmp_path, text.replace(old, new))


def test_duplicate_ids_and_all_problems_together(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        a=with_sql(GOOD_SQL, "same"),
        b=with_sql(GOOD_SQL, "same"),
        c=with_sql(GOOD_SQL.replace("{in_range}", "1 = 1"), "unrestricted"),
        d="id: [not, text]\n",
        e="just text\n",
        f="key: [unclosed\n",
    )
    assert len(problems) == 5
    assert (
        f"{tmp_path / 'b.yaml'}: detection 'same': id: duplicate id, first defined in"
        in (problems[0])
    )
    assert problems[1].startswith(f"{tmp_path / 'c.yaml'}: detection 'unrestricted': sql:")
    assert problems[2] == f"{tmp_path / 'd.yaml'}: detection #1: id: expected text"
    assert problems[3].startswith(f"{tmp_path / 'e.yaml'}: expected a detection")
    assert problems[4].startswith(f"{tmp_path / 'f.yaml'}: invalid YAML")


def test_missing_paths_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(DetectionError, match="no such file or folder"):
        load_detections([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DetectionError, match="no detection files"):
        load_detections([tmp_path / "empty"])
