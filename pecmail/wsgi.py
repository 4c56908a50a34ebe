import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pecmail.settings")
application = get_wsgi_application()

# With DEBUG off, refuse to serve while demo mailboxes keep their public password.
from pecmail.accounts.checks import refuse_demo_data_in_production  # noqa: E402

refuse_demo_data_in_production()
