"""Pages of lab.qc, included under /lab/qc/ by lab.urls (names: lab:qc:...)."""

from django.urls import path  # noqa: F401 - the patterns below use it

app_name = "qc"

urlpatterns: list = []
