"""Concurrent writers on PostgreSQL: reference numbers stay unique and the audit chain stays one
chain, because both are serialised (vcisc.dbutil.serialize). SQLite serialises every writer
already (IMMEDIATE transactions), so this runs on PostgreSQL only."""

from __future__ import annotations

import os
import threading

import pytest
from django.db import connection

from vcisc.assistance import services
from vcisc.assistance.models import RequestForAssistance
from vcisc.audit.chain import verify
from vcisc.federation import services as fs
from vcisc.federation.models import User

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("VCISC_DATABASE_URL", "").startswith("postgres"),
        reason="PostgreSQL only (SQLite has one writer at a time by construction)",
    ),
    pytest.mark.django_db(transaction=True),
]

BODY = {
    "title": "Concurrent filing",
    "affected_entity": "Grid operator",
    "description": "Filed by many liaison officers at once.",
    "rsit_class": "availability",
    "rsit_type": "ddos",
    "sector": "energy",
    "severity": 3,
    "services_needed": ["incident-response"],
    "urgency": "hours",
    "tlp": "green",
}


def test_parallel_filings_get_unique_references_and_one_audit_chain() -> None:
    fs.create_nation(None, code="EE", name="Estonia", kind="member", eu_member=True)
    org = fs.create_organisation(None, name="CERT-EE", kind="cert", nation_code="EE")
    users = [
        fs.create_user(
            None, email=f"l{i}@cert.ee.example", organisation_id=org.pk, roles=["liaison"]
        )
        for i in range(4)
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(users))

    def file_many(user: User) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                services.create_rfa(user, BODY, submit=True)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=file_many, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    refs = list(RequestForAssistance.objects.values_list("reference", flat=True))
    assert len(refs) == 20 and len(set(refs)) == 20
    count, _, problem = verify()
    assert problem is None and count > 20
