from django.urls import path

from reviews import views

app_name = "reviews"

urlpatterns = [
    # "My queues" is the home page.
    path("", views.queue_list, name="queues"),
    path("queues/claim/", views.claim_next, name="claim"),
    path("search/", views.search, name="search"),
    path("cases/<str:reference>/", views.case_detail, name="case"),
    # A compliance officer's read-only view, after they give its purpose.
    path("cases/<str:reference>/view/", views.case_view, name="case-view"),
]
