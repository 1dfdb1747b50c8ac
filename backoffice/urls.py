from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from backoffice.accounts import views as account_views
from backoffice.audit import views as audit_views
from backoffice.pages import allergies as allergy_views
from backoffice.pages import break_glass as break_glass_views
from backoffice.pages import clinic_now as clinic_now_views
from backoffice.pages import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "login/",
        auth_views.LoginView.as_view(template_name="backoffice/accounts/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", account_views.logout_view, name="logout"),
    path("login/otp/", account_views.otp_verify, name="otp_verify"),
    path("login/otp/setup/", account_views.otp_setup, name="otp_setup"),
    path("account/2fa/", account_views.account_security, name="account_security"),
    path("account/2fa/disable/", account_views.otp_disable, name="otp_disable"),
    path("account/sessions/<slug:ref>/end/", account_views.session_end, name="session_end"),
    path("account/sessions/end-others/", account_views.sessions_end_others, name="sessions_end_others"),
    path("session/keepalive/", account_views.session_keepalive, name="session_keepalive"),
    path("session/status/", account_views.session_status, name="session_status"),
    path("queue/", views.queue, name="queue"),
    path("board/", views.board, name="board"),
    path("clinic-now/", clinic_now_views.clinic_now, name="clinic_now"),
    path("handoffs/new/", views.handoff_new, name="handoff_new"),
    path("handoffs/new/needs/", views.handoff_needs, name="handoff_needs"),
    path("patients/search/", views.patient_search, name="patient_search"),
    path("handoffs/<uuid:uuid>/", views.handoff_detail, name="handoff_detail"),
    path("handoffs/<uuid:uuid>/claim/", views.handoff_claim, name="handoff_claim"),
    path("handoffs/<uuid:uuid>/release/", views.handoff_release, name="handoff_release"),
    path("handoffs/<uuid:uuid>/station/", views.handoff_station, name="handoff_station"),
    path("handoffs/<uuid:uuid>/verify/", views.handoff_verify, name="handoff_verify"),
    path("handoffs/<uuid:uuid>/start/", views.handoff_start, name="handoff_start"),
    path("handoffs/<uuid:uuid>/complete/", views.handoff_complete, name="handoff_complete"),
    path("handoffs/<uuid:uuid>/cancel/", views.handoff_cancel, name="handoff_cancel"),
    path("handoffs/<uuid:uuid>/hand-back/", views.handoff_hand_back, name="handoff_hand_back"),
    path("handoffs/<uuid:uuid>/resend/", views.handoff_resend, name="handoff_resend"),
    path("handoffs/<uuid:uuid>/patient-left/", clinic_now_views.handoff_patient_left, name="handoff_patient_left"),
    path("handoffs/<uuid:uuid>/allergies/", allergy_views.allergy_list, name="allergies"),
    path("handoffs/<uuid:uuid>/allergies/add/", allergy_views.allergy_add, name="allergy_add"),
    path("handoffs/<uuid:uuid>/allergies/<int:pk>/remove/", allergy_views.allergy_remove, name="allergy_remove"),
    path("handoffs/<uuid:uuid>/allergies/none-known/", allergy_views.allergy_none_known, name="allergy_none_known"),
    path("stations/", views.stations, name="stations"),
    path("stations/<slug:code>/turnover/", views.station_turnover, name="station_turnover"),
    path("procedures/", include("procedures.urls")),
    path("specimens/", include("specimens.urls")),
    path("lab/", include("lab.urls")),
    path("audit/", audit_views.audit_log, name="audit"),
    path("audit/export.csv", audit_views.audit_export, name="audit_export"),
    path("audit/accounts/", audit_views.account_changes, name="audit_account_changes"),
    path("audit/break-glass/", audit_views.break_glass_report, name="audit_break_glass"),
    path("break-glass/", break_glass_views.request_access, name="break_glass"),
    path("break-glass/<uuid:uuid>/", break_glass_views.record, name="break_glass_record"),
    path("fhir/", include("backoffice.fhir.urls")),
    path("admin/", admin.site.urls),
]

handler500 = "backoffice.pages.errors.server_error"
