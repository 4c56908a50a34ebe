import base64
import hashlib
import hmac
import struct
import time
from datetime import UTC, datetime

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"


def totp(secret: str, at: float, step: int = 30, digits: int = 6) -> str:
    """RFC 6238 TOTP (HMAC-SHA1), written here so the test does not trust allauth's own code."""
    key = base64.b32decode(secret, casefold=True)
    digest = hmac.new(key, struct.pack(">Q", int(at) // step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**digits:0{digits}d}"


def post_login(client, email: str, password: str):
    return client.post(LOGIN, {"login": email, "password": password})


def test_it_logs_in_with_the_right_password(client, alice):
    response = post_login(client, alice.address, PASSWORD)
    assert response.status_code == 302
    assert response.url == reverse("mail:index")
    assert client.get(reverse("mail:index")).status_code == 200


def test_it_accepts_the_address_in_any_case(client, alice):
    response = post_login(client, alice.address.upper(), PASSWORD)
    assert response.status_code == 302


def test_it_refuses_a_wrong_password(client, alice):
    response = post_login(client, alice.address, "not-the-password")
    assert response.status_code == 200
    assert response.context["form"].errors
    assert "_auth_user_id" not in client.session
    assert client.get(reverse("mail:index")).status_code == 302


def test_it_stores_passwords_with_argon2(alice):
    import pecmail.settings as project_settings

    # The suite swaps in cheaper Argon2 costs; the project itself hashes with Django's Argon2.
    assert project_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert alice.owner.password.startswith("argon2$") is True


def test_it_locks_the_login_after_five_failures_even_for_the_right_password(client, alice):
    for _ in range(5):
        response = post_login(client, alice.address, "wrong-password")
        assert "Too many failed login attempts" not in response.content.decode()
    response = post_login(client, alice.address, PASSWORD)
    assert response.status_code == 200
    assert "Too many failed login attempts. Try again later." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_it_lets_the_login_in_again_once_the_window_has_passed(client, alice):
    with time_machine.travel(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), tick=False) as traveller:
        for _ in range(5):
            post_login(client, alice.address, "wrong-password")
        assert "Too many failed" in post_login(client, alice.address, PASSWORD).content.decode()
        traveller.shift(6 * 60)
        assert post_login(client, alice.address, PASSWORD).status_code == 302


def test_it_answers_429_when_the_login_page_is_hammered(client, alice, settings):
    settings.ACCOUNT_RATE_LIMITS = {**settings.ACCOUNT_RATE_LIMITS, "login": "3/m/ip"}
    statuses = [post_login(client, alice.address, "wrong-password").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_it_has_no_public_sign_up(client, db):
    response = client.get("/accounts/signup/")
    assert response.status_code == 200
    assert "Sign Up Closed" in response.content.decode()
    assert "no public sign-up" in response.content.decode()
    response = client.post(
        "/accounts/signup/",
        {"email": "eve@pec.localhost", "password1": "x-Long-pass-1", "password2": "x-Long-pass-1"},
    )
    from pecmail.accounts.models import User

    assert User.objects.filter(email="eve@pec.localhost").exists() is False


def test_it_does_not_let_users_change_their_login_address(alice_client):
    assert alice_client.get("/accounts/email/").status_code == 404


@pytest.mark.parametrize("url", ["/accounts/confirm-email/", "/accounts/confirm-email/MTI:1abc:xyz/"])
def test_it_has_no_email_verification_pages(client, alice_client, url):
    """pecmail never sends a verification e-mail: no page may claim it did."""
    for visitor in (client, alice_client):
        response = visitor.get(url)
        assert response.status_code == 404
        assert "sent" not in response.content.decode().lower()


def test_it_logs_out_with_a_post(client, alice):
    post_login(client, alice.address, PASSWORD)
    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert client.get(reverse("mail:index")).status_code == 302


def test_it_changes_the_password(client, alice):
    post_login(client, alice.address, PASSWORD)
    response = client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": "a-new-Password-2026", "password2": "a-new-Password-2026"},
    )
    assert response.status_code == 302
    alice.owner.refresh_from_db()
    assert alice.owner.check_password("a-new-Password-2026") is True


def test_it_sends_a_password_reset_link_that_sets_a_new_password(client, alice, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": alice.address})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    link = next(word for word in mailoutbox[0].body.split() if "/accounts/password/reset/key/" in word)
    path = link.split("://", 1)[1].split("/", 1)[1]
    response = client.get("/" + path, follow=True)
    form_url = response.redirect_chain[-1][0] if response.redirect_chain else "/" + path
    response = client.post(form_url, {"password1": "reset-Password-2026", "password2": "reset-Password-2026"})
    assert response.status_code == 302
    alice.owner.refresh_from_db()
    assert alice.owner.check_password("reset-Password-2026") is True


class TestTwoFactor:
    START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def enrol(self, client, alice) -> str:
        """Log in, confirm the password, activate TOTP; returns the secret."""
        assert post_login(client, alice.address, PASSWORD).status_code == 302
        activate = reverse("mfa_activate_totp")
        response = client.get(activate)
        # allauth asks for the password again before security changes.
        assert response.status_code == 302 and "reauthenticate" in response.url
        response = client.post(response.url, {"password": PASSWORD})
        assert response.status_code == 302
        response = client.get(activate)
        assert response.status_code == 200
        secret = response.context["form"].secret
        body = response.content.decode()
        assert 'src="data:image/svg+xml;base64,' in body  # the QR code is an <img>, CSP-safe
        assert secret in body
        right = totp(secret, time.time())
        wrong = client.post(activate, {"code": f"{(int(right) + 1) % 1_000_000:06d}"})
        assert wrong.status_code == 200 and wrong.context["form"].errors
        assert Authenticator.objects.filter(user=alice.owner).exists() is False
        response = client.post(activate, {"code": right})
        assert response.status_code == 302
        return secret

    def login_again(self, client, alice, traveller) -> None:
        client.post(reverse("account_logout"))
        traveller.shift(90)  # a fresh code: allauth refuses to reuse the enrolment code
        response = post_login(client, alice.address, PASSWORD)
        assert response.status_code == 302
        assert response.url == reverse("mfa_authenticate")

    def test_it_enrols_totp_and_creates_recovery_codes(self, client, alice):
        with time_machine.travel(self.START, tick=False):
            self.enrol(client, alice)
            types = set(Authenticator.objects.filter(user=alice.owner).values_list("type", flat=True))
            assert types == {Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES}
            codes = Authenticator.objects.get(user=alice.owner, type=Authenticator.Type.RECOVERY_CODES)
            assert len(codes.wrap().get_unused_codes()) == 10
            response = client.get(reverse("mfa_index"))
            assert "Authentication using an authenticator app is active." in response.content.decode()
            response = client.get(reverse("mfa_view_recovery_codes"))
            assert response.status_code == 200
            assert codes.wrap().get_unused_codes()[0] in response.content.decode()

    def test_it_asks_for_the_code_at_login_and_accepts_the_right_one(self, client, alice):
        with time_machine.travel(self.START, tick=False) as traveller:
            secret = self.enrol(client, alice)
            self.login_again(client, alice, traveller)
            assert "_auth_user_id" not in client.session
            assert client.get(reverse("mail:index")).status_code == 302
            page = client.get(reverse("mfa_authenticate"))
            assert "Please enter an authenticator code" in page.content.decode()
            response = client.post(reverse("mfa_authenticate"), {"code": totp(secret, time.time())})
            assert response.status_code == 302
            assert client.get(reverse("mail:index")).status_code == 200

    def test_it_refuses_a_wrong_code_at_login(self, client, alice):
        with time_machine.travel(self.START, tick=False) as traveller:
            secret = self.enrol(client, alice)
            self.login_again(client, alice, traveller)
            right = totp(secret, time.time())
            response = client.post(
                reverse("mfa_authenticate"), {"code": f"{(int(right) + 1) % 1_000_000:06d}"}
            )
            assert response.status_code == 200
            assert response.context["form"].errors
            assert client.get(reverse("mail:index")).status_code == 302

    def test_it_accepts_a_recovery_code_once(self, client, alice):
        with time_machine.travel(self.START, tick=False) as traveller:
            self.enrol(client, alice)
            codes = Authenticator.objects.get(user=alice.owner, type=Authenticator.Type.RECOVERY_CODES)
            recovery = codes.wrap().get_unused_codes()[0]
            self.login_again(client, alice, traveller)
            assert client.post(reverse("mfa_authenticate"), {"code": recovery}).status_code == 302
            self.login_again(client, alice, traveller)
            assert client.post(reverse("mfa_authenticate"), {"code": recovery}).status_code == 200


def test_it_sends_the_admin_login_through_allauth(client, db):
    response = client.get("/admin/")
    assert response.status_code == 302
    response = client.get(response.url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_it_opens_the_admin_to_staff_only(client, alice):
    post_login(client, alice.address, PASSWORD)
    assert client.get("/admin/", follow=True).status_code == 403
    alice.owner.is_staff = alice.owner.is_superuser = True
    alice.owner.save()
    response = client.get("/admin/")
    assert response.status_code == 200
    assert "<script>" not in response.content.decode()  # admin pages also live under the CSP
