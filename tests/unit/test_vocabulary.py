"""The Literal wire types used by the API schemas equal the vocabularies they mirror."""

from typing import get_args

from vcisc.assistance.lifecycle import RfaState, RfaStateName
from vcisc.federation.models import Role
from vcisc.tlp import Tlp, TlpName
from vcisc.vocabulary import (
    RSIT,
    SECTORS,
    Depth,
    DepthName,
    EuImpact,
    EuImpactName,
    RoleName,
    ServiceName,
    ServiceType,
    Urgency,
    UrgencyName,
    sector_choices,
    top_sector,
)


def test_literals_mirror_the_enums() -> None:
    assert list(get_args(ServiceName)) == ServiceType.values
    assert list(get_args(DepthName)) == Depth.values
    assert list(get_args(UrgencyName)) == Urgency.values
    assert list(get_args(EuImpactName)) == EuImpact.values
    assert list(get_args(RoleName)) == Role.values
    assert list(get_args(TlpName)) == [t.value for t in Tlp]
    assert list(get_args(RfaStateName)) == [s.value for s in RfaState]


def test_sectors_include_subsectors_and_allied_additions() -> None:
    values = sector_choices()
    assert "energy/electricity" in values and "transport/rail" in values
    assert {"defence", "government"} <= set(values)
    assert len(SECTORS) == 20
    assert top_sector("energy/electricity") == "energy"


def test_rsit_classes() -> None:
    assert len(RSIT) == 11
    assert "ddos" in RSIT["availability"] and "phishing" in RSIT["fraud"]
