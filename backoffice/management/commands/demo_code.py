"""Print the two-step code the demo key gives now, for signing in as a demo supervisor, auditor or admin.

The key (backoffice.devtools.demo_totp.DEMO_TOTP_SECRET) is public, like the demo password: only
the demo users ``seed_demo`` loads have it. This reads no database and no real account's secret.
"""

import time
from typing import Any

from django.core.management.base import BaseCommand

from backoffice.devtools.demo_totp import demo_totp_code


class Command(BaseCommand):
    help = "Print the current two-step code of the demo users (supervisor, auditor, admin) from the public demo key."

    def handle(self, *args: Any, **options: Any) -> None:
        now = time.time()
        left = 30 - int(now) % 30
        self.stdout.write(f"{demo_totp_code(int(now) // 30)}  (changes in {left} s; a code works once)")
