"""A federation whose points of contact use local receivers, and one request routed to all of
them: for the worker-process tests and ``bench/bench_notify.py``.

Run as ``python -m tests.notify.seed --orgs 30 --contacts 3 --webhook URL`` against the database
the environment names (it prints a JSON summary), or call :func:`seed` and :func:`route_one`
inside Django.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import string
from dataclasses import dataclass
from typing import Any


@dataclass
class Seeded:
    coordinator_id: int
    liaison_id: int
    organisation_ids: list[int]
    contacts: int


def _codes() -> list[str]:
    pairs = ("".join(p) for p in itertools.product(string.ascii_uppercase, repeat=2))
    return [c for c in pairs if c not in ("EE",)]


def seed(*, orgs: int, contacts: int, webhook: str, mail_domain: str = "example") -> Seeded:
    """``orgs`` organisations (one per nation) with ``contacts`` contacts each, every contact
    with an e-mail address and a webhook ``{webhook}?c=<org>-<n>``; a requester and the
    secretariat."""
    from vcisc.federation import services as fs

    fs.create_nation(None, code="EE", name="Estonia", kind="member", eu_member=True)
    requester = fs.create_organisation(None, name="CERT-EE", kind="cert", nation_code="EE")
    secretariat = fs.create_organisation(
        None, name="VCISC Secretariat", kind="secretariat", nation_code=None
    )
    coordinator = fs.create_user(
        None,
        email="coordinator@secretariat.example",
        organisation_id=secretariat.pk,
        roles=["coordinator"],
    )
    liaison = fs.create_user(
        None, email="liaison@cert.ee.example", organisation_id=requester.pk, roles=["liaison"]
    )
    ids = []
    for i, code in zip(range(orgs), _codes(), strict=False):
        fs.create_nation(None, code=code, name=f"Nation {code}", kind="member", eu_member=True)
        org = fs.create_organisation(None, name=f"CERT-{code}", kind="cert", nation_code=code)
        fs.create_capability(
            None,
            organisation_id=org.pk,
            service_type="incident-response",
            depth="expert",
            sectors=[],
            languages=["en"],
            max_concurrent=50,
        )
        for n in range(contacts):
            fs.create_contact(
                None,
                organisation_id=org.pk,
                name=f"Desk {n}",
                email=f"desk{n}@cert-{code.lower()}.{mail_domain}",
                webhook_url=f"{webhook}?c={i}-{n}",
                languages=["en"],
                time_zone="UTC",
                on_call="24/7",
            )
        ids.append(org.pk)
    return Seeded(coordinator.pk, liaison.pk, ids, orgs * contacts)


def grid_request(title: str, tlp: str) -> dict[str, Any]:
    """The fields of the request the notification tests and the benchmarks file."""
    return {
        "title": title,
        "affected_entity": "Grid operator",
        "description": "Operator workstations encrypted.",
        "rsit_class": "malicious-code",
        "rsit_type": "infected-system",
        "sector": "energy/electricity",
        "severity": 4,
        "services_needed": ["incident-response"],
        "urgency": "immediate",
        "tlp": tlp,
        "languages": ["en"],
    }


def route_one(
    seeded: Seeded, *, title: str = "Ransomware on grid SCADA", tlp: str = "green"
) -> str:
    """File, triage and route one request to every seeded organisation; return its id. The
    routing transaction has committed when this returns."""
    from vcisc.assistance import services
    from vcisc.federation.models import User

    liaison = User.objects.get(pk=seeded.liaison_id)
    coordinator = User.objects.get(pk=seeded.coordinator_id)
    rfa = services.create_rfa(liaison, grid_request(title, tlp), submit=True)
    services.transition(coordinator, rfa.pk, "start-triage")
    services.route(coordinator, rfa.pk, seeded.organisation_ids)
    return str(rfa.pk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=10)
    parser.add_argument("--contacts", type=int, default=2)
    parser.add_argument("--webhook", required=True)
    parser.add_argument("--requests", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vcisc.settings")
    import django

    django.setup()
    seeded = seed(orgs=args.orgs, contacts=args.contacts, webhook=args.webhook)
    rfas: list[Any] = [route_one(seeded, title=f"Request {n}") for n in range(args.requests)]
    print(json.dumps({"rfas": rfas, "contacts": seeded.contacts}))


if __name__ == "__main__":
    main()
