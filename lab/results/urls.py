"""Pages of lab.results, included under /lab/results/ by lab.urls (names: lab:results:...)."""

from django.urls import path  # noqa: F401 - the patterns below use it

app_name = "results"

urlpatterns: list = []
