"""Lab pages, included under /lab/ by backoffice.urls."""

from django.urls import include, path

from lab import views

app_name = "lab"

urlpatterns = [
    path("handoffs/<uuid:uuid>/collect/", views.collect, name="collect"),
    path("handoffs/<uuid:uuid>/labels/", views.labels, name="labels"),
    path("call-backs/", views.calls, name="calls"),
    path("call-backs/<uuid:uuid>/done/", views.call_done, name="call_done"),
    path("tests/<uuid:uuid>/cancel/", views.cancel, name="cancel"),
    path("tests/<uuid:uuid>/acknowledge/", views.acknowledge, name="acknowledge"),
    # The in-house bench: QC, results, critical calls; and results in front of the clinician.
    path("qc/", include("lab.qc.urls")),
    path("results/", include("lab.results.urls")),
    path("criticals/", include("lab.criticals.urls")),
    path("inbox/", include("lab.inbox.urls")),
    # How long each step takes, for supervisors.
    path("turnaround/", include("lab.turnaround.urls")),
    # Tests sent to reference labs: packing, shipping, ordering over HL7, tracking.
    path("send-outs/", include("lab.sendouts.urls")),
    path("send-outs/inbound/", include("lab.sendouts.inbound.urls")),
]
