"""Helpers for the tests that drive the `adaptune` command against a real Ray head (test_faults, test_jobs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

BIN = os.path.dirname(sys.executable)


def write_config(directory: Path, base: dict[str, Any], name: str = "search.yaml", **overrides: Any) -> str:
    """A search config file: ``base`` with ``overrides`` on top."""
    path = directory / name
    path.write_text(yaml.safe_dump({**base, **overrides}, sort_keys=False))
    return str(path)


def adaptune(*args: Any, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the command to the end in its own session (a driver that starts a local Ray never signals pytest)."""
    return subprocess.run([f"{BIN}/adaptune", *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)


def one_line_error(stderr: str, field: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"adaptune: error: {field}: "), stderr[-2000:]
