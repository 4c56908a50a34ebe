"""A contact created in the Contacts tab is offered by the compose To/Cc autocomplete."""

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from pecmail.contacts import services
from tests.browser.conftest import login

pytestmark = pytest.mark.browser


def test_it_suggests_a_new_contact_and_a_group_in_compose(browser_page, live_server, demo_user):
    page = browser_page
    login(page, live_server, demo_user.address, settings.PEC_DEMO_PASSWORD)
    page.goto(f"{live_server.url}/contacts/new/")
    page.get_by_label("First name").fill("Lucia")
    page.get_by_label("Last name").fill("Mondella")
    page.locator("#id_addr-0-address").fill(f"lucia@{settings.PEC_DOMAIN}")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r".*/contacts/\d+/$"))
    group = services.group_create(owner=demo_user.owner, name="Promessi sposi")
    services.contact_add_from_address(
        owner=demo_user.owner, address="renzo@example.com", name="Renzo Tramaglino"
    )[0].groups.add(group)

    page.goto(f"{live_server.url}/messages/compose/")
    to = page.get_by_label("To", exact=True)
    to.press_sequentially("mondel")
    options = page.locator("#address-suggestions option")
    expect(options).to_have_count(1)
    expect(options.first).to_have_attribute("value", f'"Lucia Mondella" <lucia@{settings.PEC_DOMAIN}>')
    # Taking the suggestion and asking for a group: the group expands to its members.
    to.fill(f'"Lucia Mondella" <lucia@{settings.PEC_DOMAIN}>, promessi')
    to.press_sequentially(" s")
    expect(options.first).to_have_attribute(
        "value", f'"Lucia Mondella" <lucia@{settings.PEC_DOMAIN}>, renzo@example.com'
    )
