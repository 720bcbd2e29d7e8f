from django.urls import path

from escalations.views import appeals, notice, subject_access, supervisor

app_name = "escalations"

urlpatterns = [
    path("supervisor/", supervisor.supervisor, name="supervisor"),
    path(
        "supervisor/tasks/<int:task_id>/reassign/",
        supervisor.task_reassign_view,
        name="task-reassign",
    ),
    path(
        "supervisor/tasks/<int:task_id>/release/",
        supervisor.task_release_view,
        name="task-release",
    ),
    path(
        "supervisor/queues/<int:queue_id>/members/",
        supervisor.queue_members,
        name="queue-members",
    ),
    path("supervisor/systems/<slug:slug>/switch/", supervisor.system_switch, name="system-switch"),
    # The customer's link (reviews.services.notices.notice_url): no login.
    path("notice/<str:token>/", notice.notice, name="notice"),
    path("appeals/<str:reference>/", appeals.appeal_detail, name="appeal"),
    path("subjects/access/", subject_access.subject_access, name="subject-access"),
    path(
        "appeals/<str:reference>/evidence/<uuid:evidence_id>/",
        appeals.evidence_download,
        name="evidence",
    ),
]
