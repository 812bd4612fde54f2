"""The web pages in a real browser: Debian's Chromium, driven by Playwright, against openline and a botbuilder bot.

Web Chat is the real bundle from npm (botframework-webchat, tests/js), served with --webchat-file. The chat test
types into Web Chat, uploads an image, then signs in to /inspect and finds the conversation. Screenshots are saved
under test-artifacts/web/ (or $OPENLINE_ARTIFACTS/web/).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import urllib.parse
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e._js import JS_DIR, node_with_packages, unavailable
from tests.e2e.harness import HTTP_TIMEOUT, Openline, Processes, free_port

try:
    from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
except ImportError:  # the test extras were not installed
    sync_playwright = None  # type: ignore[assignment]

ADMIN_SECRET = "e2e-admin-secret-0123456789"
WEBCHAT_JS = JS_DIR / "node_modules" / "botframework-webchat" / "dist" / "webchat.js"
ARTIFACTS = Path(os.environ.get("OPENLINE_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts") / "web"
# as the machine's probe runs Chromium: no sandbox as root, and no background calls to Google's hosts
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 20_000


def _png() -> bytes:
    """A 2x2 RGB PNG: red, green / blue, white."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"\x00\xff\x00\x00\x00\xff\x00" + b"\x00\x00\x00\xff\xff\xff\xff"
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = _png()


