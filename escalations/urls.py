from django.urls import path

from escalations import views

app_name = "escalations"

urlpatterns = [
    path("supervisor/", views.supervisor, name="supervisor"),
    path(
        "supervisor/tasks/<int:task_id>/reassign/", views.task_reassign_view, name="task-reassign"
    ),
    path("supervisor/tasks/<int:task_id>/release/", views.task_release_view, name="task-release"),
    path("supervisor/queues/<int:queue_id>/members/", views.queue_members, name="queue-members"),
    path("supervisor/systems/<slug:slug>/switch/", views.system_switch, name="system-switch"),
    # The customer's link (reviews.services.notices.notice_url): no login.
    path("notice/<str:token>/", views.notice, name="notice"),
    path("appeals/<str:reference>/", views.appeal_detail, name="appeal"),
    path("subjects/access/", views.subject_access, name="subject-access"),
    path(
        "appeals/<str:reference>/evidence/<uuid:evidence_id>/",
        views.evidence_download,
        name="evidence",
    ),
]
