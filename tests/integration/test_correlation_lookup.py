"""The correlation look-up (issue 5): the 64-bit digest index finds candidates, the full SHA-256
decides, so a 64-bit collision never correlates; batches of any size; SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from tests.conftest import Federation, offer_body, rfa_body
from vcisc.engagements import lookup
from vcisc.engagements.indicators import (
    IndicatorInput,
    add_indicators,
    digest64_of,
    digest_of,
    indicators_elsewhere,
)
from vcisc.engagements.models import Correlation, Indicator
from vcisc.sharing.observables import normalise

pytestmark = pytest.mark.django_db


def _engagement(fed: Federation, helper: str = "de") -> Any:
    ee, coord = fed.api("ee"), fed.api("coordinator")
    rid = ee.post("/requests", rfa_body(tlp="green", submit=True)).json()["id"]
    coord.post(f"/requests/{rid}/transitions", {"action": "start-triage"})
    coord.post(f"/requests/{rid}/routes", {"organisations": [fed.orgs[helper].pk]})
    offer = fed.api(helper).post(f"/requests/{rid}/offers", offer_body()).json()
    assert ee.post(f"/offers/{offer['id']}/accept").status_code == 200
    return ee.get(f"/requests/{rid}").json()["engagement_id"]


def _add(fed: Federation, eng: Any, *domains: str) -> list[Indicator]:
    inputs = [IndicatorInput(observable=normalise("domain", d)) for d in domains]
    return add_indicators(fed.users["de"], eng, inputs).created


def _probe(*domains: str) -> dict[str, int]:
    digests = [digest_of(normalise("domain", d)) for d in domains]
    return {d: digest64_of(d) for d in digests}


def test_digest64_is_the_signed_first_eight_bytes() -> None:
    digest = hashlib.sha256(b"dns:evil.example").hexdigest()
    value = digest64_of(digest)
    assert value == int.from_bytes(bytes.fromhex(digest[:16]), "big", signed=True)
    assert digest64_of("ff" * 32) == -1 and digest64_of("7f" + "ff" * 31) == 2**63 - 1
    assert digest64_of("80" + "00" * 31) == -(2**63)


def test_new_indicators_store_their_digest64(federation: Federation) -> None:
    eng = _engagement(federation)
    (created,) = _add(federation, eng, "c2.evil.example")
    stored = Indicator.objects.get(pk=created.pk)
    assert stored.correlation_digest64 == digest64_of(stored.correlation_digest)


def test_a_64_bit_collision_never_correlates(federation: Federation) -> None:
    fed = federation
    first, second = _engagement(fed), _engagement(fed, helper="fr")
    real, decoy = _add(fed, first, "shared.example", "decoy.example")
    # The decoy now shares its 64-bit key with another value, but not its full digest.
    other = digest_of(normalise("domain", "other.example"))
    Indicator.objects.filter(pk=decoy.pk).update(correlation_digest64=digest64_of(other))
    assert indicators_elsewhere(second, _probe("other.example")) == []
    result = add_indicators(
        fed.users["fr"],
        second,
        [IndicatorInput(observable=normalise("domain", d)) for d in ("other.example",)],
    )
    assert result.correlations == 0 and Correlation.objects.count() == 0
    # The genuine match is still found, and only it.
    held = indicators_elsewhere(second, _probe("shared.example", "other.example"))
    assert [(h.indicator_id, h.correlation_key) for h in held] == [(real.pk, "dns:shared.example")]


def test_the_own_engagement_is_not_a_correlation(federation: Federation) -> None:
    eng = _engagement(federation)
    _add(federation, eng, "a.example")
    assert indicators_elsewhere(eng, _probe("a.example")) == []


def test_look_ups_larger_than_a_batch(federation: Federation, monkeypatch: Any) -> None:
    fed = federation
    first, second = _engagement(fed), _engagement(fed, helper="fr")
    names = [f"h{n}.example" for n in range(7)]
    stored = _add(fed, first, *names)
    monkeypatch.setattr(lookup, "LOOKUP_BATCH", 2)
    held = indicators_elsewhere(second, _probe(*names, "missing.example"))
    assert sorted(h.indicator_id for h in held) == sorted(i.pk for i in stored)
    result = add_indicators(
        fed.users["fr"], second, [IndicatorInput(observable=normalise("domain", n)) for n in names]
    )
    assert result.correlations == 7 == Correlation.objects.count()
    pairs = set(Correlation.objects.values_list("first_id", "second__correlation_key"))
    assert pairs == {(i.pk, i.correlation_key) for i in stored}
