"""The shared Playwright fixtures (tests/browser/conftest.py) for the Search tab's journeys."""

from tests.browser.conftest import _playwright, browser_page, demo_user, phone_page  # noqa: F401
