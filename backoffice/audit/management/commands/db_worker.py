"""``manage.py db_worker``: django-tasks-db's worker, refusing to start like the web server does.

The worker writes the access log's checkpoints, the send-outs' and critical calls' events: with
production settings (DEBUG off) it refuses to start when its database role could rewrite the audit
tables (backoffice.audit.checks, audit.E001). Everything else is django-tasks-db's own command; this
app comes before django_tasks_db in INSTALLED_APPS, so ``manage.py db_worker`` finds this one.
"""

from typing import Any

from django_tasks_db.management.commands.db_worker import Command as WorkerCommand

from backoffice.audit.checks import refuse_to_start_command


class Command(WorkerCommand):
    def run_from_argv(self, argv: list[str]) -> Any:
        refuse_to_start_command("db_worker")
        return super().run_from_argv(argv)
