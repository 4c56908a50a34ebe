"""Security: links to the account pages, active sessions, and the recorded login history."""

from __future__ import annotations

import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from pecmail.options.models import LoginEvent
from tests.conftest import PASSWORD

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"


def login(client: Client, address: str, password: str = PASSWORD, ip: str = "203.0.113.7"):
    return client.post(
        reverse("account_login"),
        {"login": address, "password": password},
        REMOTE_ADDR=ip,
        HTTP_USER_AGENT=BROWSER,
    )


def test_it_records_a_login_with_time_ip_and_browser(client, alice):
    assert login(client, alice.address).status_code == 302
    event = LoginEvent.objects.get(user=alice.owner)
    assert event.success is True
    assert event.ip == "203.0.113.7"
    assert event.user_agent == BROWSER
    page = client.get(reverse("options:security")).content.decode()
    assert "203.0.113.7" in page
    assert "Firefox/140.0" in page


def test_it_records_a_failed_attempt_for_the_account(client, alice):
    assert login(client, alice.address, password="wrong", ip="198.51.100.9").status_code == 200
    event = LoginEvent.objects.get(user=alice.owner)
    assert event.success is False
    assert event.ip == "198.51.100.9"
    login(client, alice.address)
    page = client.get(reverse("options:security")).content.decode()
    assert "failed attempt" in page
    assert "198.51.100.9" in page


def test_it_links_to_password_and_two_factor_pages(alice_client):
    page = alice_client.get(reverse("options:security")).content.decode()
    assert reverse("account_change_password") in page
    assert reverse("mfa_index") in page


def test_it_signs_out_every_other_session(alice):
    phone, laptop = Client(), Client()
    login(phone, alice.address, ip="203.0.113.1")
    login(laptop, alice.address, ip="203.0.113.2")
    page = laptop.get(reverse("options:security")).content.decode()
    assert "203.0.113.1" in page
    assert "Sign out everywhere else" in page
    assert laptop.post(reverse("usersessions_list")).status_code == 302
    assert phone.get(reverse("options:security")).status_code == 302
    assert laptop.get(reverse("options:security")).status_code == 200


def test_it_shows_only_the_users_own_logins(client, alice, charlie):
    login(client, alice.address, ip="203.0.113.50")
    client.logout()
    login(client, charlie.address, ip="203.0.113.60")
    page = client.get(reverse("options:security")).content.decode()
    assert "203.0.113.60" in page
    assert "203.0.113.50" not in page


def test_it_asks_anonymous_users_to_log_in(client):
    assert client.get(reverse("options:security")).status_code == 302


def test_it_refuses_post(alice_client):
    assert alice_client.post(reverse("options:security")).status_code == 405


def test_it_forgets_logins_older_than_ninety_days(client, alice):
    with time_machine.travel(timezone.now() - timezone.timedelta(days=91)):
        login(client, alice.address, ip="203.0.113.90")
    client.logout()
    login(client, alice.address, ip="203.0.113.91")
    assert list(LoginEvent.objects.filter(user=alice.owner).values_list("ip", flat=True)) == ["203.0.113.91"]
