"""`athena ddl --account ID [--org ID]` prints the DDL offline: no bucket read, no credentials;
the trail prefix and the processed bucket still come from the settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from umbrellabot import cli

ORG = "o-abcd123456"


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No AWS anywhere: no credentials, no config, an endpoint nothing listens on."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("AWS_", "CLOUDTRAIL_", "PROCESSED_", "UMBRELLABOT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CLOUDTRAIL_BUCKET_NAME", "acme-trail")
    return tmp_path


def properties(ddl: str) -> tuple[exp.Create, dict[str, str]]:
    tree = sqlglot.parse_one(ddl, read="athena")
    assert isinstance(tree, exp.Create)
    found = {
        p.this.this: p.args["value"].this
        for p in tree.find_all(exp.Property)
        if type(p) is exp.Property
    }
    return tree, found


def test_accounts_and_an_org_offline(offline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["athena", "ddl", "--account", "111122223333", "--account", "444455556666"]
    assert cli.main([*args, "--org", ORG]) == cli.EXIT_OK
    _, found = properties(capsys.readouterr().out)
    assert found["projection.account.values"] == "111122223333,444455556666"
    assert found["storage.location.template"] == (
        f"s3://acme-trail/processed/AWSLogs/{ORG}/${{account}}/CloudTrail/${{region}}/${{date}}"
    )


def test_the_prefix_and_the_processed_bucket_are_honoured(
    offline: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLOUDTRAIL_INITIAL_PREFIX", f"{ORG}/AWSLogs/{ORG}/")  # Control Tower
    monkeypatch.setenv("PROCESSED_BUCKET_NAME", "acme-copies")
    assert cli.main(["athena", "ddl", "--account", "111122223333"]) == cli.EXIT_OK
    tree, found = properties(capsys.readouterr().out)
    location = tree.find(exp.LocationProperty)
    assert location is not None
    assert location.this.this == f"s3://acme-copies/processed/{ORG}/AWSLogs/{ORG}/"
    assert found["umbrellabot.layout"] == f"{ORG}/AWSLogs/{ORG}/"
    monkeypatch.setenv("CLOUDTRAIL_INITIAL_PREFIX", "custom/")  # a prefix above AWSLogs/
    assert cli.main(["athena", "ddl", "--account", "111122223333"]) == cli.EXIT_OK
    _, found = properties(capsys.readouterr().out)
    assert found["storage.location.template"].startswith(
        "s3://acme-copies/processed/custom/AWSLogs/"
    )


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({}, ["--account", "12"], "'12' is not an account id"),
        ({}, ["--org", ORG], "--org goes with --account"),
        (
            {"CLOUDTRAIL_INITIAL_PREFIX": "AWSLogs/o-zzzz999999/"},
            ["--account", "111122223333", "--org", ORG],
            f"--org {ORG} contradicts CLOUDTRAIL_INITIAL_PREFIX",
        ),
    ],
)
def test_what_cannot_be_a_table_is_one_line_and_exit_2(
    offline: Path,
    env: dict[str, str],
    args: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["athena", "ddl", *args]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
