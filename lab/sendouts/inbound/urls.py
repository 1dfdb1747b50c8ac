"""Results coming back from reference labs, at the send-out desk: included under /lab/send-outs/inbound/."""

from django.urls import path

from lab.sendouts.inbound import views

app_name = "inbound"

urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("unmatched/", views.unmatched, name="unmatched"),
    path("holds/", views.holds, name="holds"),
    path("<uuid:uuid>/", views.message, name="message"),
    path("<uuid:uuid>/attach/", views.attach, name="attach"),
    path("<uuid:uuid>/resolve/", views.resolve, name="resolve"),
]
