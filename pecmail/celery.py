"""The Celery application: settings come from Django's, prefixed CELERY_."""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pecmail.settings")

app = Celery("pecmail")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_postrun.connect(dispatch_uid="pecmail.database_connections_check")
def database_connections_check(sender: object = None, task: object = None, **kwargs: object) -> None:
    """Close a worker's database connection that broke during the task; keep a healthy one.

    Celery's Django fixup closes every connection around every task unless
    ``CELERY_DB_REUSE_MAX`` is set, and a new PostgreSQL backend per task costs more than
    most tasks (process start, cold catalog caches). With reuse on, this check is what
    replaces the fixup's per-task close: a connection that saw an error and no longer
    answers (database restarted) is dropped, so the next task connects afresh instead of
    failing. The same checks as Django's ``close_if_unusable_or_obsolete`` at the end of a
    request, without its age limit (the fixup recycles every CELERY_DB_REUSE_MAX tasks).
    """
    request = getattr(task, "request", None)
    if request is None or getattr(request, "is_eager", False):
        return
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"]:
            conn.close()
        elif conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()
