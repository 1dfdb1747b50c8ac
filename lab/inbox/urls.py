"""Pages of lab.inbox, included under /lab/inbox/ by lab.urls (names: lab:inbox:...)."""

from django.urls import path  # noqa: F401 - the patterns below use it

app_name = "inbox"

urlpatterns: list = []
