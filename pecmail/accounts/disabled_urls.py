"""allauth pages pecmail shadows with a 404, mounted under ``accounts/confirm-email/``.

ACCOUNT_EMAIL_VERIFICATION is "none": allauth's "we have sent you an e-mail" page and its
confirmation links would promise a message that is never sent.
"""

from django.urls import path

from .views import email_verification_disabled

urlpatterns = [
    path("", email_verification_disabled),
    path("<str:key>/", email_verification_disabled),
]
