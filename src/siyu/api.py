"""The REST API: mounts each app's router under ``/api/v1`` (docs at ``/api/v1/docs``)."""

from ninja import NinjaAPI

api = NinjaAPI(
    title="Siyu API",
    version="1",
    description="Siyu (私域) private-domain operations platform: batch ingestion and member reads.",
    urls_namespace="api-v1",
)
