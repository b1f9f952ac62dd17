"""The audit trail: one record per change, in the same transaction, and a chain that
`vcisc audit verify` proves intact or breaks at the first altered, removed or swapped record."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from vcisc.audit.chain import verify
from vcisc.audit.models import AppendOnlyError, AuditRecord
from vcisc.cli import main as cli
from vcisc.errors import Invalid
from vcisc.federation import services as fs
from vcisc.federation.models import Nation

pytestmark = pytest.mark.django_db


def _make_records(n: int) -> None:
    for i in range(n):
        fs.create_nation(None, code=f"Q{chr(65 + i)}", name=f"Testland {i}", kind="member")


def _drop_guards() -> None:
    """An attacker with database rights removes the append-only triggers first."""
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("ALTER TABLE audit_auditrecord DISABLE TRIGGER USER")
        else:
            cur.execute("DROP TRIGGER IF EXISTS audit_no_update")
            cur.execute("DROP TRIGGER IF EXISTS audit_no_delete")


def _verify_cli(capsys: Any) -> tuple[int, str]:
    try:
        cli(["audit", "verify"])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().out


def test_every_change_is_recorded_with_before_and_after() -> None:
    nation = fs.create_nation(None, code="QA", name="Testland", kind="member")
    fs.update(None, nation, {"kind": "partner"})
    fs.deactivate(None, Nation.objects.get(pk=nation.pk))
    records = list(AuditRecord.objects.filter(object_type="federation.nation"))
    assert [r.action for r in records] == ["create", "update", "deactivate"]
    assert records[1].before["kind"] == "member" and records[1].after["kind"] == "partner"
    assert records[2].after["active"] is False


def test_a_failed_change_leaves_no_record() -> None:
    before = AuditRecord.objects.count()
    with pytest.raises(Invalid):
        fs.create_nation(None, code="qq", name="Bad code", kind="member")
    with pytest.raises(Invalid):
        fs.create_nation(None, code="QQ", name="Bad kind", kind="emperor")
    assert AuditRecord.objects.count() == before
    assert not Nation.objects.filter(name__startswith="Bad").exists()


def test_secrets_never_enter_the_trail() -> None:
    org = fs.create_organisation(None, name="CERT-Q", kind="secretariat", nation_code=None)
    user = fs.create_user(
        None,
        email="a@q.example",
        organisation_id=org.pk,
        roles=["admin"],
        password="correct horse battery staple",
    )
    _, token = fs.create_token(None, user, days=1)
    blob = str(list(AuditRecord.objects.values("before", "after")))
    assert "argon2" not in blob and token.split("_", 2)[2] not in blob and "digest" not in blob


def test_records_cannot_be_changed_through_the_model_or_the_database() -> None:
    _make_records(1)
    rec = AuditRecord.objects.get()
    with pytest.raises(AppendOnlyError):
        rec.save()
    with pytest.raises(AppendOnlyError):
        rec.delete()
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        AuditRecord.objects.filter(pk=rec.pk).update(actor="mallory")
    with pytest.raises(Exception, match="append-only"), transaction.atomic():
        AuditRecord.objects.filter(pk=rec.pk).delete()


def test_verify_passes_on_an_intact_chain(capsys: Any) -> None:
    _make_records(5)
    count, head, problem = verify()
    assert (count, problem) == (5, None)
    assert head == AuditRecord.objects.order_by("-seq").first().digest  # type: ignore[union-attr]
    code, out = _verify_cli(capsys)
    assert code == 0 and "intact: 5 records" in out


def test_verify_catches_an_edited_record(capsys: Any) -> None:
    _make_records(5)
    _drop_guards()
    AuditRecord.objects.filter(seq=3).update(actor="mallory@example")
    code, out = _verify_cli(capsys)
    assert code == 1
    assert "record #3 altered" in out


def test_verify_catches_a_deleted_record(capsys: Any) -> None:
    _make_records(5)
    _drop_guards()
    AuditRecord.objects.filter(seq=2).delete()
    code, out = _verify_cli(capsys)
    assert code == 1 and "record #2 removed" in out


def test_verify_catches_a_deleted_and_renumbered_record(capsys: Any) -> None:
    _make_records(5)
    _drop_guards()
    AuditRecord.objects.filter(seq=2).delete()
    for seq in (3, 4, 5):  # close the gap so the sequence looks continuous
        AuditRecord.objects.filter(seq=seq).update(seq=seq - 1)
    code, out = _verify_cli(capsys)
    assert code == 1 and "record #2 reordered" in out


def test_verify_catches_two_swapped_records(capsys: Any) -> None:
    _make_records(5)
    _drop_guards()
    AuditRecord.objects.filter(seq=2).update(seq=-2)
    AuditRecord.objects.filter(seq=4).update(seq=2)
    AuditRecord.objects.filter(seq=-2).update(seq=4)
    code, out = _verify_cli(capsys)
    assert code == 1 and "record #2 reordered" in out


def test_verify_with_expected_head_catches_truncation(capsys: Any) -> None:
    _make_records(4)
    _, head, _ = verify()
    _drop_guards()
    AuditRecord.objects.filter(seq=4).delete()
    assert verify()[2] is None  # truncation is invisible from inside the chain …
    with pytest.raises(SystemExit) as exc:
        cli(["audit", "verify", "--expect-head", head])
    assert exc.value.code == 1  # … but not against a head kept elsewhere
    assert "not the expected" in capsys.readouterr().out


def test_migrations_match_the_models() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
