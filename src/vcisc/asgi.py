"""The ASGI entry point (``uvicorn vcisc.asgi:application``): Django behind
:class:`vcisc.sharing.taxii.fast.FastReads` (repeated TAXII object reads answered while the
database is unchanged) and :class:`vcisc.web.middleware.BodyLimit`, which keeps
``VCISC_MAX_BODY_BYTES`` whether or not a request declares its length, with credentials
redacted from the server's log records (:func:`vcisc.web.middleware.install_redaction`;
uvicorn has configured its loggers by the time it imports this module)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vcisc.settings")
django_application = get_asgi_application()

from vcisc.sharing.taxii.fast import FastReads  # noqa: E402 - needs Django set up
from vcisc.web.middleware import BodyLimit, install_redaction  # noqa: E402

install_redaction()
application = BodyLimit(FastReads(django_application))
