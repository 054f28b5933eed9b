"""README's "Your first rule" and "Your first detection over history", run command by command as
a reader would, in a fresh folder beside a copy of examples/. The dates are the sample data's
own and `--since` runs to today, so the walk-through cannot rot with the calendar."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

BLOCK = re.compile(r"<!-- walkthrough: ([a-z-]+) -->\n```sh\n(.*?)```", re.S)


def walkthroughs() -> dict[str, list[str]]:
    text = (REPO_ROOT / "README.md").read_text()
    return {
        name: [line for line in body.splitlines() if line.strip()]
        for name, body in BLOCK.findall(text)
    }


def run_all(commands: list[str], cwd: Path) -> list[str]:
    """Each command in bash, as typed; every one must succeed. Returns their outputs."""
    shutil.copytree(REPO_ROOT / "examples", cwd / "examples")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "SLACK_", "CLOUDTRAIL_", "RULES_", "ENRICHED_", "STATE_"))
        and key not in ("UMBRELLABOT_ENV_FILE", "DETECTIONS_PATH", "ALLOWED_COUNTRIES")
    }
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["COLUMNS"] = "200"
    outputs = []
    for command in commands:
        done = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    return outputs


def test_both_walkthroughs_are_in_the_readme() -> None:
    assert set(walkthroughs()) == {"first-rule", "first-detection"}


def test_your_first_rule(tmp_path: Path) -> None:
    new, tested, scanned, shown = run_all(walkthroughs()["first-rule"], tmp_path)
    assert "wrote sg-opened-by-a-person.yaml" in new
    assert "2 cases passed, 0 failed" in tested
    assert "sg-opened-by-a-person" in scanned and "iam-user-created" in scanned  # beside the pack
    assert "sg-opened-by-a-person" in shown and "7f3c2a10-0008-4e5b-9a61-0c1d2e3f0008" in shown
    assert "from port: 22" in shown and "CIDR: 0.0.0.0/0" in shown  # the rule's context


@pytest.mark.timeout(120)
def test_your_first_detection_over_history(tmp_path: Path) -> None:
    scanned, found = run_all(walkthroughs()["first-detection"], tmp_path)
    assert "Files enriched: 3" in scanned
    assert "console-login-failures [high] source_ip=81.2.69.142" in found
    assert "1 findings, 0 failed" in found
