from django.urls import path

from siyu.journeys import views

app_name = "journeys"

urlpatterns = [
    path("", views.journey_list, name="list"),
    path("new/", views.journey_new, name="new"),
    path("members/<int:member_id>/", views.member_journeys_view, name="member"),
    path("<slug:code>/", views.journey_detail, name="detail"),
    path("<slug:code>/edit/", views.journey_edit, name="edit"),
    path("<slug:code>/<str:action>/", views.journey_action, name="action"),
]
