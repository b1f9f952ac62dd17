"""The ``vcisc`` command: serve, worker, migrate, demo, directory, users and tokens, the RFA story,
outbox, audit.

Commands call the same services as the API. Directory commands act as the console operator
(trusted like the database); commands in the request story act ``--as`` a user, with exactly
that user's rights and visibility.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

__all__ = ["main"]


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vcisc.settings")
    import django

    from vcisc.config import ConfigError

    try:
        django.setup()
    except ConfigError as exc:
        raise SystemExit(f"vcisc: {exc}") from None


def _print(data: Any) -> None:
    from django.core.serializers.json import DjangoJSONEncoder

    print(json.dumps(data, indent=2, cls=DjangoJSONEncoder, ensure_ascii=False))


def _load_json(path: str) -> dict[str, Any]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"vcisc: {path}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise SystemExit(f"vcisc: {path}: expected a JSON object")
    return data


def _as(email: str) -> Any:
    from vcisc.federation.services import get_user_by_email

    return get_user_by_email(email)


def _org_id(value: str) -> int:
    from vcisc.errors import NotFound
    from vcisc.federation.models import Organisation

    if value.isdigit():
        return int(value)
    org = (
        Organisation.objects.filter(name=value).first()
        or Organisation.objects.filter(short_name=value).first()
    )
    if org is None:
        raise NotFound(f"no organisation {value!r}")
    return org.pk


def _uuid(value: str) -> UUID:
    """An argparse type: a request-domain id (offers, engagements) is a UUID."""
    try:
        return UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an id (ids are UUIDs)") from None


def _rfa_id(user: Any, value: str | None) -> UUID:
    """A request by id (UUID) or by reference (``RFA-2026-…``), among those ``user`` may see."""
    from vcisc import authz
    from vcisc.errors import Invalid, NotFound

    if value is None:
        raise Invalid("id", "name the request by id or reference")
    try:
        return UUID(value)
    except ValueError:
        pass
    found = (
        authz.visible_requests(user).filter(reference=value.upper()).values_list("pk", flat=True)
    )
    if not found:
        raise NotFound(f"request {value} not found")
    return found[0]


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


# --- commands -----------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn
    from django.conf import settings

    config = settings.CONFIG
    host = args.host or config.host
    port = args.port or config.port
    print(f"VCISC serving on http://{host}:{port}/ (API at /api/v1/, health at /healthz)")
    uvicorn.run(
        "vcisc.asgi:application",
        host=host,
        port=port,
        workers=args.workers,
        log_level=config.log_level.lower(),
        lifespan="off",
    )


def _stale_schema() -> list[str]:
    """VCISC migrations the database says it applied that this version does not ship.

    Before 0.2 the request-domain apps had integer keys; their migrations were then replaced by
    a UUID schema (vcisc.ids). Such a database cannot be upgraded in place, and Django would
    otherwise skip the new ``0001_initial`` as "already applied" and leave the old tables.
    """
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection, ignore_no_migrations=True)
    ours = {app.label for app in _vcisc_apps()}
    return sorted(
        f"{app}.{name}"
        for app, name in loader.applied_migrations or {}
        if app in ours and (app, name) not in loader.disk_migrations
    )


def _vcisc_apps() -> list[Any]:
    from django.apps import apps

    return [a for a in apps.get_app_configs() if a.name.startswith("vcisc.")]


def cmd_migrate(args: argparse.Namespace) -> None:
    from django.core.management import call_command

    stale = _stale_schema()
    if stale:
        raise SystemExit(
            "vcisc: this database was made by a pre-release schema that cannot be upgraded in"
            f" place (it applied {', '.join(stale)}); export what you need, then migrate a new"
            " database (for `make run`: remove ./var)"
        )
    call_command("migrate", interactive=False, verbosity=1 if args.verbose else 0)
    print("database is up to date")


def cmd_demo(args: argparse.Namespace) -> None:
    from vcisc.demo import load_demo

    summary = load_demo(progress=not args.quiet, password=args.password or None)
    _print(summary.__dict__)


def cmd_manage(args: argparse.Namespace) -> None:
    from django.core.management import execute_from_command_line

    execute_from_command_line(["vcisc manage", *args.rest])


def cmd_user_create(args: argparse.Namespace) -> None:
    from vcisc.federation.services import create_user

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif args.password:
        password = getpass.getpass("Password: ")
    user = create_user(
        None,
        email=args.email,
        organisation_id=_org_id(args.org) if args.org else None,
        roles=_csv(args.roles),
        password=password,
        first_name=args.first_name,
        last_name=args.last_name,
    )
    print(
        f"created user {user.email} (id {user.pk}) in {user.organisation or 'no organisation'} "
        f"with roles {', '.join(user.roles) or 'none'}"
    )
    if password is None:
        print(f"no password: issue an API token with `vcisc token create --user {user.email}`")


def cmd_user_list(args: argparse.Namespace) -> None:
    from vcisc.federation.models import User

    for u in User.objects.select_related("organisation"):
        state = "" if u.is_active else " (deactivated)"
        print(f"{u.pk:5} {u.email:40} {u.organisation or '-'!s:40} {','.join(u.roles)}{state}")


def cmd_user_deactivate(args: argparse.Namespace) -> None:
    from vcisc.federation.services import deactivate, get_user_by_email

    user = deactivate(None, get_user_by_email(args.email))
    print(f"deactivated {user.email}; their tokens are revoked")


def cmd_token_create(args: argparse.Namespace) -> None:
    from django.conf import settings

    from vcisc.federation.services import create_token, get_user_by_email

    user = get_user_by_email(args.user)
    days = args.days or settings.VCISC_TOKEN_DEFAULT_DAYS
    row, text = create_token(None, user, days=days, name=args.name)
    if args.quiet:
        print(text)
        return
    print(
        f"token for {user.email} (key id {row.key_id}), expires {row.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    print("It is shown this once; store it now:")
    print(text)
    print(
        f'Use it as: curl -H "Authorization: Bearer {text}" http://127.0.0.1:8000/api/v1/requests'
    )


def cmd_token_list(args: argparse.Namespace) -> None:
    from vcisc.federation.models import ApiToken

    qs = ApiToken.objects.select_related("user")
    if args.user:
        qs = qs.filter(user__email=args.user.lower())
    for t in qs:
        state = "revoked" if t.revoked_at else "active"
        print(f"{t.key_id} {t.user.email:40} {t.name:20} expires {t.expires_at:%Y-%m-%d} {state}")


def cmd_token_revoke(args: argparse.Namespace) -> None:
    from vcisc.errors import NotFound
    from vcisc.federation.models import ApiToken
    from vcisc.federation.services import revoke_token

    token = ApiToken.objects.filter(key_id=args.key_id).first()
    if token is None:
        raise NotFound(f"no token {args.key_id}")
    revoke_token(None, token)
    print(f"revoked token {args.key_id}")


def cmd_audit_verify(args: argparse.Namespace) -> None:
    from vcisc.audit.chain import verify

    count, head, problem = verify()
    if problem is not None:
        print(f"audit chain BROKEN after checking {count} records: {problem}")
        raise SystemExit(1)
    if args.expect_head and args.expect_head != head and count:
        print(
            f"audit chain intact ({count} records) but its head {head} is not the expected "
            f"{args.expect_head}: records were added or the newest ones removed"
        )
        raise SystemExit(1)
    print(f"audit chain intact: {count} records, head {head}")


def cmd_expire(args: argparse.Namespace) -> None:
    from vcisc.assistance.services import expire_overdue

    expired = expire_overdue()
    print(f"expired {len(expired)} request(s){': ' + ', '.join(expired) if expired else ''}")


# Notifications -----------------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> None:
    import signal

    from django.conf import settings

    from vcisc.notify.worker import Worker, WorkerSettings

    overrides: dict[str, Any] = {}
    if args.batch is not None:
        if not 1 <= args.batch <= 1000:
            raise SystemExit("vcisc: --batch must be between 1 and 1000")
        overrides["batch"] = args.batch
    if args.concurrency is not None:
        if not 1 <= args.concurrency <= 2000:
            raise SystemExit("vcisc: --concurrency must be between 1 and 2000")
        overrides["concurrency"] = args.concurrency
    ws = WorkerSettings.from_config(settings.CONFIG, **overrides)
    worker = Worker(ws)
    mail = (
        f"e-mail via {ws.smtp.host}:{ws.smtp.port} ({ws.smtp.security})"
        if ws.smtp
        else "e-mail OFF (VCISC_SMTP_HOST unset: e-mails wait in the outbox)"
    )
    print(
        f"vcisc worker {ws.worker_id}: {mail}; webhooks; up to {ws.concurrency} in flight, "
        f"claimed {ws.batch} at a time",
        file=sys.stderr,
        flush=True,
    )
    if not args.once:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: worker.stop())
    stats = worker.run(once=args.once)
    print(
        f"sent {stats.sent}, retrying {stats.retried}, dead {stats.dead}, "
        f"reminders/escalations {stats.escalations}"
    )


def cmd_outbox(args: argparse.Namespace) -> None:
    from vcisc.notify import services
    from vcisc.notify.models import Delivery, DeliveryStatus

    if args.op == "list":
        qs = Delivery.objects.select_related("message__organisation", "message__contact")
        if args.dead:
            qs = qs.filter(status=DeliveryStatus.DEAD)
        elif not args.all:
            qs = qs.exclude(status=DeliveryStatus.SENT)
        rows = list(qs.order_by("-id")[: args.limit])
        if not rows:
            print("no dead letters" if args.dead else "nothing waiting")
        for d in rows:
            when = {
                DeliveryStatus.DEAD: d.dead_at,
                DeliveryStatus.SENT: d.sent_at,
                DeliveryStatus.PENDING: d.next_attempt_at,
                DeliveryStatus.SENDING: d.lease_until,
            }.get(DeliveryStatus(d.status))
            msg = d.message
            print(
                f"{d.pk:6} {d.channel:7} {d.status:7} {d.attempts:2}x "
                f"{when:%Y-%m-%d %H:%M:%S} {msg.kind:18} rfa {msg.rfa_id or '-'} "
                f"{msg.organisation.name} / {msg.contact.name}"
                + (f"\n         {d.last_error}" if d.last_error else "")
            )
    elif args.op == "replay":
        ids = list(args.ids)
        if args.all_dead:
            ids = list(
                Delivery.objects.filter(status=DeliveryStatus.DEAD).values_list("pk", flat=True)
            )
            if not ids:
                print("no dead letters")
                return
        rows = services.replay(None, ids)
        print(f"replayed {len(rows)} dead letter(s): {', '.join(str(r.pk) for r in rows)}")


def cmd_notify(args: argparse.Namespace) -> None:
    from vcisc.errors import NotFound
    from vcisc.federation.models import Organisation, PointOfContact
    from vcisc.notify import services

    if args.op == "settings":
        org = Organisation.objects.get(pk=_org_id(args.target))
        changes: dict[str, Any] = {
            field: value
            for field, value in (
                ("sender_name", args.sender_name),
                ("sender_address", args.sender_address),
                ("reply_to", args.reply_to),
                ("email_tlp_ceiling", args.email_tlp),
                ("webhook_tlp_ceiling", args.webhook_tlp),
            )
            if value is not None
        }
        if args.duty_desk is not None:
            if args.duty_desk != "none" and not args.duty_desk.isdigit():
                raise SystemExit("vcisc: --duty-desk takes a contact id or 'none'")
            changes["duty_desk_id"] = None if args.duty_desk == "none" else int(args.duty_desk)
        row = services.update_delivery_settings(None, org, changes)
        _print(
            {
                "organisation": org.name,
                "sender_name": row.sender_name,
                "sender_address": row.sender_address,
                "reply_to": row.reply_to,
                "email_tlp_ceiling": row.email_tlp_ceiling or "(server default)",
                "webhook_tlp_ceiling": row.webhook_tlp_ceiling or "(server default)",
                "duty_desk_id": row.duty_desk_id,
            }
        )
        return
    if not args.target.isdigit():
        raise SystemExit("vcisc: give the point of contact's id (see `vcisc contact list`)")
    contact = PointOfContact.objects.filter(pk=int(args.target)).first()
    if contact is None:
        raise NotFound(f"no contact {args.target}")
    if args.op == "key":
        if args.remove:
            services.remove_contact_key(None, contact)
            print(f"removed the OpenPGP key of contact {contact.pk}: e-mail is no longer encrypted")
            return
        if not args.file:
            raise SystemExit("vcisc: give --file KEY.asc (or - for stdin), or --remove")
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        key = services.set_contact_key(None, contact, text)
        print(f"e-mail to {contact.name} is now encrypted to OpenPGP key {key.fingerprint}")
    elif args.op == "secret":
        if args.rotate:
            secret = services.rotate_webhook_secret(None, contact)
            print("rotated; the previous secret keeps signing for 24 hours", file=sys.stderr)
        else:
            secret = services.webhook_secrets([contact])[contact.pk][0]
        print(secret)


# Directory ---------------------------------------------------------------------------------------


def cmd_nation(args: argparse.Namespace) -> None:
    from vcisc.federation import services
    from vcisc.federation.models import Nation

    if args.op == "list":
        for n in Nation.objects.all():
            print(
                f"{n.code} {n.name:30} {n.kind:8} {'EU' if n.eu_member else '  '} "
                f"{'' if n.active else 'deactivated'}"
            )
    elif args.op == "create":
        n = services.create_nation(
            None, code=args.code, name=args.name, kind=args.kind, eu_member=bool(args.eu)
        )
        print(f"created nation {n}")
    else:
        nation = Nation.objects.filter(code=args.code.upper()).first()
        if nation is None:
            raise SystemExit(f"vcisc: no nation {args.code}")
        if args.op == "deactivate":
            services.deactivate(None, nation)
        else:
            changes: dict[str, Any] = {}
            if args.name:
                changes["name"] = args.name
            if args.kind:
                changes["kind"] = args.kind
            if args.eu is not None:
                changes["eu_member"] = args.eu
            services.update(None, nation, changes)
        print(f"{args.op}d nation {args.code.upper()}")


def cmd_org(args: argparse.Namespace) -> None:
    from vcisc.federation import services
    from vcisc.federation.models import Organisation

    if args.op == "list":
        for o in Organisation.objects.select_related("nation"):
            print(
                f"{o.pk:5} {o.name:50} {o.kind:16} {o.nation.code if o.nation else '--'} "
                f"{'' if o.active else 'deactivated'}"
            )
    elif args.op == "create":
        org = services.create_organisation(
            None,
            name=args.name,
            kind=args.kind,
            nation_code=args.nation,
            short_name=args.short_name,
        )
        print(f"created organisation {org.name} (id {org.pk})")
    else:
        org = Organisation.objects.get(pk=_org_id(args.org))
        if args.op == "deactivate":
            services.deactivate(None, org)
        else:
            changes = {
                k: v
                for k, v in (
                    ("name", args.name),
                    ("short_name", args.short_name),
                    ("kind", args.kind),
                )
                if v
            }
            services.update(None, org, changes)
        print(f"{args.op}d organisation {org.name}")


def cmd_contact(args: argparse.Namespace) -> None:
    from vcisc.federation import services
    from vcisc.federation.models import PointOfContact

    if args.op == "list":
        qs = PointOfContact.objects.select_related("organisation")
        if args.org:
            qs = qs.filter(organisation_id=_org_id(args.org))
        for c in qs:
            print(
                f"{c.pk:5} {c.organisation.name:40} {c.name:25} {c.email:35} {c.on_call} "
                f"({c.time_zone})"
            )
    elif args.op == "create":
        c = services.create_contact(
            None,
            organisation_id=_org_id(args.org),
            name=args.name,
            email=args.email or "",
            phone=args.phone or "",
            webhook_url=args.webhook or "",
            languages=_csv(args.languages),
            time_zone=args.time_zone,
            on_call=args.on_call,
        )
        print(f"created contact {c.name} (id {c.pk})")
    else:
        _change(args, "contact", PointOfContact)


def _change(args: argparse.Namespace, noun: str, model: type[Any]) -> None:
    """``update ID --changes JSON`` or ``deactivate ID`` of a directory entry, via the services."""
    from vcisc.errors import NotFound
    from vcisc.federation import services

    obj = model.objects.filter(pk=args.id).first() if args.id is not None else None
    if obj is None:
        raise NotFound(f"no {noun} {args.id}")
    if args.op == "deactivate":
        services.deactivate(None, obj)
    else:
        try:
            changes = json.loads(args.changes or "{}")
        except json.JSONDecodeError as exc:
            raise SystemExit(f"vcisc: --changes is not JSON ({exc})") from None
        if not isinstance(changes, dict) or not changes:
            raise SystemExit("vcisc: --changes takes a JSON object, e.g. '{\"max_concurrent\": 3}'")
        services.update(None, obj, changes)
    print(f"{args.op}d {noun} {args.id}")


def cmd_capability(args: argparse.Namespace) -> None:
    from vcisc.federation import services
    from vcisc.federation.models import Capability

    if args.op == "list":
        qs = Capability.objects.select_related("organisation")
        if args.org:
            qs = qs.filter(organisation_id=_org_id(args.org))
        for c in qs:
            print(
                f"{c.pk:5} {c.organisation.name:40} {c.service_type:30} {c.depth:9} "
                f"x{c.max_concurrent} {','.join(c.sectors) or 'any sector'}"
            )
    elif args.op == "create":
        c = services.create_capability(
            None,
            organisation_id=_org_id(args.org),
            service_type=args.service,
            depth=args.depth,
            sectors=_csv(args.sectors),
            ics_protocols=_csv(args.ics_protocols),
            ics_vendors=_csv(args.ics_vendors),
            languages=_csv(args.languages),
            max_concurrent=args.max_concurrent,
            legal_conditions=_csv(args.legal_conditions),
        )
        print(f"created capability {c.pk}: {c}")
    else:
        _change(args, "capability", Capability)


# The request story -------------------------------------------------------------------------------


def cmd_request(args: argparse.Namespace) -> None:
    from vcisc import authz
    from vcisc.assistance import services
    from vcisc.assistance.api import rfa_out

    user = _as(args.as_user)
    if args.op == "list":
        viewer = authz.Viewer.of(user)
        for rfa in authz.visible_requests(user):
            out = rfa_out(user, rfa, viewer=viewer)
            print(
                f"{rfa.pk} {rfa.reference} {rfa.state:15} TLP:{rfa.tlp.upper():13} "
                f"sev {rfa.severity} {rfa.sector:25} {out.get('title') or '(content withheld)'}"
            )
    elif args.op == "show":
        _print(rfa_out(user, authz.get_rfa(user, _rfa_id(user, args.id))))
    elif args.op == "create":
        data = _load_json(args.json)
        submit = bool(data.pop("submit", False)) or args.submit
        _print(rfa_out(user, services.create_rfa(user, data, submit=submit)))
    elif args.op == "transition":
        rfa_id = _rfa_id(user, args.id)
        _print(rfa_out(user, services.transition(user, rfa_id, args.action, reason=args.reason)))
    elif args.op == "match":
        from vcisc.matching.services import match

        rfa = authz.get_rfa(user, _rfa_id(user, args.id))
        if not authz.is_coordinator(user):
            raise SystemExit("vcisc: matching is a secretariat coordinator's tool")
        from django.utils import timezone

        result = match(rfa, now=timezone.now())
        for c in result.candidates[: args.top]:
            print(f"{c.score:6.1f}  {c.organisation_name} ({c.nation})  [org {c.organisation_id}]")
            for r in c.reasons:
                print(f"        {r.factor:14} {r.points:5.1f}/{r.max_points:<4.0f} {r.detail}")
        print(f"{len(result.excluded)} organisation(s) filtered out")
    elif args.op == "route":
        ids = [_org_id(v) for v in _csv(args.orgs)] or None
        res = services.route(user, _rfa_id(user, args.id), ids, top=args.top)
        print(
            f"routed {res.rfa.reference} to {len(res.routed)} organisation(s); "
            f"{res.notifications} notification(s) queued"
        )


def cmd_offer(args: argparse.Namespace) -> None:
    from vcisc import authz
    from vcisc.assistance import services

    user = _as(args.as_user)
    if args.op == "list":
        for o in authz.offers_visible(user, authz.get_rfa(user, _rfa_id(user, args.id))):
            print(f"{o.pk} {o.organisation.name:40} {o.state:10} team {o.team_size} {o.scope[:60]}")
    elif args.op == "create":
        offer = services.create_offer(user, _rfa_id(user, args.id), _load_json(args.json))
        print(f"offer {offer.pk} proposed on {offer.rfa.reference}")
    else:
        try:
            offer_id = UUID(args.id)
        except ValueError:
            raise SystemExit(f"vcisc: {args.id!r} is not an offer id (ids are UUIDs)") from None
        offer = services.offer_action(user, offer_id, args.op, reason=args.reason)
        print(f"offer {offer.pk} is {offer.state}")


def cmd_engagement(args: argparse.Namespace) -> None:
    from vcisc.engagements import indicators, services

    user = _as(args.as_user)
    if args.op == "import":
        _import_indicators(user, args)
        return
    data = _load_json(args.json)
    fn: dict[str, Callable[..., Any]] = {
        "task": services.add_task,
        "note": services.add_note,
        "sitrep": services.add_sitrep,
        "review": services.submit_review,
        "indicator": indicators.add_indicator,
    }
    item = fn[args.op](user, args.id, data)
    print(f"{args.op} {item.pk} added to engagement {args.id}")


def _import_indicators(user: Any, args: argparse.Namespace) -> None:
    """``vcisc engagement import``: a file of indicators, with a progress line and the report."""
    from vcisc.engagements.indicators import ImportRejected, import_indicators
    from vcisc.sharing.reports import ImportMode

    if not args.format:
        raise SystemExit("vcisc: --format csv|text|stix|misp is required for import")
    mode = ImportMode.SKIP_INVALID if args.skip_invalid else ImportMode.ATOMIC
    if args.format == "stix":
        _import_stix_file(user, args, mode)
        return
    content = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
    from rich.console import Console

    status = Console(stderr=True).status(f"importing {len(content):,} characters of {args.format}")
    try:
        with status:
            result, report = import_indicators(
                user, args.id, fmt=args.format, content=content, mode=mode
            )
    except ImportRejected as exc:
        _print(exc.extra["report"])
        print(f"vcisc: import rejected, nothing stored: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    for problem in (*report.errors, *report.warnings):
        print(f"  {problem}", file=sys.stderr)
    print(
        f"{len(result.created)} indicator(s) added to engagement {args.id}; "
        f"{result.duplicates} already there; {result.correlations} correlation(s); "
        f"{len(report.skipped)} invalid object(s) skipped"
    )


def cmd_feed(args: argparse.Namespace) -> None:
    """``vcisc feed``: the federation's MISP feeds (list, add, pull, import, enable, disable)."""
    from vcisc.errors import DomainError
    from vcisc.feeds import services

    user = _as(args.as_user)
    if args.op == "list":
        for feed in services.visible_feeds(user):
            pulled = f"{feed.pulled_at:%Y-%m-%d %H:%M}" if feed.pulled_at else "never"
            state = "" if feed.enabled else " (disabled)"
            print(
                f"{feed.pk} {feed.name:30} {feed.tlp:6} {feed.events:6} events "
                f"{feed.indicators:8} indicators  pulled {pulled}{state}  {feed.url}"
            )
        return
    if args.op == "add":
        if not args.name or not args.tlp:
            raise SystemExit("vcisc: feed add needs --name and --tlp clear|green")
        data = {"name": args.name, "tlp": args.tlp, "url": args.url, "provider": args.provider}
        if args.every is not None:
            data["pull_every_minutes"] = args.every
        feed = services.create_feed(user, data)
        print(f"feed {feed.pk} {feed.name} added")
        return
    if args.op == "pull" and args.due:
        if args.feed:
            raise SystemExit("vcisc: feed pull --due pulls every feed that is due; name none")
        due = services.due_feeds()
        if not due:
            print("no feed is due")
        for feed in due:
            try:
                _pull_or_import(user, feed, args)
            except SystemExit as exc:  # one feed's failure does not stop the others
                print(f"vcisc: feed {feed.name} was not pulled (exit {exc.code})", file=sys.stderr)
            except DomainError as exc:
                print(f"vcisc: feed {feed.name}: {exc.message}", file=sys.stderr)
        return
    feed = _feed(user, args.feed)
    if args.op in ("enable", "disable"):
        services.update_feed(user, feed.pk, {"enabled": args.op == "enable"})
        print(f"feed {feed.name} {args.op}d")
        return
    _pull_or_import(user, feed, args)


