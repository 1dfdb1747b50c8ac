"""The turnaround dashboard, included under /lab/turnaround/ by lab.urls (names: lab:turnaround:...)."""

from django.urls import path

from lab.turnaround import views

app_name = "turnaround"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("export.csv", views.export_csv, name="export_csv"),
]
