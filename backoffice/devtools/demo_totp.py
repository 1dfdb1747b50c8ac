"""The demo users' two-step key and its codes, with no Django import (the bench's driver uses it too).

``seed_demo`` gives the key to each demo user whose role needs a second factor (supervisor, auditor,
admin); it is public by design, like the demo password, and printed after every run.
``manage.py demo_code`` prints the code it gives now; the bench signs in with it.
"""

import base64
import hashlib
import hmac
import struct
import time

DEMO_TOTP_SECRET = "CLINICDEMOCLINICDEMOCLINICDEMO23"  # base32, 20 bytes
STEP_SECONDS = 30  # django-otp's TOTPDevice default, which the demo devices keep


def demo_totp_key() -> bytes:
    return base64.b32decode(DEMO_TOTP_SECRET)


def demo_totp_code(step: int | None = None) -> str:
    """The 6-digit code for the demo key at a 30-second time step (now, if not given): RFC 6238."""
    step = int(time.time()) // STEP_SECONDS if step is None else step
    digest = hmac.new(demo_totp_key(), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


_last_step: dict[str, int] = {}


def unused_demo_code(username: str) -> str:
    """A code this process hasn't sent for ``username``: a code works once (django-otp keeps the last
    step used), so a second sign-in in the same 30 s takes the next step's (accepted: one step of
    tolerance), and a third waits for the next step."""
    while True:
        now = int(time.time()) // STEP_SECONDS
        for step in (now, now + 1):
            if step > _last_step.get(username, -1):
                _last_step[username] = step
                return demo_totp_code(step)
        time.sleep(STEP_SECONDS - time.time() % STEP_SECONDS + 0.05)
