import pytest
from django.utils import translation


@pytest.fixture(autouse=True)
def _english():
    """A request in Italian leaves Italian active in the thread: start each test in English."""
    with translation.override("en"):
        yield
