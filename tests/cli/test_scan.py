"""`umbrellabot scan` end to end, as a user runs it: the CLI in a subprocess."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import orjson
from conftest import REPO_ROOT


def run_cli(
    *args: str | Path,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ALLOWED_COUNTRIES", "RULES_PATH", "ALERT_MIN_SEVERITY")
    }
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "umbrellabot", *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def records_of(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def test_scan_the_55_real_delivered_files(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "cloudtrail" / "s3-layout"
    done = run_cli("scan", source, "--out", tmp_path / "out", "--limit", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    inputs = sorted(source.rglob("*.json.gz"))
    assert len(inputs) == 55
    for path in inputs:
        relative = path.relative_to(source)
        output = tmp_path / "out" / relative
        assert output.is_file(), relative
        original = orjson.loads(gzip.decompress(path.read_bytes()))["Records"]
        enriched = records_of(output)
        assert len(enriched) == len(original)
        assert enriched[0]["eventID"] == original[0]["eventID"]
    total = sum(len(orjson.loads(gzip.decompress(p.read_bytes()))["Records"]) for p in inputs)
    assert f"Files enriched: 55   records: {total:,}" in done.stdout
    assert not list((tmp_path / "out").rglob(".partial-*"))


def test_scan_examples_prints_alerts_and_skips_the_digest(tmp_path: Path) -> None:
    done = run_cli("scan", REPO_ROOT / "examples", "--out", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Files enriched: 3" in out
    assert "CloudTrail-Digest file" in out
    for rule_id in (
        "iam-user-created",
        "api-call-from-disallowed-country",
        "root-console-login",
        "cloudtrail-logging-stopped",
        "security-group-ingress-open-to-world",
    ):
        assert rule_id in out
    flat = tmp_path / "out/AWSLogs/111122223333/CloudTrail/eu-central-1/2026/11/29"
    assert [p.name for p in flat.iterdir()] == [
        "111122223333_CloudTrail_eu-central-1_20261129T1600Z_eu.json.gz"  # .json in, .json.gz out
    ]


def test_bad_files_are_reported_and_the_rest_complete(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "good.json.gz").write_bytes(
        gzip.compress(
            b'{"Records": [{"eventName": "CreateUser", '
            b'"eventSource": "iam.amazonaws.com", "eventID": "e-1"}]}'
        )
    )
    (logs / "corrupt.json.gz").write_bytes(b"\x1f\x8b\x08\x00garbage-not-deflate")
    (logs / "truncated.json.gz").write_bytes(
        gzip.compress(b'{"Records": [{"eventName": "A"}, {"eventName": "B"}]}')[:-15]
    )
    (logs / "nojson.json").write_bytes(b"hello")
    (logs / "norecords.json").write_bytes(b'{"logFiles": []}')
    done = run_cli("scan", logs, "--out", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 1
    for name, reason in (
        ("corrupt.json.gz", "corrupt gzip"),
        ("truncated.json.gz", "truncated"),
        ("nojson.json", "JSON"),
        ("norecords.json", "no Records"),
    ):
        line = next(line for line in done.stdout.splitlines() if name in line)
        assert line.startswith("Failed") and reason in line, line
    assert records_of(tmp_path / "out/good.json.gz")[0]["xrules"] == ["iam-user-created"]
    produced = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert produced == ["good.json.gz"]  # complete or absent: no partial outputs


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = run_cli("scan", tmp_path / "nope", "--out", tmp_path / "out", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"umbrellabot: no such file or folder: {tmp_path / 'nope'}"
    no_out = run_cli("scan", tmp_path, cwd=tmp_path)
    assert no_out.returncode == 2
    bad_rules = tmp_path / "bad.yaml"
    bad_rules.write_text("id: x\ntitle: t\nseverity: high\nmatch: {eventName: {equal: 1}}\n")
    done = run_cli("scan", tmp_path, "--out", tmp_path / "out", "--rules", bad_rules, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"umbrellabot: invalid rule: {bad_rules}: rule 'x': match.eventName.equal: unknown "
        "operator 'equal' (known: equals, not_equals, in, not_in, glob, prefix, suffix, contains,"
        " regex, wildcard, exists, present, gt, gte, lt, lte, cidr, where, case_sensitive)"
    )


def test_log_text_cannot_restyle_the_console(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    hostile = "[bold red]fake[/bold red]\x1b[2J<!channel>"
    record = {
        "eventName": "CreateUser",
        "eventSource": "iam.amazonaws.com",
        "eventID": hostile,
        "userIdentity": {"type": "IAMUser", "userName": hostile},
    }
    (logs / "x.json").write_bytes(orjson.dumps({"Records": [record]}))
    done = run_cli("scan", logs, "--out", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 0
    assert "\x1b" not in done.stdout
    assert "[bold red]fake[/bold red]" in done.stdout  # shown literally, not interpreted


def test_rules_commands(tmp_path: Path) -> None:
    listed = run_cli("rules", "list", cwd=tmp_path)
    assert listed.returncode == 0 and "iam-user-created" in listed.stdout
    tested = run_cli("rules", "test", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout
    assert " 0 failed" in tested.stdout
    failing = tmp_path / "r.yaml"
    failing.write_text(
        "id: r\ntitle: t\nseverity: low\nmatch: {eventName: A}\n"
        "tests: [{name: wrong, expect: true, record: {eventName: B}}]\n"
    )
    assert run_cli("rules", "test", failing, cwd=tmp_path).returncode == 1
    assert run_cli("rules", "check", failing, cwd=tmp_path).returncode == 0
    failing.write_text("id: r\n")
    checked = run_cli("rules", "check", failing, cwd=tmp_path)
    assert checked.returncode == 1
    assert "rule 'r': title: missing required key" in checked.stderr


def test_insight_files_are_enriched_and_only_insight_rules_read_them(tmp_path: Path) -> None:
    """An Insights event about StopLogging is a statistic, not someone stopping the trail: the
    Insight rule alerts on its start, the event rule on StopLogging does not."""
    folder = tmp_path / "AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/11/29"
    folder.mkdir(parents=True)
    insight = {
        "eventVersion": "1.08",
        "eventTime": "2026-11-29T10:00:00Z",
        "awsRegion": "us-east-1",
        "eventID": "8b0a4f3e-0a0c-4f7d-9b5e-3c1d2e4f5a6b",
        "eventType": "AwsCloudTrailInsight",
        "eventSource": "cloudtrail.amazonaws.com",
        "eventName": "StopLogging",
        "recipientAccountId": "111122223333",
        "insightDetails": {
            "state": "Start",
            "eventSource": "cloudtrail.amazonaws.com",
            "eventName": "StopLogging",
            "insightType": "ApiCallRateInsight",
            "insightContext": {
                "statistics": {"baseline": {"average": 0.01}, "insight": {"average": 4.5}}
            },
        },
    }
    name = "111122223333_CloudTrail-Insight_us-east-1_20261129T1000Z_abc.json.gz"
    (folder / name).write_bytes(gzip.compress(orjson.dumps({"Records": [insight]})))
    done = run_cli(
        "scan",
        tmp_path / "AWSLogs",
        "--out",
        tmp_path / "out",
        "--min-severity",
        "medium",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "Files enriched: 1" in done.stdout
    assert "cloudtrail-insight-started" in done.stdout
    assert "cloudtrail-logging-stopped" not in done.stdout
    copy = tmp_path / "out/111122223333/CloudTrail-Insight/us-east-1/2026/11/29" / name
    [line] = gzip.decompress(copy.read_bytes()).splitlines()
    assert orjson.loads(line)["xrules"] == ["cloudtrail-insight-started"]
