"""Fixtures for delivery tests: real receivers on 127.0.0.1, contacts that use them, a worker
configured for them (short timeouts and back-off, 127.0.0.1 on the webhook allow-list)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.conf import LazySettings

from tests.conftest import Federation
from tests.notify.receivers import HttpReceiver, SmtpHandler, start_smtp
from vcisc.federation import services as fs
from vcisc.federation.models import PointOfContact
from vcisc.notify.channels import SmtpSettings
from vcisc.notify.models import Delivery, DeliveryStatus
from vcisc.notify.policy import parse_networks
from vcisc.notify.worker import RunStats, Worker, WorkerSettings

LOCAL = ["127.0.0.1/32"]


@pytest.fixture
def allow_local(settings: LazySettings) -> None:
    """127.0.0.1 on the webhook allow-list, as a deployment with a local receiver would set."""
    settings.CONFIG = settings.CONFIG.model_copy(update={"webhook_allowed_networks": LOCAL})


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpHandler, Controller]]:
    handler = SmtpHandler(refuse=("refused@cert-bund.example",))
    controller = start_smtp(handler)
    yield handler, controller
    controller.stop()


def smtp_settings(port: int, **overrides: Any) -> SmtpSettings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": None,
        "password": None,
        "ca_file": None,
        "timeout": 2.0,
        "local_hostname": "vcisc.test",
    }
    values.update(overrides)
    return SmtpSettings(**values)


def worker_settings(smtp_port: int | None, **overrides: Any) -> WorkerSettings:
    from django.conf import settings

    values: dict[str, Any] = {
        "smtp": smtp_settings(smtp_port) if smtp_port else None,
        "allowed_networks": parse_networks(LOCAL),
        "webhook_timeout": 0.5,
        "backoff_seconds": 0.01,
        "backoff_max_seconds": 0.02,
        "lease": timedelta(seconds=5),
        "poll_seconds": 0.02,
        "max_attempts": 5,
        "public_url": "https://vcisc.test",
        "policy": (),
        "reminders": (),
    }
    values.update(overrides)
    return WorkerSettings.from_config(settings.CONFIG, **values)


def drain(
    ws: WorkerSettings, until: Callable[[], bool] | None = None, timeout: float = 15.0
) -> RunStats:
    """Run the worker (``once``) until nothing is left to do — or ``until()`` holds."""
    total = RunStats()
    deadline = time.monotonic() + timeout
    done = until or (
        lambda: (
            not Delivery.objects.filter(
                status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING], channel__in=ws.channels
            ).exists()
        )
    )
    while time.monotonic() < deadline:
        stats = Worker(ws).run(once=True)
        total.sent += stats.sent
        total.retried += stats.retried
        total.dead += stats.dead
        total.escalations += stats.escalations
        if done():
            return total
        time.sleep(0.03)
    raise AssertionError(f"the worker did not finish in {timeout} s")


def hook(fed: Federation, key: str, url: str, email: str | None = None) -> PointOfContact:
    """Give organisation ``key``'s desk a webhook (and optionally another e-mail address)."""
    contact = PointOfContact.objects.get(organisation=fed.orgs[key])
    changes: dict[str, Any] = {"webhook_url": url}
    if email:
        changes["email"] = email
    return fs.update(None, contact, changes)
