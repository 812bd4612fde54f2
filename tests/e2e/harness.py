"""The e2e harness: openline and the botbuilder bot as subprocesses on free ports, and a Direct Line 1.1 client."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from openline.devcert import DevCert

E2E_DIR = Path(__file__).resolve().parent
BOT_SCRIPT = E2E_DIR / "botbuilder_bot.py"
START_TIMEOUT = 20.0  # seconds a process may take to become ready (about 1 s normally)
STOP_TIMEOUT = 10.0  # seconds a process may take to exit after SIGTERM before it is killed
HTTP_TIMEOUT = 20.0

SECRET = "e2e-secret-0123456789"
BOT_ID = "bot"  # the id openline gives the bot of `--bot URL` (config.load_config)
SEQ_DIGITS = 18


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# settings a bot SDK reads from the environment: a developer's shell must not turn authentication on in a test bot
_BOT_SETTINGS = ("OPENLINE_", "Microsoft", "ToBotFrom", "ToChannelFrom", "CONNECTIONS__", "Connections__", "SIDECAR")


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_BOT_SETTINGS)}
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONWARNINGS", None)
    return env


class Process:
    """One subprocess with stdout/stderr in files under the test's tmp_path; stopped by its `Processes`."""

    def __init__(
        self, name: str, args: Sequence[str], log_dir: Path, cwd: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.args = list(args)
        self.stdout_path = log_dir / f"{name}.stdout.log"
        self.stderr_path = log_dir / f"{name}.stderr.log"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            # the child keeps its own copies of the descriptors; ours are closed at once
            self.popen = subprocess.Popen(
                self.args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=cwd,
                env={**_child_env(), **(env or {})},
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def describe(self) -> str:
        code = self.popen.poll()
        state = "running" if code is None else f"exited with {code}"
        return (
            f"===== {self.name} (pid {self.pid}, {state}): {' '.join(self.args)}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = START_TIMEOUT) -> None:
        """Poll `ready` until it holds; fail with the process output if it exits or the deadline passes."""
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                pytest.fail(f"{self.name} exited before {what}\n{self.describe()}")
            if ready():
                return
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name}: no {what} within {timeout:g} s\n{self.describe()}")
            time.sleep(0.05)

    def kill(self) -> int:
        """SIGKILL: no shutdown code runs, as in a crash or an OOM kill."""
        self.popen.kill()
        return self.popen.wait(STOP_TIMEOUT)

    def terminate(self) -> int:
        """SIGTERM and wait for a graceful exit (killed if it takes longer than STOP_TIMEOUT)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(STOP_TIMEOUT)


class Openline(Process):
    """An `openline serve` subprocess; `url` is its base URL (https when started with a `DevCert`)."""

    def __init__(
        self, name: str, port: int, args: Sequence[str], log_dir: Path, cwd: Path, tls: DevCert | None = None
    ) -> None:
        self.port = port
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        command = [sys.executable, "-m", "openline", "serve", "--port", str(port), *args]
        if tls is not None:
            command += ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key), "--public-url", self.url]
        super().__init__(name, command, log_dir, cwd)

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What an httpx client trusts to reach this service: the dev CA when it serves https."""
        return ssl.create_default_context(cafile=str(self.tls.ca_cert)) if self.tls is not None else True

    def _healthy(self) -> bool:
        try:
            with httpx.Client(timeout=1.0, verify=self.verify) as client:
                response = client.get(self.url + "/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.json() == {"status": "ok"}

    def wait_ready(self) -> Openline:
        self.wait_until(self._healthy, "GET /healthz 200")
        return self

    def stop_gracefully(self) -> None:
        """SIGTERM, and check the shutdown ran to its end: exit status 0 and the log says so (README: Stopping)."""
        code = self.terminate()
        assert code == 0, f"{self.name} exited with {code}\n{self.describe()}"
        assert "Application shutdown complete" in self.stderr, self.describe()


class Bot(Process):
    """The botbuilder bot subprocess; `endpoint` is its messaging endpoint."""

    def __init__(self, name: str, port: int, log_dir: Path, cwd: Path) -> None:
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}/api/messages"
        super().__init__(name, [sys.executable, str(BOT_SCRIPT), "--port", str(port)], log_dir, cwd)

    def wait_ready(self) -> Bot:
        self.wait_until(lambda: "ready" in self.stdout and _port_open(self.port), "'ready' and an open port")
        return self


class Processes:
    """Starts the test's subprocesses, and stops every one of them at teardown (the bot last)."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.log_dir = tmp_path / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self.started: list[Process] = []

    def _name(self, base: str) -> str:
        return f"{base}-{sum(1 for p in self.started if p.name.startswith(base + '-')) + 1}"

    def openline(self, *args: str, port: int | None = None, wait: bool = True, tls: DevCert | None = None) -> Openline:
        """Start `python -m openline serve --port PORT *args` (a free port unless given) and wait for /healthz.

        With `tls` (from `openline.devcert.make_dev_cert`), it serves https with
        that certificate, and its public URL is `https://127.0.0.1:PORT`.
        """
        process = Openline(self._name("openline"), port or free_port(), args, self.log_dir, self.tmp_path, tls)
        self.started.append(process)
        return process.wait_ready() if wait else process

    def bot(self, wait: bool = True) -> Bot:
        """Start tests/e2e/botbuilder_bot.py on a free port and wait until it listens."""
        process = Bot(self._name("bot"), free_port(), self.log_dir, self.tmp_path)
        self.started.append(process)
        return process.wait_ready() if wait else process

    def process(self, base: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> Process:
        """Start any process (a bot of another SDK, say) with extra environment; stopped at teardown like the rest."""
        process = Process(self._name(base), args, self.log_dir, self.tmp_path, env)
        self.started.append(process)
        return process

    def wait_listening(self, process: Process, port: int) -> Process:
        """Wait until the process listens on the loopback port (failing with its output if it exits first)."""
        process.wait_until(lambda: _port_open(port), f"a listener on port {port}")
        return process

    def report(self) -> str:
        return "\n".join(p.describe() for p in self.started)

    def stop_all(self) -> None:
        """Terminate every process (killing those that hang), even when stopping one of them fails."""
        errors: list[BaseException] = []
        for process in reversed(self.started):
            try:
                process.terminate()
            except BaseException as e:
                process.popen.kill()
                errors.append(e)
        if errors:
            raise errors[0]


class DirectLine:
    """A Direct Line 1.1 client (sync httpx) with the secret as its default credential."""

    def __init__(self, base_url: str, secret: str) -> None:
        self.secret = secret
        self.http = httpx.Client(base_url=base_url + "/api", timeout=HTTP_TIMEOUT)

    def __enter__(self) -> DirectLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _auth(self, credential: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {credential or self.secret}"}

    def start(self, credential: str | None = None) -> dict[str, Any]:
        response = self.http.post("/conversations", headers=self._auth(credential))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def post(
        self, conversation_id: str, text: str, sender: str = "user1", credential: str | None = None
    ) -> httpx.Response:
        return self.http.post(
            f"/conversations/{conversation_id}/messages",
            json={"from": sender, "text": text},
            headers=self._auth(credential),
        )

    def send(self, conversation_id: str, text: str, sender: str = "user1", credential: str | None = None) -> None:
        response = self.post(conversation_id, text, sender, credential)
        assert response.status_code == 204, response.text

    def get_response(
        self, conversation_id: str, watermark: str | None = None, credential: str | None = None
    ) -> httpx.Response:
        params = {} if watermark is None else {"watermark": watermark}
        return self.http.get(
            f"/conversations/{conversation_id}/messages", params=params, headers=self._auth(credential)
        )

    def get(self, conversation_id: str, watermark: str | None = None, credential: str | None = None) -> dict[str, Any]:
        """One GET of messages (one page): the MessageSet."""
        response = self.get_response(conversation_id, watermark, credential)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def read_all(
        self, conversation_id: str, watermark: str | None = None, credential: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """Page with the returned watermark until a page comes back empty: (messages, final watermark)."""
        messages: list[dict[str, Any]] = []
        for _ in range(1000):
            page = self.get(conversation_id, watermark, credential)
            watermark = page["watermark"]
            if not page["messages"]:
                assert isinstance(watermark, str)
                return messages, watermark
            messages += page["messages"]
        raise AssertionError("paging did not end")


def seq_of(message: dict[str, Any], conversation_id: str) -> int:
    """The sequence number of a 1.1 message id, after checking it is `{conversationId}|{18 digits}`."""
    match = re.fullmatch(re.escape(conversation_id) + rf"\|(\d{{{SEQ_DIGITS}}})", message["id"])
    assert match, f"message id {message['id']!r} is not '{conversation_id}|<{SEQ_DIGITS} digits>'"
    return int(match.group(1))


def summary(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(from, text) of each message, for comparing conversations at a glance."""
    return [(m["from"], m["text"]) for m in messages]
