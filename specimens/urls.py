"""Specimen pages, included under /specimens/ by backoffice.urls."""

from django.urls import path

from specimens import views

app_name = "specimens"

urlpatterns = [
    path("", views.tracking, name="tracking"),
    path("scan/", views.scan, name="scan"),
    path("handoffs/<uuid:uuid>/confirm/", views.confirm, name="confirm"),
    path("<uuid:uuid>/", views.detail, name="detail"),
    path("<uuid:uuid>/hand-over/", views.hand_over, name="hand_over"),
    path("<uuid:uuid>/receive/", views.receive, name="receive"),
    path("<uuid:uuid>/reject/", views.reject, name="reject"),
    path("<uuid:uuid>/label/", views.reprint, name="reprint"),
    path("<uuid:uuid>/not-collected/", views.not_collected, name="not_collected"),
    path("<uuid:uuid>/testing/", views.start_testing, name="start_testing"),
    path("<uuid:uuid>/testing-done/", views.testing_done, name="testing_done"),
    path("<uuid:uuid>/store/", views.store, name="store"),
    path("<uuid:uuid>/dispose/", views.dispose, name="dispose"),
]
