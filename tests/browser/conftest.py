"""Playwright on Debian's Chromium against pytest-django's ``live_server``.

Fixtures for every browser test:

- ``browser_page``: a desktop page (1280×800) in a fresh Chromium profile;
- ``phone_page``: the same at 375×740 (a small phone, touch enabled);
- ``demo_user``: alice@PEC_DOMAIN with the demo password (a ``Mailbox``);
- ``login(page, live_server, email, password)``: signs in through the real login form.

Chromium missing → the tests are skipped, unless ``PECMAIL_REQUIRE_BROWSER=1`` (CI), then
they fail. On failure a screenshot lands in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = Path(os.environ.get("PECMAIL_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}

# The sync Playwright API runs an event loop in this thread; Django's ORM (used by the
# tests to create data) refuses to run in a thread with a running loop unless told.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    browser_dir = Path(__file__).resolve().parent
    for item in items:
        if browser_dir in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    # Kept on the item so that the page fixtures know, at teardown, whether to take a screenshot.
    setattr(item, f"_report_{report.when}", report)
    return report


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing (apt-get install chromium)"
    if os.environ.get("PECMAIL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here but {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def _playwright(request: pytest.FixtureRequest) -> Iterator[object]:
    _require_chromium()
    # Other folders' conftests re-export this fixture, and pytest then keeps one session
    # instance per conftest (and may import this file twice, under two module names): a second
    # sync_playwright() in the same thread fails, so a whole `make test` errored in tests/options
    # and tests/search/browser. The first instance, kept on the pytest config, is shared.
    running = getattr(request.config, "_pecmail_playwright", None)
    if running is not None:
        yield running
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        request.config._pecmail_playwright = playwright  # type: ignore[attr-defined]
        try:
            yield playwright
        finally:
            request.config._pecmail_playwright = None  # type: ignore[attr-defined]


def _page(
    request: pytest.FixtureRequest, playwright, viewport: dict[str, int], **context_options
) -> Iterator:
    profile = tempfile.mkdtemp(prefix="pecmail-chromium-")
    context = playwright.chromium.launch_persistent_context(
        profile,
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport=viewport,
        locale="en-US",
        **context_options,
    )
    context.set_default_timeout(10_000)
    page = context.pages[0] if context.pages else context.new_page()
    try:
        yield page
    finally:
        report = getattr(request.node, "_report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-150:]
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            except Exception as exc:  # the page may already be gone; the test failure matters more
                print(f"screenshot failed: {exc}")
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser_page(request: pytest.FixtureRequest, _playwright, live_server) -> Iterator:
    """A desktop-sized Playwright page (1280×800); ``live_server.url`` is the app."""
    yield from _page(request, _playwright, DESKTOP)


@pytest.fixture
def phone_page(request: pytest.FixtureRequest, _playwright, live_server) -> Iterator:
    """A phone-sized Playwright page (375×740, touch, mobile user agent not faked)."""
    yield from _page(request, _playwright, PHONE, has_touch=True, is_mobile=True)


@pytest.fixture
def demo_user(transactional_db):
    """alice@PEC_DOMAIN with the demo password, as ``make run`` creates her."""
    from pecmail.mail import services as mail_services

    return mail_services.mailbox_create(
        address=f"alice@{settings.PEC_DOMAIN}",
        password=settings.PEC_DEMO_PASSWORD,
        display_name="Alice Rossi",
    )


def login(page, live_server, email: str, password: str) -> None:
    """Sign in through the real login form and wait until the shell is shown."""
    page.goto(f"{live_server.url}/accounts/login/")
    # By name, not by label: the page may be in Italian.
    form = page.locator("form#login-form")
    form.locator("input[name=login]").fill(email)
    form.locator("input[name=password]").fill(password)
    form.locator("button[type=submit]").click()
    page.wait_for_selector("nav.tabs", state="attached")


def no_horizontal_overflow(page) -> bool:
    """True when the document is not wider than the viewport.

    Compared with the layout viewport (``clientWidth``), not ``innerWidth``: a mobile page
    (``is_mobile``) zooms out to fit a too-wide document, and ``innerWidth`` grows with it.
    """
    return bool(page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))
