"""Pages of lab.criticals, included under /lab/criticals/ by lab.urls (names: lab:criticals:...)."""

from django.urls import path  # noqa: F401 - the patterns below use it

app_name = "criticals"

urlpatterns: list = []
