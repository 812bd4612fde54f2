"""Suite-wide rules (in CI, CI=true, a skipped test is a failure: it hides a gap) and the Redis servers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.redis_servers import redis_cluster, redis_server


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not os.environ.get("CI") or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        for report in skipped:
            print(f"\nCI: skipped test counts as a failure: {report.nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server shared by the session's tests (each uses keys of its own prefix)."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-node Redis Cluster shared by the session's tests: its `redis+cluster://` URL."""
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as url:
        yield url
