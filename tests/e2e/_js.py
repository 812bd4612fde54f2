"""Node and the npm packages of tests/js (botframework-directlinejs, Web Chat), shared by the e2e tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

JS_DIR = Path(__file__).resolve().parents[1] / "js"
NPM_TIMEOUT = 300.0


def unavailable(reason: str) -> NoReturn:
    """Skip outside CI; in CI a missing tool is a failure (a skip would hide the gap anyway, see tests/conftest.py)."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def _node_modules_stale() -> bool:
    installed = JS_DIR / "node_modules" / ".package-lock.json"  # written by npm install / npm ci
    lock = JS_DIR / "package-lock.json"
    return not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime


def node_with_packages(needed_by: str) -> str:
    """The node executable, with tests/js/node_modules installed (`npm ci` if scripts/test did not do it)."""
    node = shutil.which("node")
    if node is None:
        unavailable(f"node is not installed: {needed_by} need Node.js >= 18")
    if _node_modules_stale():
        npm = shutil.which("npm")
        if npm is None:
            unavailable("npm is not installed and tests/js/node_modules is missing")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
            check=False,
        )
        assert result.returncode == 0, f"npm ci in {JS_DIR} failed\n{result.stdout}\n{result.stderr}"
    return node
