"""The fuzzing runs in one process: under pytest-xdist schemathesis runs a single operation's cases per test
function, and the reach check cannot see the others' answers, so a run there would prove little while passing."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    if os.environ.get("PYTEST_XDIST_WORKER") and any(str(item.path).startswith(here) for item in items):
        raise pytest.UsageError("run tests/fuzz in one process: pytest -p no:xdist tests/fuzz (scripts/test does)")
