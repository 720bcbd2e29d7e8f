from django.apps import AppConfig


class WorkbenchConfig(AppConfig):
    name = "workbench"
    verbose_name = "Workbench"

    def ready(self):
        # The Celery app, so that shared tasks bind to it (see workbench/__init__.py).
        from . import celery  # noqa: F401
