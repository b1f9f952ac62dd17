"""The ASGI entry point (``uvicorn vcisc.asgi:application``)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vcisc.settings")
application = get_asgi_application()
