from django.urls import path

from siyu.integrations import views

app_name = "integrations"

urlpatterns = [
    path("", views.import_view, name="import"),
]
