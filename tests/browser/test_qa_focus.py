"""The keyboard focus ring must show on the white pages too, not only on the dark header."""

import pytest

from tests.browser.conftest import login

pytestmark = pytest.mark.browser


def _luminance(rgb: str) -> float:
    parts = [int(x) / 255 for x in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in parts]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: str, b: str) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_it_draws_a_focus_ring_with_3_to_1_contrast_on_the_page_background(
    browser_page, live_server, demo_user, settings
):
    login(browser_page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    browser_page.goto(f"{live_server.url}/contacts/")
    button = browser_page.locator("main a.button").first
    button.focus()
    browser_page.keyboard.press("Shift+Tab")
    browser_page.keyboard.press("Tab")
    style = button.evaluate(
        """el => { const s = getComputedStyle(el); const bg = getComputedStyle(document.body).backgroundColor;
           return {matches: el.matches(':focus-visible'), outline: s.outlineColor, width: s.outlineWidth,
                   shadow: s.boxShadow, bg}; }"""
    )
    assert style["matches"] is True
    assert style["width"] == "3px"
    rings = [style["outline"]]
    if style["shadow"] != "none":
        rings.append(style["shadow"][: style["shadow"].index(")") + 1])
    assert max(_contrast(ring, style["bg"]) for ring in rings) >= 3
