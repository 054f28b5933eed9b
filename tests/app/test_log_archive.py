"""The trail's bucket in a log-archive account: read as AWS_ROLE_ARN (moto's STS), the enriched
copies written to PROCESSED_BUCKET_NAME and the query results to ATHENA_RESULTS_BUCKET with the
default credentials; the Athena table, lookups and `show` follow."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from builders import ACCOUNT_A, create_user, log_key, record, today
from s3_helpers import all_keys, enriched, put

from umbrellabot.app import athena_tables, services, wiring
from umbrellabot.config import Settings
from umbrellabot.query import athena_setup
from umbrellabot.query.athena_ddl import DEFAULT_START, TableLayout

ROLE = "arn:aws:iam::123456789012:role/log-archive-reader"  # moto's account: its buckets


def assumed_roles() -> list[Any]:
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID

    return list(get_backend("sts")[DEFAULT_ACCOUNT_ID]["aws"].assumed_roles)


def settings_for(trail: str, processed: str, results: str, tmp_path: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        cloudtrail_bucket_name=trail,
        processed_bucket_name=processed,
        athena_results_bucket=results,
        aws_role_arn=ROLE,
        aws_role_external_id="umbrellabot-external-id",
        state_dir=tmp_path / "state",
        enrich_workers=0,
        allowed_countries=["US"],
        detections_enabled=False,
    )


async def test_a_log_archive_bucket_is_read_as_the_role_and_written_elsewhere(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    processed, results = f"copies-{uuid.uuid4().hex[:8]}", f"results-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=processed)
    s3.create_bucket(Bucket=results)
    key = log_key(ACCOUNT_A, "us-east-1", today(), "a")
    event_id = str(uuid.uuid4())
    put(s3, bucket, key, [record(), create_user(event_id)])
    settings = settings_for(bucket, processed, results, tmp_path)
    before = len(assumed_roles())

    async with services.ingestor(settings) as runner:
        report = await runner.run_cycle()
    assert report.files == 1 and report.new_alerts == 1
    roles = assumed_roles()[before:]
    assert roles and {r.role_arn for r in roles} == {ROLE}
    assert {r.external_id for r in roles} == {"umbrellabot-external-id"}
    assert all_keys(s3, bucket, "processed/") == []  # the audit bucket is never written
    assert all_keys(s3, processed) == [f"processed/{key}"]
    assert enriched(s3, processed, f"processed/{key}")[1]["xrules"] == ["iam-user-created"]

    async with services.lookup(settings) as (locator, _):
        found = await locator.find(event_id)  # the index, then the copy in PROCESSED_BUCKET_NAME
    assert found is not None and found.record["eventID"] == event_id


def test_the_table_reads_the_processed_bucket_and_results_go_to_theirs(tmp_path: Path) -> None:
    settings = settings_for("trail", "copies", "results", tmp_path)
    table = athena_tables.athena_table(settings)
    layouts = [TableLayout("", None, (ACCOUNT_A,))]
    [ddl] = athena_setup.table_ddls(athena_setup.tables_for(table, layouts), table, DEFAULT_START)
    assert "LOCATION 's3://copies/processed/AWSLogs/" in ddl and "s3://trail/" not in ddl
    assert wiring.results_location(settings) == "s3://results/athena-results/"
