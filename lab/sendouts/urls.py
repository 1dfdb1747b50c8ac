"""The send-out desk, included under /lab/send-outs/ by lab.urls."""

from django.urls import path

from lab.sendouts import views

app_name = "sendouts"

urlpatterns = [
    path("", views.desk, name="desk"),
    path("shipments/new/", views.shipment_new, name="shipment_new"),
    path("shipments/<uuid:uuid>/", views.shipment, name="shipment"),
    path("shipments/<uuid:uuid>/pack/", views.pack, name="pack"),
    path("shipments/<uuid:uuid>/unpack/", views.unpack, name="unpack"),
    path("shipments/<uuid:uuid>/manifest/", views.manifest, name="manifest"),
    path("shipments/<uuid:uuid>/requisitions/", views.requisitions, name="requisitions"),
    path("shipments/<uuid:uuid>/dispatch/", views.dispatch, name="dispatch"),
    path("shipments/<uuid:uuid>/cancel/", views.shipment_cancel, name="shipment_cancel"),
    path("<uuid:uuid>/", views.send_out, name="send_out"),
    path("<uuid:uuid>/answers/", views.answers, name="answers"),
    path("<uuid:uuid>/requisition/", views.requisition, name="requisition"),
    path("<uuid:uuid>/cancel/", views.cancel, name="cancel"),
    path("<uuid:uuid>/retry/", views.retry, name="retry"),
]
