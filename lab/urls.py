"""Lab pages, included under /lab/ by backoffice.urls."""

from django.urls import path

from lab import views

app_name = "lab"

urlpatterns = [
    path("handoffs/<uuid:uuid>/collect/", views.collect, name="collect"),
    path("handoffs/<uuid:uuid>/labels/", views.labels, name="labels"),
    path("call-backs/", views.calls, name="calls"),
    path("call-backs/<uuid:uuid>/done/", views.call_done, name="call_done"),
    path("tests/<uuid:uuid>/cancel/", views.cancel, name="cancel"),
    path("tests/<uuid:uuid>/acknowledge/", views.acknowledge, name="acknowledge"),
]
