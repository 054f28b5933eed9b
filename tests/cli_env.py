"""Running a command in-process as from a folder of one's own: no stray `.env`, only the
variables given."""

from __future__ import annotations

from pathlib import Path

import pytest


def use_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **values: str) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("UMBRELLABOT_ENV_FILE", raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
