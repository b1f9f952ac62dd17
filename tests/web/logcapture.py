"""Capturing every log record at DEBUG, and looking for secrets in them (used by the tests of
what logs may hold: tests/web/test_log_secrets.py, tests/web/test_oidc.py and the served run
in tests/integration/test_log_secrets_served.py)."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Capture", "every_logger_at_debug", "leaks"]

#: Named so that they exist and are forced even before anything logs to them.
_NAMED = (
    "django",
    "django.request",
    "django.server",
    "django.security",
    "django.security.csrf",
    "django.db.backends",
    "django.template",
    "axes",
    "vcisc",
    "authlib",
    "urllib3",
    "uvicorn",
    "uvicorn.access",
    "uvicorn.error",
)


class Capture(logging.Handler):
    """Every record as text: logger, level, formatted message, the arguments themselves (a
    handler with another format could print them), traceback and stack."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is still worth checking
            message = repr(record.msg)
        parts = [f"{record.levelname} {record.name} {message}", repr(record.msg), repr(record.args)]
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        if record.stack_info:
            parts.append(record.stack_info)
        self.records.append(record)
        self.lines.append("\n".join(parts))


@contextmanager
def every_logger_at_debug() -> Iterator[Capture]:
    """Every logger at DEBUG, enabled, and recorded, also those that do not propagate; the
    filters of the configuration stay (they are part of what is tested)."""
    capture = Capture()
    root = logging.getLogger()
    saved: list[tuple[logging.Logger, int, bool]] = [(root, root.level, root.disabled)]
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    loggers = [logging.getLogger(n) for n in _NAMED]
    loggers += [
        logger
        for logger in logging.root.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in dict.fromkeys(loggers):
        saved.append((logger, logger.level, logger.disabled))
        logger.setLevel(logging.DEBUG)
        logger.disabled = False
        if not logger.propagate:
            logger.addHandler(capture)
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        for logger, level, disabled in saved:
            logger.setLevel(level)
            logger.disabled = disabled
            if capture in logger.handlers:
                logger.removeHandler(capture)


def leaks(lines: list[str], secrets: dict[str, set[str]]) -> list[str]:
    """``what: line`` for every captured line that holds one of the secrets."""
    found = []
    for what, values in secrets.items():
        for value in values:
            assert len(value) >= 8, f"{what} is too short to look for: {value!r}"
            found += [f"{what}: {line[:300]}" for line in lines if value in line]
    return found
