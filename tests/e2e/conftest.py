"""End-to-end fixtures: `procs` starts subprocesses (always stopped at teardown), `directline` makes clients."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from openline.devcert import DevCert, make_dev_cert
from tests.e2e.harness import SECRET, DirectLine, Openline, Processes

_PROCESSES = pytest.StashKey[Processes]()


@pytest.fixture
def procs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Processes]:
    """The test's subprocess starter; every process it started is terminated (or killed) at teardown."""
    processes = Processes(tmp_path)
    request.node.stash[_PROCESSES] = processes
    try:
        yield processes
    finally:
        processes.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, add the output of the test's subprocesses to the report."""
    report = yield
    processes = item.stash.get(_PROCESSES, None)
    if processes is not None and report.failed and processes.started:
        report.sections.append(("subprocess output", processes.report()))
    return report


@pytest.fixture(scope="session")
def dev_cert(tmp_path_factory: pytest.TempPathFactory) -> DevCert:
    """A local CA and a certificate for 127.0.0.1 and localhost (`openline dev-cert`), shared by the session."""
    return make_dev_cert(tmp_path_factory.mktemp("certs"), [])


@pytest.fixture
def directline() -> Iterator[Callable[..., DirectLine]]:
    """A factory of DirectLine clients, each closed at teardown: `directline(openline_process, secret)`."""
    clients: list[DirectLine] = []

    def make(service: Openline, secret: str = SECRET) -> DirectLine:
        client = DirectLine(service.url, secret)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.close()
