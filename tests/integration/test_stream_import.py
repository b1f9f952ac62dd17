"""A STIX bundle streamed from a file into an engagement, in batches, in one transaction
(issue 5: a large bundle is streamed, never held whole; nothing half-written)."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Federation, accepted_engagement
from tests.integration.test_cli import run
from vcisc.audit.models import AuditRecord
from vcisc.cli import main
from vcisc.engagements.indicators import ImportRejected, import_stix_stream
from vcisc.engagements.models import Indicator
from vcisc.sharing.reports import ImportMode

pytestmark = pytest.mark.django_db

AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"


def _indicator(value: str, pattern: str | None = None) -> dict[str, Any]:
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-11-30T10:00:00.000Z",
        "modified": "2026-11-30T10:00:00.000Z",
        "pattern": pattern or f"[domain-name:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": "2026-11-30T10:00:00Z",
        "object_marking_refs": [AMBER],
    }


def _bundle(*objects: dict[str, Any]) -> bytes:
    body = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": list(objects)}
    return json.dumps(body).encode()


def _values(eng: str) -> list[str]:
    return sorted(Indicator.objects.filter(engagement_id=eng).values_list("value", flat=True))


def test_batches_are_one_transaction_and_an_invalid_object_rolls_them_all_back(
    federation: Federation,
) -> None:
    fed = federation
    eng = accepted_engagement(fed, "amber")
    de = fed.users["de"]
    good = [_indicator(f"s{n}.evil.example") for n in range(5)]
    broken = _indicator("x", pattern="[domain-name:value = ")  # a pattern that does not parse
    source = io.BytesIO(_bundle(*good, broken, _indicator("after.example")))
    with pytest.raises(ImportRejected) as caught:
        import_stix_stream(de, uuid.UUID(eng), source, batch=2)
    assert "pattern" in caught.value.message
    assert _values(eng) == []  # the two batches written before the invalid object are gone
    assert not AuditRecord.objects.filter(action="indicator.import").exists()
    # Skipping: every valid object is stored, across batches, each value once.
    twice = _indicator("s0.evil.example")
    source = io.BytesIO(_bundle(*good, broken, twice, _indicator("after.example")))
    seen: list[int] = []
    result, report = import_stix_stream(
        de, uuid.UUID(eng), source, mode=ImportMode.SKIP_INVALID, batch=2, progress=seen.append
    )
    assert (result.count, result.duplicates, len(report.skipped)) == (6, 1, 1)
    assert _values(eng) == sorted([f"s{n}.evil.example" for n in range(5)] + ["after.example"])
    assert seen and seen == sorted(seen)
    (record,) = AuditRecord.objects.filter(action="indicator.import")
    assert record.after["created"] == 6


def test_the_cli_streams_a_stix_file(federation: Federation, capsys: Any, tmp_path: Path) -> None:
    eng = accepted_engagement(federation, "amber")
    path = tmp_path / "bundle.json"
    path.write_bytes(_bundle(*(_indicator(f"f{n}.evil.example") for n in range(3))))
    argv = ["engagement", "import", eng, "--as", "liaison@cert-bund.de.example"]
    code, out, err = run(capsys, *argv, "--format", "stix", "--file", str(path), "--quiet")
    assert code == 0, err
    assert "3 indicator(s) added" in out and len(_values(eng)) == 3
    path.write_bytes(b'{"type": "bundle", "objects": [')
    code, out, err = run(capsys, *argv, "--format", "stix", "--file", str(path), "--quiet")
    assert code == 2 and "rejected, nothing stored" in err
    with pytest.raises(SystemExit, match="is not a file"):
        main([*argv, "--format", "stix", "--file", str(tmp_path / "nope")])