def _feed(user: Any, value: str | None) -> Any:
    from vcisc.errors import NotFound
    from vcisc.feeds import services

    if not value:
        raise SystemExit("vcisc: name the feed (its id or name)")
    try:
        return services.get_feed(user, UUID(value))
    except ValueError:
        found = services.visible_feeds(user).filter(name=value).first()
        if found is None:
            raise NotFound(f"no feed {value!r}") from None
        return found


def _pull_or_import(user: Any, feed: Any, args: argparse.Namespace) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from vcisc.engagements.indicators import ImportRejected
    from vcisc.feeds import services
    from vcisc.sharing.reports import ImportMode

    mode = ImportMode.SKIP_INVALID if args.skip_invalid else ImportMode.ATOMIC
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, disable=args.quiet, transient=True) as bar:
        task = bar.add_task(f"{args.op} {feed.name}", total=None)

        def step(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        try:
            if args.op == "pull":
                # A public feed is pulled skipping (and reporting) what is invalid, unless --strict.
                mode = ImportMode.ATOMIC if args.strict else ImportMode.SKIP_INVALID
                result = services.pull_feed(user, feed.pk, mode=mode, progress=step)
            else:
                if not args.dir:
                    raise SystemExit("vcisc: feed import needs --dir (manifest.json and events)")
                folder = Path(args.dir)
                manifest_file = folder / "manifest.json"
                if not manifest_file.is_file():
                    raise SystemExit(f"vcisc: {manifest_file} is not there")
                manifest = manifest_file.read_bytes()
                try:
                    total = len(json.loads(manifest))
                except (ValueError, TypeError):
                    total = 0  # the importer says what is wrong with it
                done = 0

                def load(event_uuid: str) -> bytes | None:
                    nonlocal done
                    done += 1
                    step(done, total)
                    path = folder / f"{event_uuid}.json"
                    return path.read_bytes() if path.is_file() else None

                result = services.import_feed_content(user, feed.pk, manifest, load, mode=mode)
        except ImportRejected as exc:
            _print(exc.extra["report"])
            print(f"vcisc: feed rejected, nothing changed: {exc.message}", file=sys.stderr)
            raise SystemExit(2) from None
    for problem in (*result.report.errors, *result.report.warnings):
        print(f"  {problem}", file=sys.stderr)
    print(
        f"feed {feed.name}: {result.events} event(s), {result.indicators} indicator(s); "
        f"{result.matches} new match(es) with engagements; "
        f"{len(result.report.skipped)} problem(s) skipped"
    )


def _import_stix_file(user: Any, args: argparse.Namespace, mode: Any) -> None:
    """A STIX bundle is streamed from the file and stored in batches (one transaction), so a
    bundle of a million objects needs no more memory than a batch; progress in objects read."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    from vcisc.engagements.indicators import ImportRejected, import_stix_stream

    if args.file == "-":
        handle = sys.stdin.buffer
        size = None
    else:
        path = Path(args.file)
        if not path.is_file():
            raise SystemExit(f"vcisc: {path} is not a file")
        handle = path.open("rb")
        size = path.stat().st_size
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn())
    try:
        with Progress(*columns, disable=args.quiet, transient=True) as bar:
            task = bar.add_task("importing STIX objects", total=size)

            def step(objects: int) -> None:
                position = handle.tell() if handle.seekable() else None
                bar.update(task, completed=position, description=f"{objects:,} objects read")

            result, report = import_stix_stream(user, args.id, handle, mode=mode, progress=step)
    except ImportRejected as exc:
        _print(exc.extra["report"])
        print(f"vcisc: import rejected, nothing stored: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()
    for problem in (*report.errors, *report.warnings):
        print(f"  {problem}", file=sys.stderr)
    print(
        f"{result.count} indicator(s) added to engagement {args.id}; "
        f"{result.duplicates} already there; {result.correlations} correlation(s); "
        f"{result.feed_matches} in federation feeds; "
        f"{len(report.skipped)} invalid object(s) skipped"
    )


# --- parser -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vcisc", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="serve the web application over ASGI (uvicorn)")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(fn=cmd_serve)

    s = sub.add_parser("migrate", help="create or upgrade the database schema")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(fn=cmd_migrate)

    s = sub.add_parser("demo", help="load the demo federation (idempotent)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--password", help="give every demo user this password (for the web console)")
    s.set_defaults(fn=cmd_demo)

    s = sub.add_parser("manage", help="run a Django management command")
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(fn=cmd_manage)

    s = sub.add_parser("expire-overdue", help="expire circulated requests past their deadline")
    s.set_defaults(fn=cmd_expire)

    s = sub.add_parser("worker", help="deliver notifications and escalate deadlines")
    s.add_argument("--once", action="store_true", help="deliver what is due, then exit")
    s.add_argument(
        "--batch", type=int, help="deliveries claimed at a time (default VCISC_WORKER_BATCH)"
    )
    s.add_argument(
        "--concurrency",
        type=int,
        help="deliveries in flight at once (default VCISC_WORKER_CONCURRENCY)",
    )
    s.set_defaults(fn=cmd_worker)

    outbox = sub.add_parser("outbox", help="notification deliveries and dead letters")
    outbox_ops = outbox.add_subparsers(dest="op", required=True)
    s = outbox_ops.add_parser("list", help="deliveries not yet sent (newest first)")
    s.add_argument("--dead", action="store_true", help="dead letters only")
    s.add_argument("--all", action="store_true", help="sent ones too")
    s.add_argument("--limit", type=int, default=50)
    s.set_defaults(fn=cmd_outbox)
    s = outbox_ops.add_parser("replay", help="send dead letters again (audited)")
    s.add_argument("ids", nargs="*", type=int)
    s.add_argument("--all-dead", action="store_true")
    s.set_defaults(fn=cmd_outbox)

    s = sub.add_parser("notify", help="delivery settings, OpenPGP keys, webhook secrets")
    s.add_argument("op", choices=["settings", "key", "secret"])
    s.add_argument("target", help="organisation id or name (settings); contact id (key, secret)")
    s.add_argument("--sender-name")
    s.add_argument("--sender-address")
    s.add_argument("--reply-to")
    s.add_argument("--email-tlp", help="highest TLP sent in full by plain e-mail")
    s.add_argument("--webhook-tlp", help="highest TLP sent in full by webhook")
    s.add_argument("--duty-desk", help="contact id escalations reach, or 'none'")
    s.add_argument("--file", help="key: the ASCII-armored public key (- for stdin)")
    s.add_argument("--remove", action="store_true", help="key: stop encrypting")
    s.add_argument("--rotate", action="store_true", help="secret: issue a new one")
    s.set_defaults(fn=cmd_notify)

    user = sub.add_parser("user", help="users").add_subparsers(dest="op", required=True)
    s = user.add_parser("create")
    s.add_argument("--email", required=True)
    s.add_argument("--org", help="organisation id or name")
    s.add_argument("--roles", default="", help="comma-separated: liaison,analyst,coordinator,…")
    s.add_argument("--first-name", default="")
    s.add_argument("--last-name", default="")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--password", action="store_true", help="prompt for a password")
    g.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    s.set_defaults(fn=cmd_user_create)
    user.add_parser("list").set_defaults(fn=cmd_user_list)
    s = user.add_parser("deactivate")
    s.add_argument("email")
    s.set_defaults(fn=cmd_user_deactivate)

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="op", required=True)
    s = token.add_parser("create")
    s.add_argument("--user", required=True, help="e-mail of the token's owner")
    s.add_argument("--days", type=int, help="lifetime (default from VCISC_TOKEN_DEFAULT_DAYS)")
    s.add_argument("--name", default="")
    s.add_argument("--quiet", action="store_true", help="print the token only")
    s.set_defaults(fn=cmd_token_create)
    s = token.add_parser("list")
    s.add_argument("--user")
    s.set_defaults(fn=cmd_token_list)
    s = token.add_parser("revoke")
    s.add_argument("key_id")
    s.set_defaults(fn=cmd_token_revoke)

    audit = sub.add_parser("audit", help="audit trail").add_subparsers(dest="op", required=True)
    s = audit.add_parser("verify", help="check the hash chain; report the first broken record")
    s.add_argument("--expect-head", help="head digest recorded earlier (detects truncation)")
    s.set_defaults(fn=cmd_audit_verify)

    s = sub.add_parser("nation", help="nations")
    s.add_argument("op", choices=["list", "create", "update", "deactivate"])
    s.add_argument("code", nargs="?")
    s.add_argument("--name")
    s.add_argument("--kind", choices=["member", "partner", "observer"])
    s.add_argument("--eu", action=argparse.BooleanOptionalAction, default=None)
    s.set_defaults(fn=cmd_nation)

    s = sub.add_parser("org", help="organisations")
    s.add_argument("op", choices=["list", "create", "update", "deactivate"])
    s.add_argument("org", nargs="?", help="id or name (update, deactivate)")
    s.add_argument("--name")
    s.add_argument("--short-name", default="")
    s.add_argument("--kind")
    s.add_argument("--nation")
    s.set_defaults(fn=cmd_org)

    s = sub.add_parser("contact", help="points of contact")
    s.add_argument("op", choices=["list", "create", "update", "deactivate"])
    s.add_argument("--changes", help='update: JSON object, e.g. \'{"on_call": "24/7"}\'')
    s.add_argument("id", nargs="?", type=int)
    s.add_argument("--org")
    s.add_argument("--name")
    s.add_argument("--email")
    s.add_argument("--phone")
    s.add_argument("--webhook")
    s.add_argument("--languages", default="en")
    s.add_argument("--time-zone", default="UTC")
    s.add_argument("--on-call", default="24/7")
    s.set_defaults(fn=cmd_contact)

    s = sub.add_parser("capability", help="capability catalogue")
    s.add_argument("op", choices=["list", "create", "update", "deactivate"])
    s.add_argument("--changes", help="update: JSON object, e.g. '{\"max_concurrent\": 3}'")
    s.add_argument("id", nargs="?", type=int)
    s.add_argument("--org")
    s.add_argument("--service")
    s.add_argument("--depth", default="advanced")
    s.add_argument("--sectors", default="")
    s.add_argument("--ics-protocols", default="")
    s.add_argument("--ics-vendors", default="")
    s.add_argument("--languages", default="en")
    s.add_argument("--max-concurrent", type=int, default=1)
    s.add_argument("--legal-conditions", default="")
    s.set_defaults(fn=cmd_capability)

    s = sub.add_parser("request", help="requests for assistance, acting as a user")
    s.add_argument("op", choices=["list", "show", "create", "transition", "match", "route"])
    s.add_argument("id", nargs="?", help="request id or reference (RFA-…)")
    s.add_argument("--as", dest="as_user", required=True, help="e-mail of the acting user")
    s.add_argument("--json", default="-", help="file with the request (create); - for stdin")
    s.add_argument("--submit", action="store_true")
    s.add_argument("--action")
    s.add_argument("--reason", default="")
    s.add_argument("--orgs", help="route: comma-separated organisation ids or names")
    s.add_argument("--top", type=int, default=5)
    s.set_defaults(fn=cmd_request)

    s = sub.add_parser("offer", help="offers, acting as a user")
    s.add_argument(
        "op", choices=["list", "create", "accept", "decline", "withdraw", "start", "complete"]
    )
    s.add_argument("id", help="request id or reference (list, create), or offer id")
    s.add_argument("--as", dest="as_user", required=True)
    s.add_argument("--json", default="-")
    s.add_argument("--reason", default="")
    s.set_defaults(fn=cmd_offer)

    s = sub.add_parser("engagement", help="add to an engagement, acting as a user")
    s.add_argument("op", choices=["task", "note", "sitrep", "review", "indicator", "import"])
    s.add_argument("id", type=_uuid, help="engagement id")
    s.add_argument("--as", dest="as_user", required=True)
    s.add_argument("--json", default="-")
    s.add_argument("--format", choices=["csv", "text", "stix", "misp"], help="import: the format")
    s.add_argument("--file", default="-", help="import: the file to read; - for stdin")
    s.add_argument(
        "--skip-invalid",
        action="store_true",
        help="import: skip invalid objects and report them (default: reject the whole import)",
    )
    s.add_argument("--quiet", action="store_true", help="import: no progress bar")
    s.set_defaults(fn=cmd_engagement)

    s = sub.add_parser("feed", help="federation MISP feeds, acting as a user")
    s.add_argument("op", choices=["list", "add", "pull", "import", "enable", "disable"])
    s.add_argument("feed", nargs="?", help="the feed's id or name (pull, import, enable, disable)")
    s.add_argument("--as", dest="as_user", required=True)
    s.add_argument("--name", help="add: the feed's name")
    s.add_argument("--tlp", choices=["clear", "green"], help="add: the feed's marking")
    s.add_argument("--url", default="", help="add: the feed's base URL (to pull from)")
    s.add_argument("--provider", default="", help="add: who publishes the feed")
    s.add_argument("--every", type=int, help="add: pull every this many minutes (with pull --due)")
    s.add_argument(
        "--due",
        action="store_true",
        help="pull: every enabled feed whose schedule says it is due (for cron or a timer)",
    )
    s.add_argument("--dir", help="import: a folder holding manifest.json and <uuid>.json files")
    s.add_argument(
        "--skip-invalid",
        action="store_true",
        help="import: skip invalid events and attributes, and report them (pull does by default)",
    )
    s.add_argument("--strict", action="store_true", help="pull: reject the whole feed on an error")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(fn=cmd_feed)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    _setup()
    from vcisc.errors import DomainError

    try:
        args.fn(args)
    except DomainError as exc:
        print(f"vcisc: {exc.message}", file=sys.stderr)
        allowed = exc.extra.get("allowed")
        if allowed and "allowed:" not in exc.message:
            print(f"allowed: {', '.join(map(str, allowed))}", file=sys.stderr)  # type: ignore[call-overload]
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
