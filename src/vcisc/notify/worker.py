"""The delivery worker: `vcisc worker`.

One process, two threads:

* the **main thread** does every database step with Django's connection: claim due deliveries,
  prepare each message for its channel (TLP ceiling, PGP, signature secrets), record outcomes,
  scan deadlines (:mod:`vcisc.notify.escalation`);
* an **asyncio loop** in a second thread does the network side (:mod:`vcisc.notify.channels`):
  many e-mails and webhooks in flight at once, each with one overall deadline, plus — on
  PostgreSQL — a ``LISTEN`` connection that wakes the main thread the moment a transaction that
  queued notifications commits. SQLite workers poll every ``VCISC_WORKER_POLL_SECONDS``.

Claiming (one short transaction) marks rows ``sending`` with a lease (``lease_until``) and counts
the attempt. On PostgreSQL the claim selects ``FOR UPDATE SKIP LOCKED``, so any number of workers
take disjoint rows; SQLite's single write lock does the same for its one worker. A worker that
dies leaves its rows ``sending``; when their lease runs out any worker takes them over. That is
the one way a notification can arrive twice, and so the bound on duplicates: a delivery is
*attempted* at most ``VCISC_DELIVERY_MAX_ATTEMPTS`` times in all, and an attempt is repeated after
a success only when the worker that made it died (or lost its database) before recording it. A
takeover whose attempt was the last allowed one is not sent again but dead-lettered ("outcome
unknown"), so the bound holds even then.

The main thread claims when something may be due — woken, the poll interval passed, the last
claim was full — not each time a send finishes, and it waits on one signal that every finished
send and every wake-up sets. Outcomes are recorded in batches: sent; failed, retry after
exponential back-off with jitter; or dead (attempts exhausted, or a permanent failure) — each
audited, with one UPDATE per kind of outcome rather than one per row.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email.policy
import logging
import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.headerregistry import Address
from typing import Any, TypeVar
from urllib.parse import urlsplit

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from vcisc.assistance.models import RequestForAssistance
from vcisc.audit.chain import record
from vcisc.config import VciscConfig
from vcisc.notify import services
from vcisc.notify.channels import (
    EmailJob,
    Outcome,
    SmtpSender,
    SmtpSettings,
    WebhookJob,
    WebhookSender,
)
from vcisc.notify.models import (
    Channel,
    ContactKey,
    Delivery,
    DeliverySettings,
    DeliveryStatus,
    OutboxMessage,
    OutboxStatus,
)
from vcisc.notify.outbox import WAKE_CHANNEL
from vcisc.notify.policy import (
    EscalationRule,
    Network,
    backoff,
    parse_ceiling,
    parse_networks,
    parse_policy,
    parse_reminders,
    parse_sender,
)
from vcisc.notify.render import Notification, email_message, webhook_body
from vcisc.tlp import Tlp

__all__ = ["RunStats", "Worker", "WorkerSettings"]

#: Outcomes written per transaction while other sends are still in flight …
RECORD_BATCH = 100
#: … or after this many seconds, whichever comes first.
RECORD_SECONDS = 1.0

log = logging.getLogger("vcisc.notify.worker")
#: The classic MIME generator with SMTP's CRLF line ends.
_WIRE = email.policy.compat32.clone(linesep="\r\n")
T = TypeVar("T")
Job = EmailJob | WebhookJob


@dataclass(frozen=True)
class WorkerSettings:
    """Everything a worker needs, read once from the configuration (no hidden globals)."""

    worker_id: str
    #: Deliveries in flight at once.
    concurrency: int
    #: Deliveries claimed per claim transaction (several workers share a burst this way).
    batch: int
    poll_seconds: float
    lease: timedelta
    max_attempts: int
    backoff_seconds: float
    backoff_max_seconds: float
    escalation_scan_seconds: float
    smtp: SmtpSettings | None
    webhook_timeout: float
    allowed_networks: tuple[Network, ...]
    email_ceiling: Tlp
    pgp_email_ceiling: Tlp
    webhook_ceiling: Tlp
    mail_from: Address
    public_url: str
    policy: tuple[EscalationRule, ...]
    reminders: tuple[timedelta, ...]

    @classmethod
    def from_config(cls, config: VciscConfig, **overrides: Any) -> WorkerSettings:
        host = urlsplit(config.public_url).hostname or "localhost"
        smtp = None
        if config.smtp_host:
            smtp = SmtpSettings(
                host=config.smtp_host,
                port=config.smtp_port,
                security=config.smtp_security,
                username=config.smtp_username,
                password=config.smtp_password,
                ca_file=str(config.smtp_ca_file) if config.smtp_ca_file else None,
                timeout=config.smtp_timeout_seconds,
                local_hostname=host,
                connections=config.smtp_connections,
            )
        values: dict[str, Any] = {
            "worker_id": f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}",
            "concurrency": config.worker_concurrency,
            "batch": config.worker_batch,
            "poll_seconds": config.worker_poll_seconds,
            "lease": timedelta(seconds=config.delivery_lease_seconds),
            "max_attempts": config.delivery_max_attempts,
            "backoff_seconds": config.delivery_backoff_seconds,
            "backoff_max_seconds": config.delivery_backoff_max_seconds,
            "escalation_scan_seconds": config.escalation_scan_seconds,
            "smtp": smtp,
            "webhook_timeout": config.webhook_timeout_seconds,
            "allowed_networks": parse_networks(config.webhook_allowed_networks),
            "email_ceiling": parse_ceiling(config.email_tlp_ceiling),
            "pgp_email_ceiling": parse_ceiling(config.pgp_email_tlp_ceiling),
            "webhook_ceiling": parse_ceiling(config.webhook_tlp_ceiling),
            "mail_from": parse_sender(config.mail_from),
            "public_url": config.public_url.rstrip("/"),
            "policy": parse_policy(config.escalation_policy),
            "reminders": parse_reminders(config.deadline_reminders),
        }
        values.update(overrides)
        return cls(**values)

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels this worker serves: e-mail only when a relay is configured (otherwise
        e-mail waits in the outbox, nothing is lost)."""
        return (
            (Channel.EMAIL.value, Channel.WEBHOOK.value) if self.smtp else (Channel.WEBHOOK.value,)
        )


