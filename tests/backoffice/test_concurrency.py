"""Racing claims, with real threads and one database connection each."""

import threading

import pytest
from django.db import connection

from backoffice import roles
from backoffice.models import Handoff, HandoffEvent, User
from backoffice.services import AlreadyClaimed, handoff_claim
from backoffice.workflow import HandoffStatus
from tests.factories import HandoffFactory, UserFactory

CLAIMERS = 20


# Committed rows so each thread's own connection sees them; serialized rollback puts back the
# roles and catalogs seeded by migrations, which a transactional test's flush would erase.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_exactly_one_of_twenty_simultaneous_claims_wins() -> None:
    # Committed rows (transaction=True), so every thread's own connection can see them.
    handoff = HandoffFactory()
    assistants = [
        UserFactory(first_name="Assistant", last_name=f"No{i:02d}", role=roles.ROLE_MEDICAL_ASSISTANT)
        for i in range(CLAIMERS)
    ]
    barrier = threading.Barrier(CLAIMERS)
    winners: list[User] = []
    refusals: list[tuple[User, AlreadyClaimed]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def claim(ma: User) -> None:
        try:
            # Each thread loads its own instance and permissions before the start line.
            mine = Handoff.objects.get(pk=handoff.pk)
            ma.has_perm("backoffice.claim_handoff")
            barrier.wait(timeout=30)
            try:
                handoff_claim(handoff=mine, by=ma)
            except AlreadyClaimed as refused:
                with lock:
                    refusals.append((ma, refused))
            else:
                with lock:
                    winners.append(ma)
        except BaseException as error:
            with lock:
                errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(ma,)) for ma in assistants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(winners) == 1
    [winner] = winners
    assert len(refusals) == CLAIMERS - 1
    assert all(str(refused).startswith(f"Already claimed by {winner} at ") for _, refused in refusals)
    assert {ma.pk for ma, _ in refusals} == {ma.pk for ma in assistants} - {winner.pk}

    stored = Handoff.objects.get(pk=handoff.pk)
    assert (stored.status, stored.claimed_by_id, stored.version) == (HandoffStatus.CLAIMED, winner.pk, 2)
    claims = HandoffEvent.objects.filter(handoff=handoff, action=HandoffEvent.Action.CLAIMED)
    assert claims.count() == 1
    assert claims.get().actor_id == winner.pk
