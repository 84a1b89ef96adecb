from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from siyu.api import api

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("console/import/", include("siyu.integrations.urls")),
    path("console/segment-builder/", include("siyu.segments.urls")),
    path("console/loyalty/", include("siyu.loyalty.urls")),
    path("console/messaging/", include("siyu.messaging.urls")),
    path("console/journeys/", include("siyu.journeys.urls")),
    path("console/analytics/", include("siyu.analytics.urls")),
    path("console/", admin.site.urls),
    path("api/v1/", api.urls),
]