@dataclass
class RunStats:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    escalations: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (it comes with uvicorn[standard]): cheaper sockets per send."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class _Loop:
    """The asyncio loop in its own thread, and the senders that live in it."""

    def __init__(self, settings: WorkerSettings, on_wake: Callable[[], None]) -> None:
        self.settings = settings
        self.loop = _new_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="notify-io", daemon=True)
        self.thread.start()
        self.on_wake = on_wake
        self.smtp: SmtpSender | None = None
        self.webhooks: WebhookSender | None = None
        self._listener: concurrent.futures.Future[None] | None = None
        self.call(self._open())

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def _open(self) -> None:
        s = self.settings
        # Waiting for a relay connection counts against half the lease, like the send itself.
        budget = s.lease.total_seconds() / 2
        self.smtp = SmtpSender(s.smtp, budget=budget) if s.smtp else None
        self.webhooks = WebhookSender(timeout=s.webhook_timeout, allowed=s.allowed_networks)

    def listen(self, params: dict[str, Any]) -> None:
        """Wake on PostgreSQL NOTIFY (a dedicated autocommit connection, reconnecting)."""
        self._listener = self.submit(self._listen(params))

    async def _listen(self, params: dict[str, Any]) -> None:
        import psycopg

        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(**params, autocommit=True)
                async with conn:
                    await conn.execute(f"LISTEN {WAKE_CHANNEL}")
                    delay = 0.5
                    self.on_wake()  # anything committed while we were not listening
                    async for _ in conn.notifies():
                        self.on_wake()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a database restart: keep polling, listen again later
                log.warning("LISTEN connection lost (%s); reconnecting in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _close(self) -> None:
        if self.smtp:
            await self.smtp.close()
        if self.webhooks:
            await self.webhooks.close()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
        try:
            self.call(self._close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
            self.loop.close()


class Worker:
    """Delivers the outbox and watches deadlines. ``run()`` until stopped, or ``once``."""

    def __init__(
        self,
        settings: WorkerSettings,
        *,
        rand: Callable[[], float] = random.random,
        clock: Callable[[], datetime] = timezone.now,
    ) -> None:
        self.settings = settings
        self.rand = rand
        self.clock = clock
        self.stats = RunStats()
        self._stop = threading.Event()
        # Re-entrant: stop() may run in a signal handler while the main thread holds the lock.
        self._wake_lock = threading.RLock()
        #: Done when a send finishes or the worker is woken: the one thing the main thread waits
        #: on (waiting on every send in flight would cost a lock per send at every wake-up).
        self._signal: concurrent.futures.Future[None] = concurrent.futures.Future()
        #: Woken (a NOTIFY, a reconnect, stop) since the last look: something may be due.
        self._woken = True
        #: The last claim filled what it asked for: more may be due at once.
        self._backlog = False
        self._claimed_at = 0.0
        #: With ``once``: the time of the first claim; what falls due later (a retry after a
        #: failure in this run, a lease running out) waits for the next run.
        self._once: bool = False
        self._due_by: datetime | None = None
        self._inflight: dict[concurrent.futures.Future[Outcome], Job] = {}
        self._done: list[Outcome] = []
        self._next_scan = 0.0
        self._recorded_at = time.monotonic()

    # --- control --------------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish what is in flight, record it, and return from :meth:`run` (signal-safe)."""
        self._stop.set()
        self.wake()

    def wake(self) -> None:
        log.debug("woken")
        with self._wake_lock:
            self._woken = True
            if not self._signal.done():
                self._signal.set_result(None)

    def _sent(self, _: object = None) -> None:
        """A send finished (called in the I/O thread): the main thread collects it."""
        with self._wake_lock:
            if not self._signal.done():
                self._signal.set_result(None)

    def _rearm(self) -> bool:
        """Start a new wait; return whether the worker was woken since the last one."""
        with self._wake_lock:
            if self._signal.done():
                self._signal = concurrent.futures.Future()
            woken, self._woken = self._woken, False
        return woken

    def _should_claim(self, woken: bool) -> bool:
        """Claim only when something may be due — woken, the poll interval passed, a backlog,
        or nothing in flight — not each time a send finishes: a claim is a transaction on the
        main thread, and a hundred empty ones would hold up recording and the sends' thread."""
        if woken or not self._inflight:
            return True
        free = self.settings.concurrency - len(self._inflight)
        if self._backlog:
            # Refill the slots in batches, not one claim per finished send.
            return free >= max(1, min(self.settings.batch, self.settings.concurrency) // 4)
        return free > 0 and time.monotonic() - self._claimed_at >= self.settings.poll_seconds

    # --- the loop -------------------------------------------------------------------------------

    def run(self, *, once: bool = False) -> RunStats:
        """Deliver until :meth:`stop` — or, with ``once``, what is due now (at the first claim),
        until none of it is left or in flight."""
        self._once, self._due_by = once, None
        io = _Loop(self.settings, self.wake)
        if connection.vendor == "postgresql" and not once:
            io.listen(_listen_params())
        failures = 0
        try:
            while True:
                woken = self._rearm()
                try:
                    claimed: int | None = None  # None: no claim was tried this time round
                    full = False
                    if not self._stop.is_set():
                        self._maybe_scan()
                        if self._should_claim(woken):
                            claimed, full = self._claim_and_dispatch(io)
                    if not full:
                        # While a burst is still being claimed, sending comes first; outcomes
                        # are recorded once it is all out (or the slots are taken).
                        self._record()
                    failures = 0
                except (OperationalError, InterfaceError) as exc:
                    failures += 1
                    self._database_lost(exc, failures)
                    self.wake()  # claim again as soon as the database is back
                    continue
                if not self._inflight and (self._stop.is_set() or (once and claimed == 0)):
                    break
                # The last sends just finished: look for more at once rather than after a wait.
                if not full and (self._inflight or claimed is not None):
                    self._wait()
            self._record_until_done()
        finally:
            io.close()
        return self.stats

    def _wait(self) -> None:
        """Until a send finishes, a worker is woken, or the poll interval passes."""
        concurrent.futures.wait([self._signal], timeout=self.settings.poll_seconds)

    def _database_lost(self, exc: Exception, failures: int) -> None:
        delay = min(0.25 * 2**failures, 10.0)
        log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
        with contextlib.suppress(DatabaseError):
            connection.close()
        time.sleep(delay)

    def _record_until_done(self) -> None:
        failures = 0
        while True:
            try:
                self._record(wait=True)
                return
            except (OperationalError, InterfaceError) as exc:
                failures += 1
                if failures > 20:
                    log.error("could not record %d outcome(s): leases will expire", len(self._done))
                    return
                self._database_lost(exc, failures)

    def _maybe_scan(self) -> None:
        now_mono = time.monotonic()
        if now_mono < self._next_scan:
            return
        self._next_scan = now_mono + self.settings.escalation_scan_seconds
        from vcisc.notify.escalation import scan

        try:
            self.stats.escalations += scan(
                now=self.clock(), policy=self.settings.policy, reminders=self.settings.reminders
            )
        except (OperationalError, InterfaceError):
            raise
        except Exception:  # a bug in one scan must not stop deliveries; the next scan retries
            log.exception("the deadline scan failed")

    # --- claim and prepare ----------------------------------------------------------------------

    def _claim_and_dispatch(self, io: _Loop) -> tuple[int, bool]:
        """Claim a batch (at most the free slots); return how many, and whether the batch was full
        (then more may be due at once)."""
        free = min(self.settings.batch, self.settings.concurrency - len(self._inflight))
        if free <= 0:
            return 0, False
        started = time.perf_counter()
        self._claimed_at = time.monotonic()
        rows = self._claim(free)
        self._backlog = len(rows) == free
        claimed = time.perf_counter()
        # Each delivery goes out as soon as it is built, not after the whole batch.
        for item in self._prepare(rows):
            if isinstance(item, Outcome):
                self._done.append(item)
                continue
            coro: Coroutine[Any, Any, Outcome]
            if isinstance(item, EmailJob):
                assert io.smtp is not None
                coro = io.smtp.send(item)
            else:
                assert io.webhooks is not None
                coro = io.webhooks.send(item)
            future = io.submit(coro)
            self._inflight[future] = item
            future.add_done_callback(self._sent)
        if rows:
            log.debug(
                "claimed %d in %.1f ms, prepared and dispatched in %.1f ms",
                len(rows),
                (claimed - started) * 1000,
                (time.perf_counter() - claimed) * 1000,
            )
        return len(rows), len(rows) == free

    def _claim(self, limit: int) -> list[Delivery]:
        s = self.settings
        now = self.clock()
        if self._once and self._due_by is None:
            self._due_by = now
        due_by = now if self._due_by is None else min(now, self._due_by)
        with transaction.atomic():
            due = (
                Delivery.objects.filter(channel__in=s.channels)
                .filter(
                    Q(status=DeliveryStatus.PENDING, next_attempt_at__lte=due_by)
                    | Q(status=DeliveryStatus.SENDING, lease_until__lt=due_by)
                )
                .order_by("next_attempt_at", "id")
                .select_for_update(skip_locked=True)
            )
            found = list(due.values_list("id", "status", "attempts")[:limit])
            if not found:
                return []
            ids = [pk for pk, _, _ in found]
            # A lease ran out on the last allowed attempt: its worker died, and whether that
            # attempt arrived is unknown. Sending again would break the bound on duplicates.
            lost_ids = [
                pk
                for pk, status, attempts in found
                if status == DeliveryStatus.SENDING and attempts >= s.max_attempts
            ]
            lost = list(Delivery.objects.filter(id__in=lost_ids)) if lost_ids else []
            dead: dict[str, Any] = {}
            for row in lost:
                row.status = DeliveryStatus.DEAD
                row.dead_at = now
                row.lease_until = None
                row.last_error = (
                    f"outcome unknown: the worker {row.worker} stopped during attempt "
                    f"{row.attempts} of {s.max_attempts}; replay to send again"
                )[:1000]
                row.save()
                dead[str(row.pk)] = {"attempt": row.attempts, "error": row.last_error}
                self.stats.dead += 1
            if lost:
                _audit_outcomes(now, s.worker_id, {"dead": dead})
                _sum_up_messages({r.message_id for r in lost}, now)
            live = [pk for pk in ids if pk not in {r.pk for r in lost}]
            Delivery.objects.filter(id__in=live).update(
                status=DeliveryStatus.SENDING,
                attempts=F("attempts") + 1,
                lease_until=now + s.lease,
                worker=s.worker_id,
            )
            rows = list(Delivery.objects.filter(id__in=live).select_related("message__contact"))
        return rows

    def _prepare(self, rows: Sequence[Delivery]) -> Iterator[Job | Outcome]:
        """Build each claimed delivery's request; a delivery that cannot be built is a permanent
        failure (its outcome), not an exception that would stall the batch."""
        if not rows:
            return
        s = self.settings
        now = self.clock()
        messages = [r.message for r in rows]
        org_ids = {m.organisation_id for m in messages}
        contacts = {m.contact_id: m.contact for m in messages}
        org_settings = {
            d.organisation_id: d
            for d in DeliverySettings.objects.filter(organisation_id__in=org_ids)
        }
        keys = {
            k.contact_id: k.armored
            for k in ContactKey.objects.filter(contact_id__in=list(contacts))
        }
        hooks = [c for c in contacts.values() if c.webhook_url and c.active]
        signing = services.webhook_secrets(hooks, now=now) if hooks else {}
        refs = dict(
            RequestForAssistance.objects.filter(
                pk__in={m.rfa_id for m in messages if m.rfa_id}
            ).values_list("pk", "reference")
        )
        for row in rows:
            msg = row.message
            contact = msg.contact
            note = Notification(
                key=str(msg.key),
                kind=msg.kind,
                created_at=msg.created_at,
                tlp=Tlp(msg.tlp),
                subject=msg.subject,
                body=msg.body,
                payload=msg.payload,
                rfa_id=msg.rfa_id,
                reference=refs.get(msg.rfa_id or 0, "VCISC"),
                link=f"{s.public_url}/requests/{msg.rfa_id}/" if msg.rfa_id else f"{s.public_url}/",
            )
            settings = org_settings.get(msg.organisation_id)

            def fail(reason: str, row: Delivery = row) -> Outcome:
                return Outcome(row.id, row.attempts, False, True, reason)

            if not contact.active:
                yield fail("the point of contact was deactivated after queueing")
            elif row.channel == Channel.EMAIL:
                if not contact.email:
                    yield fail("the point of contact has no e-mail address any more")
                    continue
                try:
                    job: Job = self._email(
                        row, note, contact.name, contact.email, settings, keys.get(contact.pk), now
                    )
                except Exception as exc:  # a key that stopped working, an unencodable address
                    yield fail(f"could not build the e-mail: {exc}"[:900])
                    continue
                yield job
            elif not contact.webhook_url:
                yield fail("the point of contact has no webhook any more")
            else:
                ceiling = _ceiling(
                    settings.webhook_tlp_ceiling if settings else "", s.webhook_ceiling
                )
                yield WebhookJob(
                    delivery_id=row.id,
                    attempt=row.attempts,
                    url=contact.webhook_url,
                    body=webhook_body(note, ceiling),
                    headers={
                        "Idempotency-Key": note.key,
                        "VCISC-Event": note.kind,
                        "VCISC-Delivery": f"{row.id}.{row.attempts}",
                    },
                    secrets=signing[contact.pk],
                )

    def _email(
        self,
        row: Delivery,
        note: Notification,
        name: str,
        address: str,
        settings: DeliverySettings | None,
        pgp_key: str | None,
        now: datetime,
    ) -> EmailJob:
        s = self.settings
        sender = s.mail_from
        if settings and (settings.sender_address or settings.sender_name):
            local, _, domain = (settings.sender_address or sender.addr_spec).rpartition("@")
            sender = Address(settings.sender_name or sender.display_name, local, domain)
        local, _, domain = address.rpartition("@")
        recipient = Address(name, local, domain)
        if pgp_key:
            ceiling = s.pgp_email_ceiling
        else:
            ceiling = _ceiling(settings.email_tlp_ceiling if settings else "", s.email_ceiling)
        message = email_message(
            note,
            sender=sender,
            recipient=recipient,
            reply_to=settings.reply_to if settings else "",
            ceiling=ceiling,
            pgp_key=pgp_key,
            now=now,
        )
        return EmailJob(
            row.id, row.attempts, sender.addr_spec, address, message.as_bytes(policy=_WIRE)
        )

    # --- outcomes -------------------------------------------------------------------------------

    def _record(self, *, wait: bool = False) -> None:
        """Collect finished sends (freeing their slots) and write their outcomes in one
        transaction — at once when nothing else is in flight or ``wait``, otherwise in batches
        of :data:`RECORD_BATCH` or every :data:`RECORD_SECONDS`, so that a burst is sent before
        it is book-kept."""
        if wait and self._inflight:
            concurrent.futures.wait(list(self._inflight))
        for future in [f for f in self._inflight if f.done()]:
            job = self._inflight.pop(future)
            try:
                self._done.append(future.result())
            except Exception as exc:  # a bug in a sender must not lose the delivery
                log.exception("sending delivery %s failed unexpectedly", job.delivery_id)
                self._done.append(
                    Outcome(job.delivery_id, job.attempt, False, error=str(exc)[:900])
                )
        if not self._done:
            return
        if not (
            wait
            or not self._inflight
            or len(self._done) >= RECORD_BATCH
            or time.monotonic() - self._recorded_at >= RECORD_SECONDS
        ):
            return
        self._recorded_at = time.monotonic()
        outcomes, now = list(self._done), self.clock()
        started = time.perf_counter()
        with transaction.atomic():
            self._write(outcomes, now)
        self._done.clear()
        log.debug(
            "recorded %d outcome(s) in %.1f ms",
            len(outcomes),
            (time.perf_counter() - started) * 1000,
        )

    def _write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        s = self.settings
        # Lock the rows and read only what decides the outcome: the usual batch, all sent, is
        # then one UPDATE, not a model per row and a CASE per field and row.
        current = {
            pk: (status, worker, attempts, channel, message_id)
            for pk, status, worker, attempts, channel, message_id in Delivery.objects.filter(
                pk__in=[o.delivery_id for o in outcomes]
            )
            .select_for_update()
            .values_list("pk", "status", "worker", "attempts", "channel", "message_id")
        }
        sent: list[Any] = []
        dead: list[Delivery] = []
        retry: list[Delivery] = []
        messages: set[Any] = set()
        trail: dict[str, dict[str, Any]] = {"sent": {}, "retry": {}, "dead": {}}
        for o in outcomes:
            row = current.get(o.delivery_id)
            # Another worker took the row over after our lease ran out: it owns the outcome now.
            if (
                row is None
                or row[0] != DeliveryStatus.SENDING
                or row[1] != s.worker_id
                or row[2] != o.attempt
            ):
                log.warning("delivery %s was taken over; outcome not recorded", o.delivery_id)
                continue
            _, _, attempts, channel, message_id = row
            messages.add(message_id)
            key = str(o.delivery_id)
            if o.ok:
                sent.append(o.delivery_id)
                self.stats.sent += 1
                self.stats.by_channel[channel] = self.stats.by_channel.get(channel, 0) + 1
                trail["sent"][key] = attempts
            elif o.permanent or attempts >= s.max_attempts:
                why = "permanent failure" if o.permanent else f"{attempts} attempts failed"
                error = f"{o.error} ({why})"[:1000]
                dead.append(
                    Delivery(
                        pk=o.delivery_id,
                        status=DeliveryStatus.DEAD,
                        dead_at=now,
                        lease_until=None,
                        last_error=error,
                    )
                )
                self.stats.dead += 1
                log.warning("delivery %s is a dead letter: %s", o.delivery_id, error)
                trail["dead"][key] = {"attempt": attempts, "error": error}
            else:
                wait = backoff(attempts, s.backoff_seconds, s.backoff_max_seconds, self.rand)
                if o.retry_after is not None:
                    asked = timedelta(seconds=min(o.retry_after, s.backoff_max_seconds))
                    wait = max(wait, asked)
                error = o.error[:1000]
                retry.append(
                    Delivery(
                        pk=o.delivery_id,
                        status=DeliveryStatus.PENDING,
                        next_attempt_at=now + wait,
                        lease_until=None,
                        last_error=error,
                    )
                )
                self.stats.retried += 1
                trail["retry"][key] = {
                    "attempt": attempts,
                    "next_attempt_at": now + wait,
                    "error": error,
                }
        if not messages:
            return
        if sent:
            Delivery.objects.filter(pk__in=sent).update(
                status=DeliveryStatus.SENT, sent_at=now, lease_until=None, last_error=""
            )
        if dead:
            Delivery.objects.bulk_update(dead, ["status", "dead_at", "lease_until", "last_error"])
        if retry:
            Delivery.objects.bulk_update(
                retry, ["status", "next_attempt_at", "lease_until", "last_error"]
            )
        # The audit record takes the chain's lock before the messages are summed up: another
        # worker recording a sibling delivery waits for this commit, so it sees these rows.
        _audit_outcomes(now, s.worker_id, trail)
        _sum_up_messages(messages, now)


def _audit_outcomes(now: datetime, worker_id: str, trail: dict[str, dict[str, Any]]) -> None:
    """One audit record for a batch of outcomes (inside its transaction): which deliveries were
    sent, will be retried when, or became dead letters, at which attempt and why. One record per
    batch rather than per delivery keeps a fan-out to a hundred contacts off the audit chain's
    lock, which every writer shares."""
    ids = sorted(int(pk) for part in trail.values() for pk in part)
    record(
        at=now,
        actor_id=None,
        actor="system",
        organisation="",
        action="delivery.outcomes",
        object_type="notify.delivery",
        object_id=(str(ids[0]) if len(ids) == 1 else f"{ids[0]}-{ids[-1]} ({len(ids)})")[:80],
        after={"worker": worker_id, **{k: v for k, v in trail.items() if v}},
    )


def _ceiling(override: str, default: Tlp) -> Tlp:
    return parse_ceiling(override) if override else default


def _sum_up_messages(message_ids: set[Any], now: datetime) -> None:
    """A message is sent when every channel is, failed when one is dead and none still runs.

    One UPDATE per distinct result (a burst has a handful), without loading the messages."""
    if not message_ids:
        return
    found: dict[Any, list[tuple[str, int, datetime | None]]] = {}
    for mid, state, tries, at in Delivery.objects.filter(message_id__in=message_ids).values_list(
        "message_id", "status", "attempts", "sent_at"
    ):
        found.setdefault(mid, []).append((state, tries, at))
    results: dict[tuple[str, int, datetime | None], list[Any]] = {}
    for mid in message_ids:
        rows = found.get(mid, [])
        statuses = {r[0] for r in rows}
        status: str = OutboxStatus.PENDING
        sent_at: datetime | None = None
        if statuses == {DeliveryStatus.SENT}:
            status = OutboxStatus.SENT
            sent_at = max((r[2] for r in rows if r[2]), default=now)
        elif DeliveryStatus.DEAD in statuses and not statuses & {
            DeliveryStatus.PENDING,
            DeliveryStatus.SENDING,
        }:
            status = OutboxStatus.FAILED
        results.setdefault((status, sum(r[1] for r in rows), sent_at), []).append(mid)
    for (outcome, attempts, last), ids in results.items():
        values: dict[str, Any] = {"status": outcome, "attempts": attempts}
        if last is not None:
            values["sent_at"] = last
        OutboxMessage.objects.filter(pk__in=ids).update(**values)


def _listen_params() -> dict[str, Any]:
    """Connection parameters for a separate psycopg connection to Django's database."""
    params = dict(connection.get_connection_params())
    for name in ("cursor_factory", "context", "prepare_threshold", "server_side_binding"):
        params.pop(name, None)
    return params
