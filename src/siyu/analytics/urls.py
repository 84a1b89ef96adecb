from django.urls import path

from siyu.analytics import views

app_name = "analytics"

urlpatterns = [
    path("export/<slug:table>.<slug:fmt>", views.export_view, name="export"),
    path("rfm-segment/", views.rfm_segment_view, name="rfm_segment"),
    path("loyalty-section/", views.loyalty_section_view, name="loyalty_section"),
]
