"""Two procedures of one handoff finishing at the same moment, with real threads and connections."""

import threading

import pytest
from django.db import connection

from backoffice.models import Handoff
from backoffice.workflow import HandoffStatus
from procedures import services
from procedures.models import ProcedureOrder
from procedures.workflow import ProcedureStatus
from tests.procedures.helpers import documented, new_ma, ready_handoff, signed_off, start, version


# Committed rows, so each thread's own connection sees them; serialized rollback puts back the
# roles and catalogs that migrations seeded.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_last_of_two_simultaneous_finishes_completes_the_handoff() -> None:
    ma = signed_off(new_ma())
    handoff, orders = ready_handoff("69209", "36415", ma=ma)
    started = [documented(start(order, ma), ma) for order in orders.values()]
    barrier = threading.Barrier(len(started))
    errors: list[BaseException] = []

    def finish(order: ProcedureOrder) -> None:
        try:
            mine = ProcedureOrder.objects.get(pk=order.pk)
            current = version(mine)
            barrier.wait(timeout=30)
            services.procedure_finish(order=mine, by=ma, version=current)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=finish, args=(order,)) for order in started]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert set(ProcedureOrder.objects.filter(handoff=handoff).values_list("status", flat=True)) == {
        ProcedureStatus.COMPLETED
    }
    # Each transition locks the handoff first, so the second to commit sees the first as done.
    assert Handoff.objects.get(pk=handoff.pk).status == HandoffStatus.COMPLETED