def _chromium() -> str:
    path = os.environ.get("OPENLINE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        unavailable("Chromium is not installed (Debian: apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    node_with_packages("the web page tests")
    assert WEBCHAT_JS.is_file(), f"{WEBCHAT_JS} is missing after npm ci"
    executable = _chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context and page; its console errors and page errors are kept for the failure report."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    try:
        yield page
    finally:
        if problems:
            print("\n".join(problems))
        context.close()


def _screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _service(procs: Processes, *extra: str) -> Openline:
    bot = procs.bot(wait=False)
    args = ["--bot", bot.endpoint, "--data-dir", str(procs.tmp_path / "data"), "--admin-secret", ADMIN_SECRET]
    service = procs.openline(*args, *extra, wait=False)
    bot.wait_ready()
    return service.wait_ready()


def _open_chat(page: Page, service: Openline) -> tuple[str, str, Locator]:
    """Open the chat page and wait for the bot's welcome: the page's user id, conversation id and transcript."""
    page.goto(service.url + "/")
    expect(page.locator("#connection-status")).to_have_text("connection: online", timeout=WAIT_MS)
    webchat = page.locator("#webchat")
    user_id = webchat.get_attribute("data-user-id")
    conversation_id = webchat.get_attribute("data-conversation-id")
    assert user_id is not None and re.fullmatch(r"dl_[A-Za-z0-9_-]{16}", user_id)
    assert conversation_id
    transcript = page.locator(".webchat__basic-transcript")
    expect(transcript).to_contain_text(f"Welcome, {user_id}!", timeout=WAIT_MS)
    return user_id, conversation_id, transcript


def _say(page: Page, transcript: Locator, text: str) -> None:
    """Type a message into Web Chat's send box and wait for the bot's echo of it."""
    box = page.locator(".webchat__send-box-text-box__input")
    box.fill(text)
    box.press("Enter")
    expect(transcript).to_contain_text(f"echo: {text}", timeout=WAIT_MS)


def _transcript(page: Page) -> str:
    return page.locator(".webchat__basic-transcript").inner_text()


def test_chat_upload_and_inspect_in_a_real_browser(procs: Processes, page: Page) -> None:
    service = _service(procs, "--webchat-file", str(WEBCHAT_JS))

    # the chat page: Web Chat connects over the stream and the bot greets the page's dl_ user
    user_id, conversation_id, transcript = _open_chat(page, service)
    expect(page.locator("#bot-name")).to_have_text("Bot")
    expect(page.locator("#service-status")).to_have_text("service: ok", timeout=WAIT_MS)

    # a message typed into Web Chat's send box comes back from the bot
    _say(page, transcript, "hello from the browser")
    box = page.locator(".webchat__send-box-text-box__input")
    _screenshot(page, "chat")

    # an image through Web Chat's upload button (sent with the next message, Web Chat's default since 4.18):
    # the bot fetches it at the URL it got, and the user sees it
    page.locator("input[type=file]").set_input_files([{"name": "dots.png", "mimeType": "image/png", "buffer": PNG}])
    box.fill("an image")
    page.locator(".webchat__send-button").click()
    expect(transcript).to_contain_text("echo: an image", timeout=WAIT_MS)
    expect(transcript).to_contain_text(f"fetched 200: {len(PNG)} bytes of image/png", timeout=WAIT_MS)
    # Web Chat shows the user's own file from a local copy (a blob: URL) rather than reloading it
    image = transcript.locator('[aria-roledescription="attachment"] img[alt="dots.png"]').first
    expect(image).to_be_visible(timeout=WAIT_MS)
    assert image.evaluate("img => img.complete && img.naturalWidth") == 2
    _screenshot(page, "chat-upload")
    assert "connection: online" in page.locator("#connection-status").inner_text()

    # the inspector: sign in, find the conversation, see its activities both ways with the bot's answers
    page.goto(service.url + "/inspect")
    expect(page.locator("input[name=secret]")).to_be_visible()
    page.locator("input[name=secret]").fill(ADMIN_SECRET)
    page.locator("button[type=submit]").click()
    row = page.locator(f'#conversations tr[data-conversation-id="{conversation_id}"]')
    expect(row).to_be_visible(timeout=WAIT_MS)
    expect(row).to_contain_text(user_id)
    _screenshot(page, "inspect-list")
    row.locator("a").click()
    expect(page.locator("#live-status")).to_have_text("live", timeout=WAIT_MS)
    entries = page.locator("#entries .entry")
    sent = entries.filter(has_text="hello from the browser").and_(page.locator("[data-direction=toBot]"))
    expect(sent).to_have_count(1, timeout=WAIT_MS)
    accepted = re.compile(r"^2\d\d$")  # botbuilder's CloudAdapter answers messages with 201, updates with 200
    expect(sent.locator(".delivery")).to_have_attribute("data-status", accepted)
    expect(entries.filter(has_text="echo: hello from the browser")).to_have_attribute("data-direction", "toClient")
    expect(entries.filter(has_text="dots.png").and_(page.locator("[data-direction=toBot]"))).to_have_count(1)
    joined = page.locator('#entries .entry[data-type="conversationUpdate"]')
    expect(joined.first).to_be_visible()
    for i in range(joined.count()):
        expect(joined.nth(i).locator(".delivery")).to_have_attribute("data-status", accepted)

    # live: a message sent now (through the API, as another client would) appears without a reload
    with httpx.Client(base_url=service.url, timeout=HTTP_TIMEOUT) as client:
        token = client.post("/web/token").json()  # a second conversation must not disturb this view
        assert token["conversationId"] != conversation_id
    page.goto(service.url + "/")
    expect(page.locator("#connection-status")).to_have_text("connection: online", timeout=WAIT_MS)
    second_conversation = page.locator("#webchat").get_attribute("data-conversation-id")
    inspector = page.context.new_page()
    inspector.goto(f"{service.url}/inspect#{second_conversation}")
    expect(inspector.locator("#live-status")).to_have_text("live", timeout=WAIT_MS)
    page.locator(".webchat__send-box-text-box__input").fill("seen live")
    page.locator(".webchat__send-box-text-box__input").press("Enter")
    expect(inspector.locator("#entries .entry").filter(has_text="echo: seen live")).to_have_count(1, timeout=WAIT_MS)
    _screenshot(inspector, "inspect-live")


def test_web_chat_takes_the_user_from_the_token_and_drops_what_the_bot_deletes(procs: Processes, page: Page) -> None:
    """The token's `user` claim is the user id as Web Chat reads it; a bot's delete removes the bubble silently."""
    service = _service(procs, "--webchat-file", str(WEBCHAT_JS))
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    posts: list[tuple[str, str]] = []  # (url, body) of what Web Chat sends to the 3.0 API
    page.on(
        "request",
        lambda r: (
            posts.append((r.url, r.post_data or "")) if r.method == "POST" and "/v3/directline/" in r.url else None
        ),
    )
    user_id, conversation_id, transcript = _open_chat(page, service)
    _say(page, transcript, "keep this one")
    _say(page, transcript, "delete the answer")
    box = page.locator(".webchat__send-box-text-box__input")
    page.locator("input[type=file]").set_input_files([{"name": "dots.png", "mimeType": "image/png", "buffer": PNG}])
    box.fill("with a file")
    page.locator(".webchat__send-button").click()
    expect(transcript).to_contain_text("echo: with a file", timeout=WAIT_MS)

    # what Web Chat sent: the token's user id, a string, as `from.id` and as the upload's userId (the upload is
    # a request of its own, which may still be on its way when the text's echo shows)
    for _ in range(WAIT_MS // 100):
        if any("/upload" in url for url, _ in posts):
            break
        page.wait_for_timeout(100)
    sent = [json.loads(body) for url, body in posts if url.endswith("/activities")]
    assert {activity["from"]["id"] for activity in sent} == {user_id}, sent
    (upload_url,) = [url for url, _ in posts if "/upload" in url]
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(upload_url).query)["userId"] == [user_id]

    # the bot deletes its answer: the bubble goes, and Web Chat has nothing to complain about
    admin = {"Authorization": f"Bearer {ADMIN_SECRET}"}
    with httpx.Client(base_url=service.url, timeout=HTTP_TIMEOUT) as client:
        entries = client.get(f"/admin/conversations/{conversation_id}", headers=admin).json()["entries"]
        (answer,) = [e["id"] for e in entries if e["activity"].get("text") == "echo: delete the answer"]
        path = f"/v3/conversations/{conversation_id}/activities/{urllib.parse.quote(answer, safe='')}"
        assert client.delete(path).status_code == 200
    expect(transcript).not_to_contain_text("echo: delete the answer", timeout=WAIT_MS)
    expect(transcript).to_contain_text("echo: keep this one")
    expect(transcript).to_contain_text("delete the answer")
    _say(page, transcript, "still working")
    _screenshot(page, "chat-after-delete")
    assert not [line for line in console if "renderer" in line.lower()], console
    assert not [line for line in console if line.startswith("error")], console


def test_the_page_says_when_web_chat_cannot_be_loaded(procs: Processes, page: Page) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/webchat.js"
    service = _service(procs, "--webchat-url", nowhere)
    page.goto(service.url + "/")
    problem = page.locator("#problem")
    expect(problem).to_be_visible(timeout=WAIT_MS)
    expect(problem).to_contain_text(f"Web Chat could not be loaded from {nowhere}")
    expect(problem).to_contain_text("--webchat-file")
    expect(page.locator("#service-status")).to_have_text("service: ok", timeout=WAIT_MS)
    _screenshot(page, "chat-no-webchat")


def test_the_inspector_needs_the_admin_secret(procs: Processes, page: Page) -> None:
    service = _service(procs, "--webchat-file", str(WEBCHAT_JS))
    page.goto(service.url + "/inspect")
    page.locator("input[name=secret]").fill("not-the-admin-secret-at-all")
    page.locator("button[type=submit]").click()
    expect(page.locator(".error")).to_have_text("That is not the admin secret.")
    expect(page.locator("#conversations")).to_have_count(0)
    response = page.request.get(service.url + "/admin/conversations")
    assert response.status == 401


def test_the_inspector_survives_activities_of_an_odd_shape(procs: Processes, page: Page) -> None:
    service = _service(procs, "--webchat-file", str(WEBCHAT_JS))
    with httpx.Client(base_url=service.url + "/v3/directline", timeout=HTTP_TIMEOUT) as client:
        session = httpx.post(service.url + "/web/token", timeout=HTTP_TIMEOUT).json()
        auth = {"Authorization": f"Bearer {session['token']}"}
        conversation_id = client.post("/conversations", headers=auth).json()["conversationId"]
        odd = {"type": "message", "from": {"id": session["user"]["id"]}, "text": "odd", "entities": [5]}
        # botbuilder cannot read it either: it answers 500, and the post fails with 502
        answer = client.post(f"/conversations/{conversation_id}/activities", json=odd, headers=auth)
        assert answer.status_code == 502, answer.text
    page.goto(service.url + "/inspect")
    page.locator("input[name=secret]").fill(ADMIN_SECRET)
    page.locator("button[type=submit]").click()
    page.goto(f"{service.url}/inspect#{conversation_id}")
    entries = page.locator("#entries .entry")
    # by the summary column only: a random id in an entry's JSON may contain "odd" too
    sent = entries.filter(has=page.locator(".text", has_text=re.compile(r"^odd$")))
    expect(sent).to_have_count(1, timeout=WAIT_MS)
    expect(sent.locator(".delivery")).to_have_attribute("data-status", "error")
    expect(sent.locator(".delivery")).to_contain_text("500 BotRejectedActivity")
    expect(entries.filter(has_text=f"Welcome, {session['user']['id']}!")).to_have_count(1)
