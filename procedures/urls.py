"""Procedure pages, included under /procedures/ by backoffice.urls."""

from django.urls import path

from procedures import views

app_name = "procedures"

urlpatterns = [
    path("", views.home, name="home"),
    path("queue/", views.queue, name="queue"),
    path("competency/", views.competency, name="competency"),
    path("competency/sign-off/", views.competency_sign_off, name="competency_sign_off"),
    path("charges/", views.charges, name="charges"),
    path("charges/export.csv", views.charges_csv, name="charges_csv"),
    path("<uuid:uuid>/", views.procedure_detail, name="detail"),
    path("<uuid:uuid>/start/", views.procedure_start, name="start"),
    path("<uuid:uuid>/document/", views.procedure_document, name="document"),
    path("<uuid:uuid>/draft/", views.procedure_draft, name="draft"),
    path("<uuid:uuid>/medications/", views.procedure_medication, name="medication"),
    path("<uuid:uuid>/medications/<int:pk>/error/", views.procedure_medication_error, name="medication_error"),
    path("<uuid:uuid>/allergy-override/", views.procedure_allergy_override, name="allergy_override"),
    path("<uuid:uuid>/not-done/", views.procedure_not_done, name="not_done"),
    path("<uuid:uuid>/cosign/", views.procedure_cosign, name="cosign"),
    path("<uuid:uuid>/return/", views.procedure_return, name="return"),
    path("<uuid:uuid>/resubmit/", views.procedure_resubmit, name="resubmit"),
    path("<uuid:uuid>/addenda/", views.procedure_addendum, name="addendum"),
]
