from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render

from pecmail.lib.http import AuthenticatedHttpRequest


@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(request, "contacts/index.html", {"tab": "contacts"})
