"""The project package.

The Celery app is loaded lazily: Django processes load it when the app
registry is ready (``WorkbenchConfig.ready``), ``celery -A workbench`` finds
it as ``workbench.app``. Importing the package itself loads neither Django
nor Celery, so that ``python -m workbench.verify`` runs where only Python and
``cryptography`` are installed.
"""


def __getattr__(name: str):
    if name in ("app", "celery_app"):
        from .celery import app

        return app
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")
