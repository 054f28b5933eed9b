"""What only the DynamoDB state has: items past their TTL read as gone (moto never deletes
them, AWS deletes late), INDEX_EVENTS=alerts, the table made by `umbrellabot state setup`, and
settings and a missing table refused in one line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from builders import create_user
from cli_env import use_env
from daemon_harness import clean_env, run_cli

from umbrellabot.config import SettingsError, load_settings
from umbrellabot.enrich.enrichment import alert_for
from umbrellabot.model.records import Event
from umbrellabot.rules.rule import Rule, default_rules_path, load_rules
from umbrellabot.storage.dynamodb import DynamoState, connect, setup_table
from umbrellabot.storage.dynamodb.files import event_key, file_key
from umbrellabot.storage.dynamodb.table import encode


@pytest.fixture(scope="module")
def rule() -> Rule:
    rules = load_rules([default_rules_path()], {"allowed_countries": ["US"]})
    [found] = [r for r in rules if r.id == "iam-user-created"]
    return found


def table_state(name: str, *, index_all: bool) -> DynamoState:
    state = connect(name, region="us-east-1", retention_days=30, index_all_events=index_all)
    setup_table(state.table)
    return state


def expire(state: DynamoState, pk: str, sk: str) -> None:
    """What DynamoDB does not do at once: the item's TTL passes, the item stays."""
    state.table.client.update_item(
        TableName=state.table.name,
        Key=encode({"pk": pk, "sk": sk}),
        UpdateExpression="SET expires = :past",
        ExpressionAttributeValues=encode({":past": time.time() - 1}),
    )


def test_items_past_their_ttl_read_as_gone(aws_env: dict[str, str], rule: Rule) -> None:
    state = table_state("ttl-state", index_all=True)
    try:
        key = "AWSLogs/1/CloudTrail/us-east-1/2026/12/03/a.json.gz"
        state.files.record_done(key, "e", "processed/a", 1, [("e-1", None, "HIGH")], [])
        assert key in state.files.file_states([key.rsplit("/", 1)[0] + "/"])
        expire(state, *file_key(key))
        expire(state, *event_key("e-1"))
        assert state.files.file_states([key]) == {}  # past retention: processed again if listed
        assert state.events.find_event("e-1") is None
        assert state.lookups.claim_mention("C1", "1.1", time.time())
        expire(state, "mention#C1#1.1", "mention")
        assert state.lookups.claim_mention("C1", "1.1", time.time())  # the old claim is gone
    finally:
        state.close()


def test_index_events_alerts_keeps_only_the_alerted_events(
    aws_env: dict[str, str], rule: Rule
) -> None:
    state = table_state("alerts-only-state", index_all=False)
    try:
        alert = alert_for(Event(create_user("e-alerted")), rule)
        rows = [("e-alerted", None, "HIGH"), ("e-quiet", None, None)]
        assert state.files.record_done("AWSLogs/k.json.gz", "e", "processed/k", 2, rows, [alert])
        found = state.events.find_event("e-alerted")
        assert found is not None and found.key == "processed/k"
        assert state.events.find_event("e-quiet") is None  # found through Athena instead
    finally:
        state.close()


def test_settings_name_what_the_shared_state_lacks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_env(monkeypatch, tmp_path, STATE_BACKEND="dynamodb")
    with pytest.raises(SettingsError, match="STATE_BACKEND=dynamodb needs DYNAMODB_TABLE"):
        load_settings()
    monkeypatch.setenv("DYNAMODB_TABLE", "no spaces allowed")
    with pytest.raises(SettingsError, match=r"invalid setting DYNAMODB_TABLE .*table name"):
        load_settings()
    monkeypatch.setenv("STATE_BACKEND", "redis")
    with pytest.raises(SettingsError, match="invalid setting STATE_BACKEND"):
        load_settings()


def test_state_setup_makes_the_table_once_and_run_refuses_without_it(
    aws_env: dict[str, str], tmp_path: Path, s3: Any, bucket: str
) -> None:
    env = clean_env(
        **aws_env,
        STATE_BACKEND="dynamodb",
        DYNAMODB_TABLE="setup-state",
        CLOUDTRAIL_BUCKET_NAME=bucket,
        ATHENA_SETUP_ON_START="false",
        DETECTIONS_ENABLED="false",
    )
    missing = run_cli(env, "run", "--once", cwd=tmp_path)
    assert missing.returncode == 3, missing.stderr
    [line] = missing.stderr.strip().splitlines()
    assert "DYNAMODB_TABLE setup-state" in line and "umbrellabot state setup" in line

    made = run_cli(env, "state", "setup", cwd=tmp_path)
    assert made.returncode == 0 and "created" in made.stdout, made.stderr
    again = run_cli(env, "state", "setup", cwd=tmp_path)
    assert again.returncode == 0 and "already there" in again.stdout, again.stderr
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    ttl = dynamodb.describe_time_to_live(TableName="setup-state")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
    ran = run_cli(env, "run", "--once", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_table_of_another_shape_is_refused(aws_env: dict[str, str], tmp_path: Path) -> None:
    dynamodb = boto3.client("dynamodb", endpoint_url=aws_env["AWS_ENDPOINT_URL"])
    dynamodb.create_table(
        TableName="someone-elses",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    env = clean_env(**aws_env, STATE_BACKEND="dynamodb", DYNAMODB_TABLE="someone-elses")
    refused = run_cli(env, "state", "setup", cwd=tmp_path)
    assert refused.returncode == 3
    assert (
        "someone-elses (DYNAMODB_TABLE)" in refused.stderr and "not umbrellabot's" in refused.stderr
    )
