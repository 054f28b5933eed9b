"""A file is done (copy, index, alerts) or not done at all, whatever its records hold: an
absurd record leaves the file done and the state small; a state that refuses the file's commit
leaves no enriched copy behind for Athena."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from builders import ACCOUNT_A, create_user, log_key, record, today
from s3_helpers import enriched, put
from test_ingest import outbox, settings_for

from umbrellabot.app import services
from umbrellabot.model.own_alerts import RECORD_TOO_LARGE


def state_rows(settings: Any, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(settings.state_dir / "umbrellabot.sqlite3") as db:
        return db.execute(sql).fetchall()


async def test_an_absurd_record_is_passed_through_and_the_file_done(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    settings = settings_for(bucket, tmp_path, max_record_bytes=64 * 1024)
    huge = create_user("huge-1")
    huge["userAgent"] = "A" * 2_000_000
    key = log_key(ACCOUNT_A, "us-east-1", today(), "absurd")
    put(s3, bucket, key, [record(event_id="before"), huge, create_user("after-1")])
    async with services.ingestor(settings) as runner:
        report = await runner.run_cycle()
    assert report.files == 1 and report.failed == [] and report.abandoned == []
    lines = enriched(s3, bucket, f"processed/{key}")
    assert [line["eventID"] for line in lines] == ["before", "huge-1", "after-1"]
    assert lines[1]["xrules"] == [RECORD_TOO_LARGE] and len(lines[1]["userAgent"]) == 2_000_000
    assert sorted(outbox(settings)) == [
        ("after-1", "iam-user-created"),
        ("huge-1", RECORD_TOO_LARGE),
    ]
    [(longest,)] = state_rows(settings, "SELECT max(length(payload)) FROM outbox")
    assert longest < 10_000  # what the state keeps of a record is bounded
    [(indexed,)] = state_rows(settings, "SELECT count(*) FROM events")
    assert indexed == 3


async def test_a_failed_commit_withdraws_the_copy(s3: Any, bucket: str, tmp_path: Path) -> None:
    settings = settings_for(bucket, tmp_path)
    key = log_key(ACCOUNT_A, "us-east-1", today(), "a")
    put(s3, bucket, key, [create_user("c-1")])
    async with services.ingestor(settings) as runner:
        ledger = runner.work.files

        class Refusing:
            def __getattr__(self, name: str) -> Any:
                return getattr(ledger, name)

            def record_done(self, *args: Any, **kwargs: Any) -> int:
                raise sqlite3.DataError("string or blob too big")

        runner.work.files = Refusing()  # type: ignore[assignment]
        report = await runner.run_cycle()
        assert report.files == 0 and [k for k, _ in report.failed] == [key]
        assert enriched(s3, bucket, f"processed/{key}") == []  # withdrawn: Athena sees nothing
        assert outbox(settings) == []
        runner.work.files = ledger
        report = await runner.run_cycle()
    assert report.files == 1
    assert [line["eventID"] for line in enriched(s3, bucket, f"processed/{key}")] == ["c-1"]
    assert outbox(settings) == [("c-1", "iam-user-created")]
