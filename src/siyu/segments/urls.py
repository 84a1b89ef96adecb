from django.urls import path

from siyu.segments import views

app_name = "segments"

urlpatterns = [
    path("", views.builder_view, name="builder"),
    path("preview/", views.preview_view, name="preview"),
    path("edit/<slug:code>/", views.builder_view, name="builder_edit"),
]
