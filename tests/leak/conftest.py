"""Fixtures of the leak suite: every log record of every logger, at DEBUG, and a fast password
hasher (the suite signs users in on every scenario; Argon2 would dominate its running time).

One logger is left at its configured level: ``django.template``, whose DEBUG records dump the
whole template context of every failed variable lookup. Django's own logging configuration keeps
it at INFO whatever ``VCISC_LOG_LEVEL`` says (``test_logging.py`` holds that), so no deployment
writes them; forcing it to DEBUG would test a configuration that does not exist.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

#: Loggers left at their configured level (see the module docstring).
UNFORCED = ("django.template",)


class LogCapture(logging.Handler):
    """Keeps each record as a sink would write it: logger, level, message, traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is still worth checking
            message = f"{record.msg!r} {record.args!r}"
        text = f"{record.levelname} {record.name} {message}"
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info))
        if record.stack_info:
            text += "\n" + record.stack_info
        self.lines.append(text)

    def clear(self) -> None:
        self.lines.clear()


@pytest.fixture
def leak_logs(caplog: pytest.LogCaptureFixture) -> Iterator[LogCapture]:
    """Every logger at DEBUG, enabled, and recorded — also those that do not propagate."""
    caplog.set_level(logging.DEBUG)
    capture = LogCapture()
    root = logging.getLogger()
    root.addHandler(capture)
    saved: list[tuple[logging.Logger, int, bool]] = []
    for name in UNFORCED:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.disabled))
        logger.setLevel(logger.getEffectiveLevel())  # before its parents go to DEBUG
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger) or name.startswith(UNFORCED):
            continue
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


@pytest.fixture
def fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def no_template_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    """Django's test client copies every template context it renders (for ``response.context``),
    which the leak suite never reads and which costs a quarter of its time."""

    def ignore(
        store: dict[str, Any], signal: Any, sender: Any, template: Any, context: Any, **kwargs: Any
    ) -> None:
        return None

    monkeypatch.setattr("django.test.client.store_rendered_templates", ignore)
