"""The index page in a real headless Chromium, against a live daphne process."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.conftest import ServerFactory
from tests.live import LiveServer

pytestmark = [pytest.mark.live, pytest.mark.browser]

CHROMIUM = Path(os.environ.get("ECHO_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
TIMEOUT_MS = 15_000
# Far longer than a loopback echo takes, however loaded the machine.
SLOW_RENDERING_MS = 500


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium package"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(
    browser: Browser, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Page]:
    """A fresh page; on a failed test its screenshot is saved and its path printed."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    console_errors: list[str] = []

    def record(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    page.on("console", record)
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    page.console_errors = console_errors  # type: ignore[attr-defined]
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shot = tmp_path_factory.mktemp("screenshots") / f"{request.node.name}.png"
        page.screenshot(path=shot, full_page=True)
        print(f"screenshot of the failed page: {shot}")
    context.close()


def open_page(page: Page, server: LiveServer) -> None:
    page.goto(f"{server.http_url}/")
    expect(page.locator("#state")).to_have_text("open")


def test_page_connects_without_console_errors(page: Page, live_servers: ServerFactory) -> None:
    """The page loads cleanly, connects by itself and shows the negotiated ``echo``."""
    server = live_servers("daphne")
    open_page(page, server)
    expect(page.locator("#negotiated")).to_have_text("echo")
    expect(page.locator("#url")).to_have_value(f"ws://127.0.0.1:{server.port}/echo")
    assert page.console_errors == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["daphne", "uvicorn"])
def test_compressed_echo_through_chromium(
    page: Page, live_servers: ServerFactory, kind: str
) -> None:
    """Chromium offers permessage-deflate; the page shows what was negotiated, and a highly
    compressible message comes back identical."""
    open_page(page, live_servers(kind))
    expect(page.locator("#compression")).to_have_text(re.compile(r"^permessage-deflate\b"))
    message = '{"echo": "compress me"} ' * 4000
    page.get_by_label("Text").fill(message)
    page.get_by_label("Text").press("Enter")
    echoed = page.locator("#log tr[data-event=echoed]").first
    expect(echoed).to_have_attribute("data-check", "identical")
    expect(page.locator("#echoed-summary")).to_have_text("1 message · 93.8 KiB")


def test_compression_off_is_shown(page: Page, live_servers: ServerFactory) -> None:
    open_page(page, live_servers("daphne", ECHO_COMPRESSION="off"))
    expect(page.locator("#compression")).to_have_text("none")


def test_enter_sends_text_and_shows_round_trip(page: Page, live_servers: ServerFactory) -> None:
    """Typing text and pressing Enter shows its echo with a round-trip time."""
    open_page(page, live_servers("daphne"))
    page.get_by_label("Text").fill("hello, échos 🎉")
    page.get_by_label("Text").press("Enter")
    echoed = page.locator("#log tr[data-event=echoed]").first
    expect(echoed).to_have_attribute("data-check", "identical")
    expect(echoed).to_contain_text("hello, échos 🎉")
    expect(echoed.locator("td").nth(4)).to_have_text(re.compile(r"^\d+(\.\d+)? ms$"))
    expect(page.locator("#rtt-median")).to_have_text(re.compile(r"ms$"))
    expect(page.locator("#echoed-summary")).to_have_text("1 message · 18 B")


def test_round_trip_leaves_out_the_pages_own_rendering(
    page: Page, live_servers: ServerFactory
) -> None:
    """The round trip runs from the send to the echo's arrival: with every change the page makes
    to itself slowed to half a second, a loopback echo still reports less than that."""
    open_page(page, live_servers("daphne"))
    page.evaluate(
        """(milliseconds) => {
            const slow = () => {
                const end = performance.now() + milliseconds;
                while (performance.now() < end);
            };
            new MutationObserver(slow).observe(document.getElementById("echo-client"),
                { subtree: true, childList: true, characterData: true, attributes: true });
            const { get, set } = Object.getOwnPropertyDescriptor(
                HTMLInputElement.prototype, "value");
            Object.defineProperty(document.getElementById("text"), "value", {
                get, set(value) { set.call(this, value); slow(); } });
        }""",
        SLOW_RENDERING_MS,
    )
    page.get_by_label("Text").fill("hello")
    page.get_by_label("Text").press("Enter")
    echoed = page.locator("#log tr[data-event=echoed]").first
    expect(echoed).to_have_attribute("data-check", "identical")
    expect(page.locator("#log tr[data-event=sent]")).to_have_count(1)
    expect(page.get_by_label("Text")).to_have_value("")
    round_trip = echoed.locator("td").nth(4).inner_text()
    assert float(round_trip.removesuffix(" ms")) < SLOW_RENDERING_MS, round_trip


def test_random_binary_echo_is_verified(page: Page, live_servers: ServerFactory) -> None:
    """64 KiB of random bytes come back and the page confirms they are byte-identical."""
    open_page(page, live_servers("daphne"))
    page.get_by_label("Random bytes").fill("65536")
    page.get_by_role("button", name="Send bytes").click()
    echoed = page.locator("#log tr[data-event=echoed]").first
    expect(echoed).to_have_attribute("data-check", "identical")
    expect(echoed).to_contain_text("64.0 KiB")
    expect(echoed).to_contain_text("byte-identical")


def test_refused_subprotocol_is_explained(page: Page, live_servers: ServerFactory) -> None:
    """Connecting with ``chat`` shows that the server refused the handshake, and why."""
    open_page(page, live_servers("daphne"))
    page.get_by_role("button", name="Disconnect").click()
    expect(page.locator("#state")).to_have_text("closed")
    page.get_by_label("Subprotocols").fill("chat")
    page.get_by_role("button", name="Connect", exact=True).click()
    notice = page.locator("#notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("refused the handshake")
    expect(notice).to_contain_text("“echo” subprotocol")
    expect(page.locator("#state")).to_have_text("closed")


def test_idle_close_is_explained_and_reconnects(page: Page, live_servers: ServerFactory) -> None:
    """The server's idle close is explained, and Reconnect opens a new connection."""
    open_page(page, live_servers("daphne", ECHO_IDLE_TIMEOUT="1"))
    notice = page.locator("#notice")
    expect(notice).to_contain_text("closed the idle connection after 1 s without a message")
    expect(notice).to_contain_text("close code 1000")
    page.get_by_role("button", name="Reconnect").click()
    expect(page.locator("#state")).to_have_text("open")
    expect(notice).to_be_hidden()


def test_message_over_the_limit_is_explained(page: Page, live_servers: ServerFactory) -> None:
    """A file one byte over the server's limit ends with 1009, explained with the limit."""
    open_page(page, live_servers("daphne", ECHO_MAX_MESSAGE_SIZE="65536"))
    page.get_by_label("File").set_input_files(
        {"name": "too-big.bin", "mimeType": "application/octet-stream", "buffer": b"x" * 65537}
    )
    page.get_by_role("button", name="Send file").click()
    notice = page.locator("#notice")
    expect(notice).to_contain_text("The message was too big")
    expect(notice).to_contain_text("up to 65536 bytes")
    expect(notice).to_contain_text("close code 1009")
