"""Ids and references of requests cannot be counted or guessed (issue 4, part 3)."""

from __future__ import annotations

import re
from itertools import pairwise
from uuid import UUID, uuid4

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from tests.conftest import Federation, rfa_body

pytestmark = pytest.mark.django_db

REFERENCE = re.compile(r"^RFA-\d{4}-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{6}$")


def test_requests_and_their_offers_have_random_ids_and_references(federation: Federation) -> None:
    api = federation.api("ee")
    filed = [api.post("/requests", rfa_body(submit=True)).json() for _ in range(3)]
    ids = [UUID(r["id"]) for r in filed]
    assert all(i.version == 7 for i in ids)
    # Not counted: the random parts of ids filed one after the other are no neighbours.
    random_bits = [i.int & (2**62 - 1) for i in ids]
    assert all(abs(a - b) > 2**32 for a, b in pairwise(random_bits))
    references = [r["reference"] for r in filed]
    assert all(REFERENCE.match(ref) for ref in references), references
    assert len(set(references)) == 3


def test_an_id_that_is_not_a_uuid_is_a_clear_422_and_a_missing_one_a_404(
    federation: Federation,
) -> None:
    api = federation.api("ee")
    bad = api.get("/requests/42")
    assert bad.status_code == 422
    assert "uuid" in bad.text.lower()
    missing = api.get(f"/requests/{uuid4()}")
    assert missing.status_code == 404
    assert api.get(f"/offers/{uuid4()}").status_code == 404
    assert api.get(f"/engagements/{uuid4()}").status_code == 404


def test_the_cli_names_a_request_by_reference_among_those_the_user_sees(
    federation: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    from vcisc.cli import main

    rfa = federation.api("ee").post("/requests", rfa_body(submit=True)).json()
    main(["request", "show", rfa["reference"], "--as", federation.users["ee"].email])
    assert rfa["id"] in capsys.readouterr().out
    with pytest.raises(SystemExit) as stopped:
        main(["request", "show", rfa["reference"], "--as", federation.users["us"].email])
    assert stopped.value.code == 2
    assert f"request {rfa['reference']} not found" in capsys.readouterr().err


def test_migrate_refuses_a_database_of_the_integer_schema(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A pre-UUID database applied migrations this version no longer ships: migrating it would
    skip the new schema as "already applied", so ``vcisc migrate`` stops and says why."""
    from vcisc.cli import main

    recorder = MigrationRecorder(connection)
    recorder.record_applied("assistance", "0003_timeline_detail")
    with pytest.raises(SystemExit) as stopped:
        main(["migrate"])
    message = str(stopped.value.code)
    assert "pre-release schema" in message and "assistance.0003_timeline_detail" in message
    recorder.record_unapplied("assistance", "0003_timeline_detail")
    main(["migrate"])
    assert "database is up to date" in capsys.readouterr().out
