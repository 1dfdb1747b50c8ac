"""Pages of lab.inbox, included under /lab/inbox/ by lab.urls (names: lab:inbox:...)."""

from django.urls import path

from lab.inbox import views

app_name = "inbox"

urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("acknowledge/", views.acknowledge, name="acknowledge"),
    path("patients/<uuid:uuid>/", views.patient, name="patient"),
]
