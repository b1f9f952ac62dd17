"""The `vcisc` command: what an operator types, and the request story acting as users."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Federation, accepted_engagement, rfa_body
from vcisc.cli import main
from vcisc.federation.models import ApiToken, User

pytestmark = pytest.mark.django_db


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code) if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def test_user_and_token_create(federation: Federation, capsys: Any, monkeypatch: Any) -> None:
    code, out, _ = run(
        capsys,
        "user",
        "create",
        "--email",
        "Duty@CERT.ee.example",
        "--org",
        "CERT-EE",
        "--roles",
        "liaison,analyst",
    )
    assert code == 0 and "created user duty@cert.ee.example" in out
    assert "vcisc token create --user duty@cert.ee.example" in out
    user = User.objects.get(email="duty@cert.ee.example")
    assert user.roles == ["liaison", "analyst"] and not user.has_usable_password()

    code, out, _ = run(capsys, "token", "create", "--user", "duty@cert.ee.example", "--days", "7")
    assert code == 0
    token = next(line for line in out.splitlines() if line.startswith("vcisc_"))
    row = ApiToken.objects.get(user=user)
    assert token.split("_")[1] == row.key_id and token.split("_", 2)[2] not in row.digest
    assert "Authorization: Bearer" in out

    monkeypatch.setattr("sys.stdin", io.StringIO("a sturdy passphrase here\n"))
    code, _, _ = run(
        capsys,
        "user",
        "create",
        "--email",
        "pw@cert.ee.example",
        "--org",
        "CERT-EE",
        "--roles",
        "analyst",
        "--password-stdin",
    )
    assert code == 0 and User.objects.get(email="pw@cert.ee.example").has_usable_password()

    code, out, _ = run(capsys, "token", "revoke", row.key_id)
    assert code == 0 and ApiToken.objects.get(pk=row.pk).revoked_at is not None


def test_errors_are_reported_plainly(federation: Federation, capsys: Any) -> None:
    code, _, err = run(
        capsys, "user", "create", "--email", "x@y.example", "--org", "CERT-EE", "--roles", "wizard"
    )
    assert code == 2 and "roles: unknown value(s) 'wizard'" in err
    code, _, err = run(capsys, "token", "create", "--user", "nobody@nowhere.example")
    assert code == 2 and "no user" in err


def test_directory_commands(federation: Federation, capsys: Any) -> None:
    assert run(capsys, "nation", "create", "IS", "--name", "Iceland", "--kind", "member")[0] == 0
    assert (
        run(capsys, "org", "create", "--name", "CERT-IS", "--kind", "cert", "--nation", "IS")[0]
        == 0
    )
    code, out, _ = run(
        capsys,
        "capability",
        "create",
        "--org",
        "CERT-IS",
        "--service",
        "incident-response",
        "--sectors",
        "energy,health",
        "--languages",
        "is,en",
    )
    assert code == 0 and "created capability" in out
    cap_id = int(out.split()[2].rstrip(":"))
    code, out, _ = run(
        capsys,
        "contact",
        "create",
        "--org",
        "CERT-IS",
        "--name",
        "Duty desk",
        "--email",
        "duty@cert.is.example",
        "--on-call",
        "mon-fri 08:00-16:00",
        "--time-zone",
        "Atlantic/Reykjavik",
    )
    assert code == 0
    code, out, _ = run(
        capsys,
        "capability",
        "update",
        str(cap_id),
        "--changes",
        '{"max_concurrent": 4, "depth": "expert"}',
    )
    assert code == 0 and "updated capability" in out
    code, _, err = run(
        capsys, "capability", "update", str(cap_id), "--changes", '{"depth": "godlike"}'
    )
    assert code == 2 and "depth" in err
    from vcisc.federation.models import Capability

    cap = Capability.objects.get(pk=cap_id)
    assert (cap.max_concurrent, cap.depth) == (4, "expert")
    code, out, _ = run(capsys, "org", "list")
    assert "CERT-IS" in out
    assert run(capsys, "nation", "update", "IS", "--kind", "partner")[0] == 0
    assert run(capsys, "nation", "deactivate", "IS")[0] == 0
    code, out, _ = run(capsys, "nation", "list")
    assert "Iceland" in out and "deactivated" in out


def test_the_story_by_cli(federation: Federation, capsys: Any, tmp_path: Path) -> None:
    body = tmp_path / "rfa.json"
    body.write_text(json.dumps(rfa_body(tlp="red")))
    code, out, _ = run(
        capsys,
        "request",
        "create",
        "--as",
        "liaison@cert.ee.example",
        "--json",
        str(body),
        "--submit",
    )
    assert code == 0
    rid = json.loads(out)["id"]
    coord = "coordinator@secretariat.example"
    assert (
        run(capsys, "request", "transition", str(rid), "--as", coord, "--action", "start-triage")[0]
        == 0
    )
    code, out, _ = run(capsys, "request", "match", str(rid), "--as", coord, "--top", "3")
    assert code == 0 and "CERT-Bund" in out and "services" in out
    code, out, _ = run(capsys, "request", "route", str(rid), "--as", coord, "--orgs", "CERT-Bund")
    assert code == 0 and "routed RFA-" in out and "1 notification(s)" in out
    # The routed organisation lists it with its content withheld (TLP:RED).
    code, out, _ = run(capsys, "request", "list", "--as", "liaison@cert-bund.de.example")
    assert "(content withheld)" in out and "Ransomware" not in out
    # An uninvolved nation lists nothing and gets "not found".
    code, out, _ = run(capsys, "request", "list", "--as", "liaison@cisa.us.example")
    assert out == ""
    code, _, err = run(capsys, "request", "show", str(rid), "--as", "liaison@cisa.us.example")
    assert code == 2 and "not found" in err
    # A transition out of order names the allowed ones.
    code, _, err = run(
        capsys,
        "request",
        "transition",
        str(rid),
        "--as",
        "liaison@cert.ee.example",
        "--action",
        "close",
    )
    assert code == 2 and "allowed: route, accept-offer, expire, withdraw" in err


def test_indicators_by_cli_one_and_in_bulk(
    federation: Federation, capsys: Any, tmp_path: Path
) -> None:
    fed = federation
    eng = accepted_engagement(fed, "amber")
    de = "liaison@cert-bund.de.example"
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"value": "hxxp://gate.evil[.]example/x", "tlp": "green"}))
    code, out, _ = run(capsys, "engagement", "indicator", eng, "--as", de, "--json", str(one))
    assert code == 0 and "indicator" in out
    rows = tmp_path / "iocs.csv"
    rows.write_text("value,tlp\n198.51.100.5,amber\nnot an ip at all,amber\n")
    code, out, err = run(
        capsys, "engagement", "import", eng, "--as", de, "--format", "csv", "--file", str(rows)
    )
    assert code != 0 and "rejected, nothing stored" in err and '"rejected": true' in out
    code, out, err = run(
        capsys,
        "engagement",
        "import",
        eng,
        "--as",
        de,
        "--format",
        "csv",
        "--file",
        str(rows),
        "--skip-invalid",
    )
    assert code == 0 and "1 indicator(s) added" in out and "1 invalid object(s) skipped" in out
    assert "row 3" in err
    values = {i["value"] for i in fed.api("ee").get(f"/engagements/{eng}/indicators").json()}
    assert values == {"http://gate.evil.example/x", "198.51.100.5"}
    code, _, err = run(
        capsys,
        "engagement",
        "import",
        eng,
        "--as",
        "liaison@cisa.us.example",
        "--format",
        "csv",
        "--file",
        str(rows),
    )
    assert code == 2 and "not found" in err
