"""Pages of lab.results, included under /lab/results/ by lab.urls (names: lab:results:...).

``specimens/<uuid>/`` carries a specimen's opaque id, every other ``<uuid>`` a result's.
"""

from django.urls import path

from lab.results import views

app_name = "results"

urlpatterns = [
    path("", views.bench, name="bench"),
    path("scan/", views.scan, name="scan"),
    path("to-verify/", views.verification, name="verification"),
    path("specimens/<uuid:uuid>/", views.specimen, name="specimen"),
    path("specimens/<uuid:uuid>/enter/", views.enter, name="enter"),
    path("<uuid:uuid>/", views.result, name="result"),
    path("<uuid:uuid>/correct/", views.correct, name="correct"),
    path("<uuid:uuid>/verify/", views.verify, name="verify"),
    path("<uuid:uuid>/release/", views.release, name="release"),
    path("<uuid:uuid>/send-back/", views.send_back, name="send_back"),
    path("<uuid:uuid>/amend/", views.amend, name="amend"),
    path("<uuid:uuid>/close-review/", views.close_review, name="close_review"),
]
