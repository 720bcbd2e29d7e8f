from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from reviews.api import router as cases_router
from workbench.api import api

api.add_router("/cases", cases_router)

urlpatterns = [
    # Until the reviewer screens land, the front page is the API's documentation.
    path("", RedirectView.as_view(url="/api/v1/docs", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
]
