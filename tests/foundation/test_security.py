import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from pecmail.accounts.checks import check_no_demo_data_in_production
from pecmail.mail import services as mail_services

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    environment.update(DJANGO_SETTINGS_MODULE="pecmail.settings", **env)
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_it_refuses_to_start_without_debug_on_the_development_key():
    result = run_python("import django; django.setup()", DEBUG="False")
    assert result.returncode != 0
    assert "SECRET_KEY is the development key" in result.stderr


def test_it_starts_without_debug_on_a_real_key():
    result = run_python("import django; django.setup(); print('ok')", DEBUG="False", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_it_flags_demo_mailboxes_when_debug_is_off(settings):
    mail_services.mailbox_create(address=f"bob@{settings.PEC_DOMAIN}", password=settings.PEC_DEMO_PASSWORD)
    settings.DEBUG = True
    assert check_no_demo_data_in_production() == []
    settings.DEBUG = False
    errors = check_no_demo_data_in_production()
    assert [error.id for error in errors] == ["pecmail.E001"]
    assert f"bob@{settings.PEC_DOMAIN}" in errors[0].msg


def test_it_accepts_demo_addresses_whose_password_was_changed(settings):
    mailbox = mail_services.mailbox_create(
        address=f"carol@{settings.PEC_DOMAIN}", password="a-real-Password-2026"
    )
    settings.DEBUG = False
    assert check_no_demo_data_in_production() == []
    mailbox.owner.set_password(settings.PEC_DEMO_PASSWORD)
    mailbox.owner.save()
    assert len(check_no_demo_data_in_production()) == 1


def test_it_refuses_to_serve_with_demo_data_when_debug_is_off(settings):
    from django.core.exceptions import ImproperlyConfigured

    from pecmail.accounts.checks import refuse_demo_data_in_production

    mail_services.mailbox_create(address=f"alice@{settings.PEC_DOMAIN}", password=settings.PEC_DEMO_PASSWORD)
    settings.DEBUG = True
    refuse_demo_data_in_production()  # development: fine
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured, match="demo mailboxes"):
        refuse_demo_data_in_production()


def test_it_refuses_demo_setup_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="refusing with DEBUG off"):
        call_command("demo", "setup")


def test_it_sends_the_security_headers(client):
    response = client.get(reverse("account_login"))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    csp = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";") if " " in part.strip())
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert "'unsafe-inline'" not in csp
    # Django adds the nonce only to responses whose template used it; never 'unsafe-inline'.
    assert directives["script-src"].split()[0] == "'self'"
    assert directives["default-src"] == "'self'"


def test_it_serves_pages_without_inline_scripts_or_styles(alice_client):
    for url in ("/accounts/2fa/", "/accounts/password/change/", "/accounts/sessions/"):
        body = alice_client.get(url).content.decode()
        assert "<script>" not in body and "style=" not in body, url
        for chunk in body.split("<script")[1:]:
            assert chunk.split(">", 1)[0].count("src=") == 1, url


def test_it_marks_session_cookies_http_only_and_lax(settings):
    assert settings.SESSION_COOKIE_HTTPONLY is True
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"


def test_it_uses_secure_cookies_and_hsts_when_debug_is_off():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS > 0)"
    )
    result = run_python(code, DEBUG="False", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True"]


def test_it_documents_every_setting_of_the_environment_in_env_example():
    import re

    source = (ROOT / "pecmail" / "settings.py").read_text()
    read = set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z0-9_]+)"', source))
    read |= set(re.findall(r'os\.environ\.get\(\s*"([A-Z0-9_]+)"', source))
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read - documented == set()
