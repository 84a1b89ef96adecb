from django.urls import path

from siyu.loyalty import views

app_name = "loyalty"

urlpatterns = [
    path("members/<int:member_id>/", views.member_loyalty_view, name="member"),
]
