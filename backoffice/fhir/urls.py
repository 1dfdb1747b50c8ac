from django.urls import path

from backoffice.fhir import views

app_name = "fhir"

# No trailing slashes: FHIR's own URL forms ([base]/[type]/[id]).
urlpatterns = [
    path("metadata", views.metadata, name="metadata"),
    path("<str:resource_type>", views.search_get, name="search"),
    path("<str:resource_type>/_search", views.search_post, name="search_post"),
    path("<str:resource_type>/<str:resource_id>", views.read, name="read"),
]
