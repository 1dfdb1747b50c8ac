from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from backoffice import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("queue/", views.queue, name="queue"),
    path("board/", views.board, name="board"),
    path("handoffs/new/", views.handoff_new, name="handoff_new"),
    path("patients/search/", views.patient_search, name="patient_search"),
    path("handoffs/<uuid:uuid>/", views.handoff_detail, name="handoff_detail"),
    path("handoffs/<uuid:uuid>/claim/", views.handoff_claim, name="handoff_claim"),
    path("handoffs/<uuid:uuid>/release/", views.handoff_release, name="handoff_release"),
    path("handoffs/<uuid:uuid>/station/", views.handoff_station, name="handoff_station"),
    path("handoffs/<uuid:uuid>/verify/", views.handoff_verify, name="handoff_verify"),
    path("handoffs/<uuid:uuid>/start/", views.handoff_start, name="handoff_start"),
    path("handoffs/<uuid:uuid>/complete/", views.handoff_complete, name="handoff_complete"),
    path("handoffs/<uuid:uuid>/cancel/", views.handoff_cancel, name="handoff_cancel"),
    path("stations/<slug:code>/turnover/", views.station_turnover, name="station_turnover"),
    path("admin/", admin.site.urls),
]
