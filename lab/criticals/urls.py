"""Pages of lab.criticals, included under /lab/criticals/ by lab.urls (names: lab:criticals:...)."""

from django.urls import path

from lab.criticals import views

app_name = "criticals"

urlpatterns = [
    path("", views.open_calls, name="open"),
    path("panel/", views.panel, name="panel"),
    path("report/", views.report, name="report"),
    path("<uuid:uuid>/", views.detail, name="detail"),
    path("<uuid:uuid>/attempt/", views.attempt, name="attempt"),
    path("<uuid:uuid>/acknowledge/", views.acknowledge, name="acknowledge"),
]
