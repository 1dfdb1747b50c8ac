"""Pages of lab.qc, included under /lab/qc/ by lab.urls (names: lab:qc:...).

QC rows carry no patient data, so their URLs name them by primary key.
"""

from django.urls import path

from lab.qc import views

app_name = "qc"

urlpatterns = [
    path("", views.board, name="board"),
    path("lots/<int:pk>/run/", views.run, name="run"),
    path("controls/<int:pk>/", views.chart, name="chart"),
]
