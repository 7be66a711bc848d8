"""The web face of mastertrail: a read-only page, a JSON API, the timeline and
``/metrics``, as one Flask application (``pip install 'mastertrail[web]'``)."""

from mastertrail.web.app import create_app

__all__ = ["create_app"]
