"""A realistic demo federation, loaded through the service layer so that every change is audited.

:func:`load_demo` creates the 40 nations of the federation (the 32 NATO members, seven partners,
one observer), the secretariat, each nation's CERT and, for the larger nations, a cyber command,
a law-enforcement unit and sometimes a trusted industry partner, with their points of contact,
capabilities and users for every role; then it plays a dozen requests for assistance to different
stages of their lifecycle (DOMAIN.md §3), acting as the right users at back-dated times so that
deadlines, clocks and response-time metrics look like those of a federation in use.

Loading is idempotent: every directory entry is looked up by its natural key (nation code,
organisation name, contact name within its organisation, service type within its organisation,
user e-mail) and every request by its title within the requesting organisation, and only what is
missing is created. A second run therefore writes nothing, not even an audit record. Each step runs
in its own transaction, so an interrupted load resumes where it stopped.

The catalogue is generated from a fixed seed (``random.Random``), so every load of the same code
produces the same federation.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from vcisc.assistance import services as assistance
from vcisc.assistance.models import Offer, RequestForAssistance
from vcisc.engagements import indicators
from vcisc.engagements import services as engagements
from vcisc.engagements.models import Engagement
from vcisc.errors import Invalid
from vcisc.federation import services as federation
from vcisc.federation.models import (
    Capability,
    Nation,
    NationKind,
    Organisation,
    OrgKind,
    PointOfContact,
    Role,
    User,
)
from vcisc.matching import services as matching
from vcisc.matching.scoring import Candidate
from vcisc.vocabulary import ICS_PROTOCOLS, Depth, ServiceType

__all__ = ["NATIONS", "SECRETARIAT_NAME", "DemoError", "DemoSummary", "cert_name", "load_demo"]

SECRETARIAT_NAME = "VCISC Secretariat"
_SECRETARIAT_DOMAIN = "secretariat.example"
_SEED = 20240704  # NATO's 75th-anniversary summit year; any constant will do.

MIN = timedelta(minutes=1)
H = timedelta(hours=1)
D = timedelta(days=1)


class DemoError(RuntimeError):
    """The demo cannot be loaded into this database (e.g. a needed entry was deactivated)."""


@dataclass
class DemoSummary:
    """How many entries of the demo exist after loading (found or created), and whether this run
    created anything at all (``False`` when the demo was already complete)."""

    nations: int = 0
    organisations: int = 0
    contacts: int = 0
    capabilities: int = 0
    users: int = 0
    requests: int = 0
    created: bool = False


# --- the nations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _NationSpec:
    code: str
    name: str
    kind: str
    eu: bool
    languages: tuple[str, ...]  # national languages (ISO 639-1); "en" is added to every list
    time_zone: str
    cert: str  # short name of the national CERT/CSIRT
    tier: int  # 1 large, 2 medium, 3 small: how many bodies and how deep their capabilities
    ics: bool = False  # a national ICS/OT team of note
    cyber_command: tuple[str, str] | None = None  # (name, short name)
    law_enforcement: tuple[str, str] | None = None
    industry: tuple[str, str, str] | None = None  # (name, short name, domain label)


_M, _P, _O = NationKind.MEMBER.value, NationKind.PARTNER.value, NationKind.OBSERVER.value

NATIONS: tuple[_NationSpec, ...] = (
    # The 32 NATO members.
    _NationSpec("AL", "Albania", _M, False, ("sq",), "Europe/Tirane", "AKSK-CSIRT", 3),
    _NationSpec(
        "BE",
        "Belgium",
        _M,
        True,
        ("nl", "fr", "de"),
        "Europe/Brussels",
        "CERT.be",
        2,
        law_enforcement=("Federal Computer Crime Unit (Belgium)", "FCCU"),
    ),
    _NationSpec("BG", "Bulgaria", _M, True, ("bg",), "Europe/Sofia", "CERT Bulgaria", 3),
    _NationSpec(
        "CA",
        "Canada",
        _M,
        False,
        ("fr",),
        "America/Toronto",
        "CCCS",
        1,
        ics=True,
        cyber_command=("Canadian Forces Cyber Command", "CFCC"),
        law_enforcement=("RCMP National Cybercrime Coordination Centre", "NC3"),
    ),
    _NationSpec("HR", "Croatia", _M, True, ("hr",), "Europe/Zagreb", "CERT.hr", 3),
    _NationSpec(
        "CZ",
        "Czechia",
        _M,
        True,
        ("cs",),
        "Europe/Prague",
        "GovCERT.CZ",
        2,
        ics=True,
        cyber_command=("Czech Cyber Forces Command", "CZ CYBERCOM"),
    ),
    _NationSpec("DK", "Denmark", _M, True, ("da",), "Europe/Copenhagen", "CFCS", 2),
    _NationSpec(
        "EE",
        "Estonia",
        _M,
        True,
        ("et",),
        "Europe/Tallinn",
        "CERT-EE",
        2,
        ics=True,
        cyber_command=("Estonian Defence Forces Cyber Command", "EDF CYBERCOM"),
    ),
    _NationSpec(
        "FI",
        "Finland",
        _M,
        True,
        ("fi", "sv"),
        "Europe/Helsinki",
        "NCSC-FI",
        2,
        ics=True,
        industry=("Pohjola ICS Response Oy", "Pohjola ICS", "pohjola-ics"),
    ),
    _NationSpec(
        "FR",
        "France",
        _M,
        True,
        ("fr",),
        "Europe/Paris",
        "CERT-FR",
        1,
        ics=True,
        cyber_command=("Commandement de la cyberdefense", "COMCYBER"),
        law_enforcement=("Gendarmerie nationale ComCyberGend", "ComCyberGend"),
    ),
    _NationSpec(
        "DE",
        "Germany",
        _M,
        True,
        ("de",),
        "Europe/Berlin",
        "CERT-Bund",
        1,
        ics=True,
        cyber_command=("Kommando Cyber- und Informationsraum", "KdoCIR"),
        law_enforcement=("Bundeskriminalamt Cybercrime Division", "BKA Cybercrime"),
        industry=("Rheinland OT-Sicherheit GmbH", "Rheinland OT", "rheinland-ot"),
    ),
    _NationSpec("GR", "Greece", _M, True, ("el",), "Europe/Athens", "GR-CSIRT", 2),
    _NationSpec("HU", "Hungary", _M, True, ("hu",), "Europe/Budapest", "GovCERT-Hungary", 2),
    _NationSpec("IS", "Iceland", _M, False, ("is",), "Atlantic/Reykjavik", "CERT-IS", 3),
    _NationSpec(
        "IT",
        "Italy",
        _M,
        True,
        ("it",),
        "Europe/Rome",
        "CSIRT Italia",
        1,
        ics=True,
        cyber_command=("Comando per le Operazioni in Rete", "COR"),
        law_enforcement=("Polizia Postale CNAIPIC", "CNAIPIC"),
    ),
    _NationSpec("LV", "Latvia", _M, True, ("lv",), "Europe/Riga", "CERT.LV", 3),
    _NationSpec("LT", "Lithuania", _M, True, ("lt",), "Europe/Vilnius", "NCSC-LT", 2, ics=True),
    _NationSpec(
        "LU", "Luxembourg", _M, True, ("lb", "fr", "de"), "Europe/Luxembourg", "GOVCERT.LU", 3
    ),
    _NationSpec("ME", "Montenegro", _M, False, ("sr",), "Europe/Podgorica", "CIRT.ME", 3),
    _NationSpec(
        "NL",
        "Netherlands",
        _M,
        True,
        ("nl",),
        "Europe/Amsterdam",
        "NCSC-NL",
        1,
        ics=True,
        cyber_command=("Defensie Cyber Commando", "DCC"),
        law_enforcement=("Team High Tech Crime (Dutch National Police)", "THTC"),
        industry=("Delta OT Security B.V.", "Delta OT", "delta-ot"),
    ),
    _NationSpec("MK", "North Macedonia", _M, False, ("mk", "sq"), "Europe/Skopje", "MKD-CIRT", 3),
    _NationSpec(
        "NO",
        "Norway",
        _M,
        False,
        ("no",),
        "Europe/Oslo",
        "NCSC-NO",
        2,
        ics=True,
        cyber_command=("Norwegian Cyber Defence Force", "Cyberforsvaret"),
    ),
    _NationSpec(
        "PL",
        "Poland",
        _M,
        True,
        ("pl",),
        "Europe/Warsaw",
        "CERT Polska",
        1,
        ics=True,
        cyber_command=("Cyberspace Defence Forces Command (Poland)", "DKWOC"),
        law_enforcement=("Central Cybercrime Bureau (Poland)", "CBZC"),
        industry=("Wisla Grid Security sp. z o.o.", "Wisla Grid", "wisla-grid"),
    ),
    _NationSpec("PT", "Portugal", _M, True, ("pt",), "Europe/Lisbon", "CERT.PT", 2),
    _NationSpec(
        "RO",
        "Romania",
        _M,
        True,
        ("ro",),
        "Europe/Bucharest",
        "CERT-RO",
        2,
        cyber_command=("Romanian Cyber Defence Command", "CApC"),
    ),
    _NationSpec("SK", "Slovakia", _M, True, ("sk",), "Europe/Bratislava", "SK-CERT", 3),
    _NationSpec("SI", "Slovenia", _M, True, ("sl",), "Europe/Ljubljana", "SI-CERT", 3),
    _NationSpec(
        "ES",
        "Spain",
        _M,
        True,
        ("es",),
        "Europe/Madrid",
        "CCN-CERT",
        1,
        ics=True,
        cyber_command=("Mando Conjunto del Ciberespacio", "MCCE"),
        law_enforcement=("Guardia Civil Grupo de Delitos Telematicos", "GDT"),
    ),
    _NationSpec(
        "SE",
        "Sweden",
        _M,
        True,
        ("sv",),
        "Europe/Stockholm",
        "CERT-SE",
        2,
        ics=True,
        law_enforcement=("Swedish Police Cybercrime Centre", "SC3"),
    ),
    _NationSpec(
        "TR",
        "Türkiye",
        _M,
        False,
        ("tr",),
        "Europe/Istanbul",
        "USOM",
        1,
        cyber_command=("Turkish Armed Forces Cyber Defence Command", "TAF Cyber"),
        law_enforcement=("Turkish National Police Cybercrime Department", "TNP Cyber"),
    ),
    _NationSpec(
        "GB",
        "United Kingdom",
        _M,
        False,
        (),
        "Europe/London",
        "NCSC-UK",
        1,
        ics=True,
        cyber_command=("National Cyber Force", "NCF"),
        law_enforcement=("NCA National Cyber Crime Unit", "NCA NCCU"),
        industry=("Albion OT Response Ltd", "Albion OT", "albion-ot"),
    ),
    _NationSpec(
        "US",
        "United States",
        _M,
        False,
        ("es",),
        "America/New_York",
        "CISA",
        1,
        ics=True,
        cyber_command=("US Cyber Command", "USCYBERCOM"),
        law_enforcement=("FBI Cyber Division", "FBI CyD"),
        industry=("Gridline Industrial Security Inc.", "Gridline", "gridline"),
    ),
    # Partners.
    _NationSpec("AT", "Austria", _P, True, ("de",), "Europe/Vienna", "CERT.at", 2, ics=True),
    _NationSpec("GE", "Georgia", _P, False, ("ka",), "Asia/Tbilisi", "CERT.GE", 3),
    _NationSpec("IE", "Ireland", _P, True, ("ga",), "Europe/Dublin", "CSIRT-IE", 3),
    _NationSpec(
        "JP",
        "Japan",
        _P,
        False,
        ("ja",),
        "Asia/Tokyo",
        "JPCERT/CC",
        1,
        ics=True,
        cyber_command=("JSDF Cyber Defense Command", "JCDC"),
    ),
    _NationSpec(
        "KR",
        "Republic of Korea",
        _P,
        False,
        ("ko",),
        "Asia/Seoul",
        "KrCERT/CC",
        2,
        cyber_command=("ROK Cyber Operations Command", "ROK CyberOps"),
    ),
    _NationSpec(
        "CH",
        "Switzerland",
        _P,
        False,
        ("de", "fr", "it"),
        "Europe/Zurich",
        "GovCERT.ch",
        2,
        ics=True,
        industry=("Alpen OT Security AG", "Alpen OT", "alpen-ot"),
    ),
    _NationSpec(
        "UA",
        "Ukraine",
        _P,
        False,
        ("uk",),
        "Europe/Kyiv",
        "CERT-UA",
        1,
        ics=True,
        law_enforcement=(
            "Cyberpolice Department of the National Police of Ukraine",
            "Cyberpolice UA",
        ),
    ),
    # Observer.
    _NationSpec("AM", "Armenia", _O, False, ("hy",), "Asia/Yerevan", "CERT-AM", 3),
)


# --- the plan of the directory (pure data, generated from the seed) ------------------------------


@dataclass(frozen=True)
class _ContactPlan:
    name: str
    email: str
    languages: tuple[str, ...]
    time_zone: str
    on_call: str
    webhook_url: str = ""


@dataclass(frozen=True)
class _CapabilityPlan:
    service_type: str
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class _UserPlan:
    email: str
    roles: tuple[str, ...]
    first_name: str
    last_name: str


@dataclass(frozen=True)
class _OrgPlan:
    name: str
    short_name: str
    kind: str
    nation_code: str | None
    domain: str
    contacts: tuple[_ContactPlan, ...]
    capabilities: tuple[_CapabilityPlan, ...]
    users: tuple[_UserPlan, ...]


@dataclass(frozen=True)
class _NationPlan:
    spec: _NationSpec
    organisations: tuple[_OrgPlan, ...]


_VENDORS = (
    "siemens",
    "schneider-electric",
    "abb",
    "rockwell",
    "hitachi-energy",
    "honeywell",
    "ge-vernova",
    "emerson",
    "yokogawa",
)
_ICS_SECTORS = (
    "energy/electricity",
    "energy/gas",
    "energy/oil",
    "energy/district-heating-cooling",
    "drinking-water",
    "waste-water",
    "manufacturing",
    "chemicals",
    "transport/rail",
)
_GENERAL_SECTORS = (
    "energy",
    "transport",
    "banking",
    "financial-market-infrastructures",
    "health",
    "digital-infrastructure",
    "ict-service-management",
    "public-administration",
    "government",
    "research",
    "manufacturing",
    "digital-providers",
    "space",
    "food",
    "postal-and-courier",
    "drinking-water",
)
_MILITARY_SECTORS = (
    "defence",
    "government",
    "energy",
    "digital-infrastructure",
    "space",
    "transport",
)

_DESCRIPTIONS: dict[str, str] = {
    ServiceType.INCIDENT_RESPONSE: (
        "Incident response team: scoping, containment and eradication, coordination with the "
        "affected entity's IT and management."
    ),
    ServiceType.MALWARE_ANALYSIS: (
        "Static and dynamic analysis and reverse engineering of malware samples; YARA rules and "
        "indicators delivered within the engagement."
    ),
    ServiceType.THREAT_INTELLIGENCE: (
        "Attribution support, actor profiles and indicator enrichment from national and partner "
        "sources."
    ),
    ServiceType.DIGITAL_FORENSICS: (
        "Disk, memory and cloud forensics with chain-of-custody handling of evidence."
    ),
    ServiceType.ICS_OT_EXPERTISE: (
        "ICS/OT incident handling: protocol analysis of field and control traffic, engineering "
        "workstation and HMI forensics, safe recovery of controllers."
    ),
    ServiceType.LAW_ENFORCEMENT_COORDINATION: (
        "Liaison with prosecutors and Europol/Interpol channels; preservation requests and "
        "mutual legal assistance."
    ),
    ServiceType.NETWORK_MONITORING: (
        "Deployable network sensors (Suricata/Zeek) and remote monitoring of the affected "
        "network for the duration of the engagement."
    ),
}

_HANDLING = (
    "",
    "",
    "Handles material up to TLP:AMBER+STRICT on accredited systems only.",
    "Evidence stays on the team's own forensic infrastructure; copies on request.",
    "On-site deployments need host-nation security clearance for the team.",
)


def _languages(spec: _NationSpec) -> tuple[str, ...]:
    return (*spec.languages, "en") if "en" not in spec.languages else spec.languages


def _depth(rng: random.Random, tier: int, strong: bool = False) -> str:
    if strong or tier == 1:
        return rng.choice((Depth.EXPERT, Depth.EXPERT, Depth.ADVANCED)).value
    if tier == 2:
        return rng.choice((Depth.EXPERT, Depth.ADVANCED, Depth.ADVANCED, Depth.BASIC)).value
    return rng.choice((Depth.ADVANCED, Depth.BASIC, Depth.BASIC)).value


def _legal(rng: random.Random, spec: _NationSpec) -> list[str]:
    conditions = []
    if rng.random() < 0.12:
        conditions.append("no-personal-data")
    if spec.eu and rng.random() < 0.10:
        conditions.append("eu-only-transfer")
    if spec.kind == _M and rng.random() < 0.08:
        conditions.append("members-only")
    if rng.random() < 0.10:
        conditions.append("requires-mou")
    return conditions


def _sectors(rng: random.Random, service: str, kind: str) -> list[str]:
    if service == ServiceType.LAW_ENFORCEMENT_COORDINATION:
        return []
    if service == ServiceType.ICS_OT_EXPERTISE:
        picked = rng.sample(_ICS_SECTORS, rng.randint(2, 4))
        if "energy/electricity" not in picked and rng.random() < 0.8:
            picked.insert(0, "energy/electricity")
        return picked
    if kind == OrgKind.CYBER_COMMAND:
        return rng.sample(_MILITARY_SECTORS, rng.randint(2, 4))
    if rng.random() < 0.3:
        return []  # any sector
    return rng.sample(_GENERAL_SECTORS, rng.randint(1, 4))


def _capability(
    rng: random.Random,
    spec: _NationSpec,
    kind: str,
    service: str,
    depth: str,
    *,
    on_site: bool | None = None,
) -> _CapabilityPlan:
    tier = spec.tier
    capacity = {1: (3, 5), 2: (2, 4)}.get(tier, (1, 2))
    remote = service != ServiceType.LAW_ENFORCEMENT_COORDINATION or rng.random() < 0.9
    if on_site is None:
        on_site = (
            service
            in (
                ServiceType.INCIDENT_RESPONSE,
                ServiceType.ICS_OT_EXPERTISE,
                ServiceType.NETWORK_MONITORING,
            )
            and rng.random() < 0.6
        )
    fields: dict[str, Any] = {
        "depth": depth,
        "description": _DESCRIPTIONS[service],
        "sectors": _sectors(rng, service, kind),
        "languages": list(_languages(spec)),
        "max_concurrent": rng.randint(*capacity),
        "remote": remote or not on_site,
        "on_site": on_site,
        "lead_time_hours": rng.choice((2, 4, 8) if tier == 1 else (8, 12, 24, 48, 72)),
        "handling_conditions": rng.choice(_HANDLING),
        "legal_conditions": _legal(rng, spec),
    }
    if service == ServiceType.ICS_OT_EXPERTISE:
        fields["ics_protocols"] = sorted(
            rng.sample(ICS_PROTOCOLS, rng.randint(2, 5)), key=ICS_PROTOCOLS.index
        )
        fields["ics_vendors"] = sorted(rng.sample(_VENDORS, rng.randint(1, 4)))
    return _CapabilityPlan(service, fields)


def _cert_capabilities(rng: random.Random, spec: _NationSpec) -> list[_CapabilityPlan]:
    if spec.kind == _O:
        return []  # observers do not offer assistance
    tier = spec.tier
    chance = {1: 1.0, 2: 0.6, 3: 0.2}[tier]
    wanted: list[str] = [ServiceType.INCIDENT_RESPONSE]
    if tier < 3 or rng.random() < 0.5:
        wanted.append(ServiceType.THREAT_INTELLIGENCE)
    if rng.random() < chance:
        wanted.append(ServiceType.MALWARE_ANALYSIS)
    if rng.random() < chance * 0.8:
        wanted.append(ServiceType.DIGITAL_FORENSICS)
    if rng.random() < 0.4:
        wanted.append(ServiceType.NETWORK_MONITORING)
    if spec.ics or rng.random() < 0.15:
        wanted.append(ServiceType.ICS_OT_EXPERTISE)
    plans = []
    for service in wanted:
        strong = service == ServiceType.ICS_OT_EXPERTISE and spec.ics and tier == 1
        plans.append(_capability(rng, spec, OrgKind.CERT, service, _depth(rng, tier, strong)))
    return plans


def _command_capabilities(rng: random.Random, spec: _NationSpec) -> list[_CapabilityPlan]:
    kind = OrgKind.CYBER_COMMAND
    caps = [
        _capability(rng, spec, kind, ServiceType.MALWARE_ANALYSIS, _depth(rng, 1)),
        _capability(rng, spec, kind, ServiceType.THREAT_INTELLIGENCE, _depth(rng, 1)),
        _capability(
            rng, spec, kind, ServiceType.INCIDENT_RESPONSE, _depth(rng, spec.tier), on_site=True
        ),
    ]
    if spec.ics and rng.random() < 0.5:
        caps.append(_capability(rng, spec, kind, ServiceType.ICS_OT_EXPERTISE, _depth(rng, 2)))
    return caps


def _police_capabilities(rng: random.Random, spec: _NationSpec) -> list[_CapabilityPlan]:
    kind = OrgKind.LAW_ENFORCEMENT
    caps = [_capability(rng, spec, kind, ServiceType.LAW_ENFORCEMENT_COORDINATION, _depth(rng, 1))]
    caps.append(_capability(rng, spec, kind, ServiceType.DIGITAL_FORENSICS, _depth(rng, spec.tier)))
    return caps


def _industry_capabilities(rng: random.Random, spec: _NationSpec) -> list[_CapabilityPlan]:
    kind = OrgKind.INDUSTRY_PARTNER
    return [
        _capability(rng, spec, kind, ServiceType.ICS_OT_EXPERTISE, Depth.EXPERT, on_site=True),
        _capability(rng, spec, kind, ServiceType.INCIDENT_RESPONSE, Depth.ADVANCED),
        _capability(rng, spec, kind, ServiceType.NETWORK_MONITORING, _depth(rng, 1)),
    ]


_OFFICE_HOURS = (
    "mon-fri 08:00-18:00",
    "mon-fri 08:00-16:30",
    "mon-thu 08:00-17:00; fri 08:00-14:00",
)
_EXTENDED = ("24/7", "mon-fri 07:00-19:00; sat,sun 09:00-17:00", "mon-fri 07:30-20:00")
_AFTER_HOURS = "mon-fri 18:00-08:00; sat,sun 00:00-24:00"


def _contacts(rng: random.Random, spec: _NationSpec, kind: str, domain: str) -> list[_ContactPlan]:
    langs, zone = _languages(spec), spec.time_zone
    if kind == OrgKind.CERT:
        rotas = _EXTENDED if spec.tier == 2 else _OFFICE_HOURS
        rota = "24/7" if spec.tier == 1 else rng.choice(rotas)
        hook = f"https://hooks.{domain}/vcisc" if spec.tier == 1 else ""
        desk = _ContactPlan("Duty desk", f"soc@{domain}", langs, zone, rota, webhook_url=hook)
        if rota == "24/7" or spec.kind == _O:
            return [desk]
        return [
            desk,
            _ContactPlan("Incident manager on call", f"oncall@{domain}", langs, zone, _AFTER_HOURS),
        ]
    if kind == OrgKind.CYBER_COMMAND:
        return [_ContactPlan("Operations centre", f"ops@{domain}", langs, zone, "24/7")]
    if kind == OrgKind.LAW_ENFORCEMENT:
        return [
            _ContactPlan(
                "Cybercrime duty officer",
                f"duty@{domain}",
                langs,
                zone,
                rng.choice(("24/7", "mon-fri 07:00-19:00")),
            ),
        ]
    return [
        _ContactPlan("Response hotline", f"response@{domain}", langs, zone, "24/7"),
        _ContactPlan("Account manager", f"federation@{domain}", langs, zone, "mon-fri 09:00-17:00"),
    ]


def _org_plan(
    rng: random.Random,
    spec: _NationSpec,
    kind: str,
    name: str,
    short: str,
    domain: str,
    capabilities: list[_CapabilityPlan],
) -> _OrgPlan:
    users: list[_UserPlan] = []
    if spec.kind == _O:
        users.append(_UserPlan(f"observer@{domain}", (Role.OBSERVER.value,), "Observer", short))
    else:
        users.append(
            _UserPlan(f"liaison@{domain}", (Role.LIAISON.value,), "Liaison officer", short)
        )
        if kind == OrgKind.CERT:
            users.append(_UserPlan(f"analyst@{domain}", (Role.ANALYST.value,), "Analyst", short))
    return _OrgPlan(
        name=name,
        short_name=short,
        kind=kind,
        nation_code=spec.code,
        domain=domain,
        contacts=tuple(_contacts(rng, spec, kind, domain)),
        capabilities=tuple(capabilities),
        users=tuple(users),
    )


def cert_name(spec: _NationSpec) -> str:
    """The name of a nation's CERT in the demo, e.g. ``CERT-EE (Estonia)``."""
    return f"{spec.cert} ({spec.name})"


def _plan_nation(rng: random.Random, spec: _NationSpec) -> _NationPlan:
    cc = spec.code.lower()
    orgs = [
        _org_plan(
            rng,
            spec,
            OrgKind.CERT,
            cert_name(spec),
            spec.cert,
            f"cert.{cc}.example",
            _cert_capabilities(rng, spec),
        )
    ]
    if spec.cyber_command:
        name, short = spec.cyber_command
        orgs.append(
            _org_plan(
                rng,
                spec,
                OrgKind.CYBER_COMMAND,
                name,
                short,
                f"cybercom.{cc}.example",
                _command_capabilities(rng, spec),
            )
        )
    if spec.law_enforcement:
        name, short = spec.law_enforcement
        orgs.append(
            _org_plan(
                rng,
                spec,
                OrgKind.LAW_ENFORCEMENT,
                name,
                short,
                f"police.{cc}.example",
                _police_capabilities(rng, spec),
            )
        )
    if spec.industry:
        name, short, label = spec.industry
        orgs.append(
            _org_plan(
                rng,
                spec,
                OrgKind.INDUSTRY_PARTNER,
                name,
                short,
                f"{label}.{cc}.example",
                _industry_capabilities(rng, spec),
            )
        )
    return _NationPlan(spec, tuple(orgs))


def _secretariat_plan() -> _OrgPlan:
    domain = _SECRETARIAT_DOMAIN
    return _OrgPlan(
        name=SECRETARIAT_NAME,
        short_name="Secretariat",
        kind=OrgKind.SECRETARIAT.value,
        nation_code=None,
        domain=domain,
        contacts=(
            _ContactPlan(
                "Duty coordinator",
                f"duty@{domain}",
                ("en", "fr"),
                "Europe/Brussels",
                "24/7",
                webhook_url=f"https://hooks.{domain}/duty",
            ),
        ),
        capabilities=(),
        users=(
            _UserPlan(f"coordinator@{domain}", (Role.COORDINATOR.value,), "Duty", "Coordinator"),
            _UserPlan(
                f"night-coordinator@{domain}", (Role.COORDINATOR.value,), "Night", "Coordinator"
            ),
            _UserPlan(
                f"exercise-control@{domain}", (Role.EXERCISE_CONTROL.value,), "Exercise", "Control"
            ),
            _UserPlan(f"admin@{domain}", (Role.ADMIN.value,), "Federation", "Administrator"),
        ),
    )


def _plan() -> tuple[_OrgPlan, list[_NationPlan]]:
    rng = random.Random(_SEED)  # noqa: S311 - demo data, not security
    nations = [_plan_nation(rng, spec) for spec in NATIONS]
    names = [o.name for n in nations for o in n.organisations]
    assert len(names) == len(set(names)), "organisation names must be unique"
    return _secretariat_plan(), nations


# --- applying the plan through the services ------------------------------------------------------


@dataclass
class _Tally:
    summary: DemoSummary = field(default_factory=DemoSummary)

    def saw(self, kind: str, created: bool) -> None:
        setattr(self.summary, kind, getattr(self.summary, kind) + 1)
        if created:
            self.summary.created = True


def _ensure_nation(spec: _NationSpec, at: datetime, tally: _Tally) -> Nation:
    nation = Nation.objects.filter(code=spec.code).first()
    tally.saw("nations", nation is None)
    if nation is None:
        nation = federation.create_nation(
            None, code=spec.code, name=spec.name, kind=spec.kind, eu_member=spec.eu, now=at
        )
    return nation


def _ensure_org(plan: _OrgPlan, at: datetime, tally: _Tally, password: str | None) -> Organisation:
    if plan.kind == OrgKind.SECRETARIAT:
        org = Organisation.objects.filter(kind=OrgKind.SECRETARIAT).first()
    else:
        org = Organisation.objects.filter(name=plan.name).first()
    tally.saw("organisations", org is None)
    if org is None:
        org = federation.create_organisation(
            None,
            name=plan.name,
            kind=plan.kind,
            nation_code=plan.nation_code,
            short_name=plan.short_name,
            now=at,
        )
    # One query per kind for what this organisation already has (the second run reads only).
    contacts = PointOfContact.objects.filter(organisation=org)
    have_contacts = set(contacts.values_list("name", flat=True))
    capabilities = Capability.objects.filter(organisation=org)
    have_services = set(capabilities.values_list("service_type", flat=True))
    users = User.objects.filter(email__in=[u.email for u in plan.users])
    have_users = set(users.values_list("email", flat=True))
    for contact in plan.contacts:
        tally.saw("contacts", contact.name not in have_contacts)
        if contact.name not in have_contacts:
            federation.create_contact(
                None,
                organisation_id=org.pk,
                now=at,
                name=contact.name,
                email=contact.email,
                webhook_url=contact.webhook_url,
                languages=list(contact.languages),
                time_zone=contact.time_zone,
                on_call=contact.on_call,
            )
    for cap in plan.capabilities:
        tally.saw("capabilities", cap.service_type not in have_services)
        if cap.service_type not in have_services:
            federation.create_capability(
                None,
                organisation_id=org.pk,
                now=at,
                service_type=cap.service_type,
                **dict(cap.fields),
            )
    for user in plan.users:
        tally.saw("users", user.email not in have_users)
        if user.email not in have_users:
            federation.create_user(
                None,
                email=user.email,
                organisation_id=org.pk,
                roles=list(user.roles),
                password=password,
                first_name=user.first_name,
                last_name=user.last_name,
                now=at,
            )
    return org


def _check_password(password: str, plans: Sequence[_OrgPlan]) -> None:
    """Refuse a password the validators would refuse for any demo user, before writing anything."""
    from django.contrib.auth.password_validation import validate_password

    for plan in plans:
        for user in plan.users:
            candidate = User(
                email=user.email,
                username=user.email,
                first_name=user.first_name,
                last_name=user.last_name,
            )
            try:
                validate_password(password, candidate)
            except ValidationError as exc:
                raise Invalid("password", f"{user.email}: {' '.join(exc.messages)}") from None


# --- requests for assistance ---------------------------------------------------------------------


def _user_with_role(org: Organisation, role: Role) -> User:
    for user in User.objects.filter(organisation=org, is_active=True).order_by("pk"):
        if user.has_role(role):
            return user
    raise DemoError(f"{org.name} has no active user with the {role.value} role")


@dataclass
class _Play:
    """What a scenario needs: the clock, the secretariat and the requesting CERT's people."""

    now: datetime  # the demo's present; scenario steps all happen before it
    coordinator: User
    rfa: RequestForAssistance
    requester: User  # the requesting CERT's liaison officer
    analyst: User  # the requesting CERT's analyst

    def fresh(self) -> RequestForAssistance:
        return RequestForAssistance.objects.get(pk=self.rfa.pk)

    def triage(self, at: datetime) -> None:
        assistance.transition(self.coordinator, self.rfa.pk, "start-triage", now=at)

    def candidates(self, at: datetime) -> list[Candidate]:
        return matching.match(self.fresh(), now=at).candidates

    def route(self, at: datetime, prefer: Sequence[str], n: int) -> list[int]:
        """Route to ``n`` matching organisations by explicit id: those of the ``prefer`` nations
        first (in that order), then the best-ranked others."""
        ranked = self.candidates(at)
        chosen = [c for c in ranked if c.nation in prefer]
        chosen.sort(key=lambda c: prefer.index(c.nation or ""))
        chosen += [c for c in ranked if c not in chosen]
        ids = [c.organisation_id for c in chosen[:n]]
        if not ids:
            raise DemoError(f"no organisation matches {self.rfa.title!r}")
        assistance.route(self.coordinator, self.rfa.pk, ids, now=at)
        return ids

    def route_top(self, at: datetime, top: int) -> list[int]:
        result = assistance.route(self.coordinator, self.rfa.pk, None, top=top, now=at)
        return [r.organisation_id for r in result.routed]

    def offer(
        self, org_id: int, at: datetime, scope: str, *, team_size: int = 2, days: int = 14
    ) -> Offer:
        """The routed organisation's liaison offers what its usable capabilities cover.

        ``scope`` says who and when; the services actually offered are appended, since which
        organisations are routed depends on the generated catalogue.
        """
        org = Organisation.objects.get(pk=org_id)
        cand = next((c for c in self.candidates(at) if c.organisation_id == org_id), None)
        services = list(cand.services_covered) if cand else list(self.rfa.services_needed[:1])
        offered = ", ".join(ServiceType(s).label.lower() for s in services)
        scope = f"{scope} Offered: {offered}."
        capability = (
            Capability.objects.filter(pk__in=cand.capability_ids).order_by("pk").first()
            if cand
            else None
        )
        on_site = bool(capability and capability.on_site and team_size > 1)
        return assistance.create_offer(
            _user_with_role(org, Role.LIAISON),
            self.rfa.pk,
            {
                "services": services,
                "scope": scope,
                "team_size": team_size,
                "available_from": at + 2 * H,
                "available_until": at + days * D,
                "remote": True,
                "on_site": on_site,
                "conditions": capability.handling_conditions if capability else "",
                "capability_id": capability.pk if capability else None,
            },
            now=at,
        )

    def accept(self, offer: Offer, at: datetime) -> Engagement:
        assistance.offer_action(self.requester, offer.pk, "accept", now=at)
        return Engagement.objects.get(rfa_id=self.rfa.pk)

    def decline(self, offer: Offer, at: datetime, reason: str) -> None:
        assistance.offer_action(self.requester, offer.pk, "decline", reason=reason, now=at)

    def act(self, action: str, at: datetime, reason: str = "", *, by: User | None = None) -> None:
        assistance.transition(by or self.requester, self.rfa.pk, action, reason=reason, now=at)

    def liaison_of(self, org_id: int) -> User:
        return _user_with_role(Organisation.objects.get(pk=org_id), Role.LIAISON)


@dataclass(frozen=True)
class _Scenario:
    title: str
    requester: str  # nation code of the requesting CERT
    start: timedelta  # how long before ``now`` the request was drafted
    data: Mapping[str, Any]
    play: Callable[[_Play, datetime], None]
    submit_after: timedelta | None = timedelta(minutes=15)  # None: stays a draft


# Each play function receives the time the request was submitted (or drafted, for a draft).


def _draft(p: _Play, t0: datetime) -> None:
    assistance.update_rfa(
        p.requester,
        p.rfa.pk,
        {
            "measures_taken": "Affected PLC isolated from the corporate network; "
            "engineering laptop imaged. Waiting for the operator's approval before submitting.",
        },
        now=t0 + 40 * MIN,
    )


def _submitted(p: _Play, t0: datetime) -> None:
    """Submitted a moment ago; the secretariat has not yet looked at it."""


def _in_triage(p: _Play, t0: datetime) -> None:
    p.triage(t0 + 50 * MIN)


def _needs_info(p: _Play, t0: datetime) -> None:
    p.triage(t0 + 3 * H)
    p.act(
        "request-info",
        t0 + 5 * H,
        "Please attach the full headers of two sample e-mails and the list of spoofed sender "
        "domains, so that we can route this to the right teams.",
        by=p.coordinator,
    )


def _circulated(p: _Play, t0: datetime) -> None:
    p.triage(t0 + 20 * MIN)
    routed = p.route_top(t0 + 1 * H, top=4)
    p.offer(
        routed[0],
        t0 + 4 * H,
        "Two responders can join remotely within the hour; on-site support possible from tomorrow.",
        team_size=2,
    )


def _offer_accepted(p: _Play, t0: datetime) -> None:
    p.triage(t0 + 1 * H)
    routed = p.route(t0 + 2 * H, prefer=("EE", "FI", "SE", "LT"), n=3)
    first = p.offer(
        routed[0],
        t0 + 9 * H,
        "A team of three, remote from tomorrow morning, English- and Russian-speaking.",
        team_size=3,
    )
    p.offer(routed[1], t0 + 14 * H, "Two analysts, remote, for up to ten hosts.", team_size=2)
    p.accept(first, t0 + 24 * H)


def _active(p: _Play, t0: datetime) -> None:
    p.triage(t0 + 20 * MIN)
    routed = p.route(t0 + 50 * MIN, prefer=("US", "PL", "DE"), n=3)
    first = p.offer(
        routed[0],
        t0 + 2 * H,
        "A team of four, remote at once and on-site within 48 hours.",
        team_size=4,
        days=30,
    )
    second = p.offer(
        routed[1], t0 + 3 * H, "Two specialists, remote, for three weeks.", team_size=2, days=21
    )
    eng = p.accept(first, t0 + 4 * H)
    p.accept(second, t0 + 4 * H + 30 * MIN)
    # Give each task to a helper who offered the service it needs.
    malware = next((o for o in (second, first) if "malware-analysis" in o.services), second)
    others = [*(o for o in (first, second) if o.pk != malware.pk), malware]
    ics = next((o for o in others if "ics-ot-expertise" in o.services), others[0])
    p.act("activate", t0 + 5 * H)
    # TLP:RED: only named members read and write; the requester names its analyst.
    engagements.add_member(p.requester, eng.pk, p.analyst.pk, now=t0 + 5 * H)
    task = engagements.add_task(
        p.requester,
        eng.pk,
        {
            "title": "Reverse-engineer the wiper recovered from the HMI workstations",
            "description": "Samples uploaded to the engagement's evidence store; "
            "hashes in the note.",
            "assignee_id": malware.organisation_id,
            "due_at": t0 + 2 * D,
        },
        now=t0 + 6 * H,
    )
    engagements.add_task(
        p.requester,
        eng.pk,
        {
            "title": "Review IEC 104 traffic captures from the three affected substations",
            "assignee_id": ics.organisation_id,
            "due_at": t0 + 3 * D,
        },
        now=t0 + 6 * H,
    )
    engagements.update_task(
        p.liaison_of(malware.organisation_id),
        eng.pk,
        task.pk,
        {"outcome": "ongoing"},
        now=t0 + 9 * H,
    )
    engagements.add_note(
        p.analyst,
        eng.pk,
        {
            "body": "Initial triage: the wiper overwrote the MBR of four HMI workstations and "
            "deleted the substation configuration files. Breakers were operated manually; "
            "no safety system was affected.",
        },
        now=t0 + 7 * H,
    )
    # Indicators: the C2 address is also in the closed banking-trojan case (a correlation) and
    # in the demo OSINT feed (a feed match); the wiper's hash is named members' only.
    for value, tlp in (
        (_DEMO_C2_ADDRESS, "amber"),
        ("update-check.grid-ops.example", "amber"),
        ("198.51.100.0/24", "green"),
        (_DEMO_WIPER_SHA256, "red"),
    ):
        indicators.add_indicator(p.requester, eng.pk, {"value": value, "tlp": tlp}, now=t0 + 8 * H)
    engagements.add_sitrep(
        p.liaison_of(ics.organisation_id),
        eng.pk,
        {
            "summary": "Control restored at two of three substations; IEC 104 captures show "
            "unauthorised commands from one engineering workstation.",
            "actions_taken": "Traffic analysis, isolation of the engineering VLAN, golden-image "
            "restore of two HMIs.",
            "next_steps": "Restore the third substation; hunt for the initial access vector.",
            "outlook": "improving",
        },
        now=t0 + 2 * D,
    )


def _reporting(p: _Play, t0: datetime) -> None:
    p.triage(t0 + 2 * H)
    routed = p.route(t0 + 3 * H, prefer=("NL", "AT", "CH"), n=2)
    offer = p.offer(
        routed[0],
        t0 + 10 * H,
        "Two analysts, remote, to trace the exfiltration path and the staging server.",
    )
    eng = p.accept(offer, t0 + 20 * H)
    p.act("activate", t0 + 21 * H)
    engagements.add_sitrep(
        p.liaison_of(offer.organisation_id),
        eng.pk,
        {
            "summary": "Exfiltration ran over a compromised VPN account for nine days; about 40 GB "
            "of project data left the network.",
            "actions_taken": "Forensics of the VPN concentrator and the file server.",
            "next_steps": "Final report to the requester.",
            "outlook": "stable",
        },
        now=t0 + 5 * D,
    )
    p.act("report", t0 + 11 * D)


def _closed(p: _Play, t0: datetime) -> None:
    p.triage(t0 + 1 * H)
    routed = p.route(t0 + 2 * H, prefer=("EE", "SE", "NO"), n=3)
    first = p.offer(
        routed[0], t0 + 5 * H, "Two analysts, remote; first results within 24 hours.", team_size=2
    )
    second = p.offer(routed[1], t0 + 9 * H, "One analyst, remote, for a week.")
    eng = p.accept(first, t0 + 12 * H)
    p.decline(second, t0 + 12 * H, "Covered by the accepted offer; thank you for the quick answer.")
    p.act("activate", t0 + 13 * H)
    helper = p.liaison_of(first.organisation_id)
    task = engagements.add_task(
        p.requester,
        eng.pk,
        {
            "title": "Analyse the loader and extract C2 configuration",
            "assignee_id": first.organisation_id,
            "due_at": t0 + 2 * D,
        },
        now=t0 + 14 * H,
    )
    engagements.update_task(helper, eng.pk, task.pk, {"outcome": "ongoing"}, now=t0 + 15 * H)
    engagements.add_note(
        helper,
        eng.pk,
        {
            "body": "The loader is a known banking-trojan variant; C2 list and YARA rule attached.",
        },
        now=t0 + 1 * D,
    )
    for value in (_DEMO_C2_ADDRESS, "cdn-static.bank-login.example"):
        indicators.add_indicator(helper, eng.pk, {"value": value, "tlp": "green"}, now=t0 + 1 * D)
    engagements.update_task(helper, eng.pk, task.pk, {"outcome": "successful"}, now=t0 + 1 * D)
    engagements.add_sitrep(
        p.requester,
        eng.pk,
        {
            "summary": "All infected hosts identified and cleaned; C2 domains sinkholed.",
            "actions_taken": "Blocking of C2 infrastructure, password resets for 212 accounts.",
            "next_steps": "Monitoring for two weeks, then closure.",
            "outlook": "improving",
        },
        now=t0 + 3 * D,
    )
    p.act("report", t0 + 6 * D)
    engagements.submit_review(
        p.requester,
        eng.pk,
        {
            "what_helped": "Fast reverse engineering: the C2 list arrived within a day.",
            "what_did_not": "Agreeing the handling caveats for customer data took half a day.",
            "lessons": "Pre-agree a data-processing template with frequent helpers.",
            "first_deliverable_at": t0 + 1 * D,
            "rating": 5,
        },
        now=t0 + 7 * D,
    )
    p.act("close", t0 + 8 * D)


#: Values the demo's engagements and its feed share (documentation address ranges only).
_DEMO_C2_ADDRESS = "203.0.113.47"
_DEMO_WIPER_SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
_DEMO_FEED = "Demo OSINT feed"


def _demo_feed(now: datetime, tally: _Tally) -> None:
    """A MISP feed as a public OSINT provider publishes one, uploaded by the coordinator: it
    names the C2 address the demo's engagements hold, so their pages show a feed match."""
    from vcisc.feeds import services as feeds
    from vcisc.feeds.models import Feed

    if Feed.objects.filter(name=_DEMO_FEED).exists():
        return
    coordinator = User.objects.get(email=f"coordinator@{_SECRETARIAT_DOMAIN}")
    tally.summary.created = True
    feed = feeds.create_feed(
        coordinator,
        {"name": _DEMO_FEED, "tlp": "clear", "provider": "An OSINT provider (demo)"},
        now=now - 2 * D,
    )
    event_uuid = "5f1e0c55-7c1b-4d5e-9a51-000000000d30"
    event = {
        "Event": {
            "uuid": event_uuid,
            "info": "Banking-trojan and wiper infrastructure (demo)",
            "date": (now - 3 * D).date().isoformat(),
            "timestamp": str(int((now - 3 * D).timestamp())),
            "Orgc": {"name": "OSINT provider", "uuid": "5f1e0c55-7c1b-4d5e-9a51-0000000000c1"},
            "Tag": [{"name": "tlp:clear"}],
            "Attribute": [
                {"type": "ip-dst", "category": "Network activity", "value": _DEMO_C2_ADDRESS},
                {"type": "domain", "category": "Network activity", "value": "dl.fileshare.example"},
            ],
        }
    }
    manifest = {event_uuid: {"info": event["Event"]["info"], "timestamp": 1}}
    feeds.import_feed_content(
        coordinator, feed.pk, manifest, lambda _: json.dumps(event), now=now - 2 * D
    )


def _rejected(p: _Play, t0: datetime) -> None:
    p.triage(t0 + 2 * H)
    p.act(
        "reject",
        t0 + 3 * H,
        "Handled nationally: this does not need federation assistance. Block lists were "
        "shared with CERT-IS under TLP:GREEN instead.",
        by=p.coordinator,
    )


def _withdrawn(p: _Play, t0: datetime) -> None:
    p.triage(t0 + 1 * H)
    routed = p.route(t0 + 2 * H, prefer=("US", "GB"), n=2)
    p.offer(routed[0], t0 + 6 * H, "A team of three, remote; on-site within 72 hours if needed.")
    p.act(
        "withdraw",
        t0 + 20 * H,
        "The provider's own response team contained the incident; thank you.",
    )


def _expired(p: _Play, t0: datetime) -> None:
    p.triage(t0 + 3 * H)
    p.route(t0 + 4 * H, prefer=("LU", "NL", "FR"), n=2)
    p.act("expire", t0 + 2 * D + 1 * H, "deadline passed with no offer", by=p.coordinator)


_SCENARIOS: tuple[_Scenario, ...] = (
    _Scenario(
        "Credential-stealing malware at a systemically important bank",
        "FI",
        30 * D,
        {
            "affected_entity": "A systemically important Finnish bank",
            "description": "A banking trojan delivered by invoice-themed e-mail infected employee "
            "workstations and harvested credentials for internal payment systems.",
            "rsit_class": "malicious-code",
            "rsit_type": "infected-system",
            "impact": "About 200 workstations infected; no fraudulent payments confirmed.",
            "measures_taken": "Infected hosts isolated; credentials of affected users reset.",
            "sector": "banking",
            "severity": 3,
            "eu_impact": "yellow",
            "services_needed": ["malware-analysis", "threat-intelligence"],
            "urgency": "hours",
            "languages": ["fi", "sv", "en"],
            "tlp": "amber",
        },
        _closed,
    ),
    _Scenario(
        "Data exfiltration from a university research network",
        "DE",
        14 * D,
        {
            "affected_entity": "A technical university's research network",
            "description": "Project data of a dual-use research programme was exfiltrated over a "
            "compromised VPN account.",
            "rsit_class": "information-content-security",
            "rsit_type": "data-leak",
            "impact": "About 40 GB of research data lost.",
            "measures_taken": "VPN account disabled, MFA enforced for all remote access.",
            "sector": "research",
            "severity": 2,
            "eu_impact": "green",
            "services_needed": ["digital-forensics", "threat-intelligence"],
            "urgency": "days",
            "languages": ["de", "en"],
            "tlp": "amber",
            "involves_personal_data": True,
        },
        _reporting,
    ),
    _Scenario(
        "Suspected supply-chain compromise at a managed service provider",
        "CA",
        9 * D,
        {
            "affected_entity": "A managed service provider serving provincial agencies",
            "description": "Unusual use of the provider's remote-management tool was seen at "
            "three of its customers within one hour.",
            "rsit_class": "intrusions",
            "rsit_type": "privileged-account-compromise",
            "sector": "ict-service-management",
            "severity": 3,
            "services_needed": ["incident-response", "threat-intelligence"],
            "urgency": "hours",
            "languages": ["en", "fr"],
            "tlp": "amber+strict",
        },
        _withdrawn,
    ),
    _Scenario(
        "Spam wave against municipal mailboxes",
        "IS",
        6 * D,
        {
            "affected_entity": "Several Icelandic municipalities",
            "description": "A high-volume spam wave is hitting municipal mailboxes.",
            "rsit_class": "abusive-content",
            "rsit_type": "spam",
            "sector": "public-administration",
            "severity": 1,
            "eu_impact": "white",
            "services_needed": ["threat-intelligence"],
            "urgency": "weeks",
            "languages": ["is", "en"],
            "tlp": "clear",
        },
        _rejected,
    ),
    _Scenario(
        "Scanning of clearing-house gateways",
        "BE",
        5 * D,
        {
            "affected_entity": "A central securities depository",
            "description": "Sustained scanning of the depository's member gateways from rotating "
            "cloud addresses; monitoring support requested.",
            "rsit_class": "information-gathering",
            "rsit_type": "scanner",
            "sector": "financial-market-infrastructures",
            "severity": 1,
            "services_needed": ["network-monitoring"],
            "urgency": "days",
            "languages": ["fr", "nl", "en"],
            "tlp": "green",
            # The request's own deadline: it expires if no offer is accepted by then.
            "needed_by": None,
        },
        _expired,
    ),
    _Scenario(
        "Destructive attack on substation control systems",
        "UA",
        4 * D,
        {
            "affected_entity": "A regional electricity distribution system operator",
            "description": "A wiper and unauthorised IEC 104 commands hit three substations; "
            "breakers were opened and HMI workstations destroyed.",
            "rsit_class": "availability",
            "rsit_type": "sabotage",
            "impact": "Power cut for about 80,000 customers for six hours.",
            "measures_taken": "Manual operation of the substations; engineering VLAN isolated.",
            "other_support": "National vendor support engaged for the protection relays.",
            "handling_caveats": "Named recipients only; no sharing beyond the engagement.",
            "sector": "energy/electricity",
            "severity": 5,
            "services_needed": ["ics-ot-expertise", "malware-analysis", "incident-response"],
            "urgency": "immediate",
            "languages": ["uk", "en"],
            "ics_protocols": ["iec-60870-5-104", "iec-61850", "modbus"],
            "ics_vendors": ["siemens", "abb", "hitachi-energy"],
            "tlp": "red",
        },
        _active,
    ),
    _Scenario(
        "Phishing campaign impersonating the tax authority",
        "GR",
        2 * D,
        {
            "affected_entity": "Independent Authority for Public Revenue (impersonated)",
            "description": "Citizens receive e-mails and SMS impersonating the tax authority "
            "that lead to credential-harvesting sites.",
            "rsit_class": "fraud",
            "rsit_type": "phishing",
            "sector": "public-administration",
            "severity": 1,
            "eu_impact": "green",
            "services_needed": ["threat-intelligence"],
            "urgency": "days",
            "languages": ["el", "en"],
            "tlp": "green",
            "involves_personal_data": True,
        },
        _needs_info,
    ),
    _Scenario(
        "Compromise of a port logistics platform",
        "LV",
        30 * H,
        {
            "affected_entity": "The port community system of a Baltic port",
            "description": "Attackers exploited the logistics platform's web application and "
            "altered container release records.",
            "rsit_class": "intrusions",
            "rsit_type": "application-compromise",
            "impact": "Container releases suspended for a day.",
            "sector": "transport/water",
            "severity": 3,
            "eu_impact": "yellow",
            "services_needed": ["incident-response", "digital-forensics"],
            "urgency": "hours",
            "languages": ["lv", "en"],
            "tlp": "amber",
        },
        _offer_accepted,
    ),
    _Scenario(
        "DDoS campaign against government e-services",
        "LT",
        11 * H,
        {
            "affected_entity": "National e-government portal and tax e-services",
            "description": "Waves of application-layer DDoS since the morning; the portal is "
            "intermittently unavailable.",
            "rsit_class": "availability",
            "rsit_type": "ddos",
            "measures_taken": "Upstream scrubbing enabled; geo-blocking of the worst sources.",
            "sector": "government",
            "severity": 2,
            "eu_impact": "yellow",
            "services_needed": ["network-monitoring", "threat-intelligence"],
            "urgency": "hours",
            "languages": ["lt", "en"],
            "tlp": "green",
        },
        _in_triage,
    ),
    _Scenario(
        "Wiper malware at an electricity distribution operator",
        "EE",
        7 * H,
        {
            "affected_entity": "An Estonian electricity distribution system operator",
            "description": "Wiper malware on the operator's SCADA servers; RTUs still respond "
            "but operators have lost visibility of part of the grid.",
            "rsit_class": "malicious-code",
            "rsit_type": "malware-distribution",
            "impact": "No outage yet; operators dispatch field crews to read meters.",
            "sector": "energy/electricity",
            "severity": 4,
            "eu_impact": "yellow",
            "services_needed": ["ics-ot-expertise", "malware-analysis", "incident-response"],
            "urgency": "immediate",
            "languages": ["et", "en"],
            "ics_protocols": ["iec-60870-5-104", "iec-61850"],
            "ics_vendors": ["hitachi-energy", "siemens"],
            "tlp": "amber+strict",
        },
        _circulated,
    ),
    _Scenario(
        "Unusual Modbus writes at a municipal water utility",
        "PL",
        3 * H,
        {
            "affected_entity": "A municipal drinking-water utility",
            "description": "Unexplained Modbus write commands changed set points of a chlorine "
            "dosing PLC overnight.",
            "rsit_class": "intrusion-attempts",
            "rsit_type": "exploit",
            "sector": "drinking-water",
            "severity": 2,
            "services_needed": ["ics-ot-expertise", "network-monitoring"],
            "urgency": "days",
            "languages": ["pl", "en"],
            "ics_protocols": ["modbus"],
            "ics_vendors": ["schneider-electric"],
            "tlp": "amber",
        },
        _draft,
        submit_after=None,
    ),
    _Scenario(
        "Ransomware at a regional hospital group",
        "PT",
        40 * MIN,
        {
            "affected_entity": "A regional hospital group (three hospitals)",
            "description": "Ransomware encrypted the hospital information system and imaging "
            "archive; emergency departments work on paper.",
            "rsit_class": "malicious-code",
            "rsit_type": "infected-system",
            "impact": "Elective surgery postponed; ambulances diverted.",
            "measures_taken": "Network segments isolated; backups verified offline.",
            "sector": "health",
            "severity": 3,
            "eu_impact": "yellow",
            "services_needed": ["incident-response", "malware-analysis", "digital-forensics"],
            "urgency": "hours",
            "languages": ["pt", "en"],
            "tlp": "amber",
            "legal_requirements": ["eu-only-transfer"],
            "involves_personal_data": True,
        },
        _submitted,
    ),
)


def _run_scenario(scenario: _Scenario, now: datetime, coordinator: User, tally: _Tally) -> None:
    spec = next(s for s in NATIONS if s.code == scenario.requester)
    cert = Organisation.objects.filter(name=cert_name(spec)).first()
    if cert is None:
        raise DemoError(f"the demo needs {cert_name(spec)}")
    exists = RequestForAssistance.objects.filter(requester=cert, title=scenario.title).exists()
    tally.saw("requests", not exists)
    if exists:
        return
    drafted = now - scenario.start
    liaison = _user_with_role(cert, Role.LIAISON)
    data = dict(scenario.data)
    if "needed_by" in data and data["needed_by"] is None:
        data["needed_by"] = drafted + 2 * D
    data.setdefault("needed_by", drafted + 7 * D)
    rfa = assistance.create_rfa(liaison, {"title": scenario.title, **data}, now=drafted)
    t0 = drafted
    if scenario.submit_after is not None:
        t0 = drafted + scenario.submit_after
        assistance.transition(liaison, rfa.pk, "submit", now=t0)
    play = _Play(
        now=now,
        coordinator=coordinator,
        rfa=rfa,
        requester=liaison,
        analyst=_user_with_role(cert, Role.ANALYST),
    )
    scenario.play(play, t0)


# --- the entry point -----------------------------------------------------------------------------


def load_demo(
    *, now: datetime | None = None, progress: bool = True, password: str | None = None
) -> DemoSummary:
    """Load the demo federation (idempotently) and return how much of it exists.

    ``now`` is the present of the demo: the directory is created 120 days before it and the
    requests at back-dated times before it (default: the current time). ``password``, if given,
    is set for every demo user created by this run; without it the users can use API tokens only.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    now = now or timezone.now()
    if timezone.is_naive(now):
        raise ValueError("now must be timezone-aware")
    founded = now - 120 * D
    secretariat, nations = _plan()
    if password is not None:
        _check_password(password, [secretariat, *(o for n in nations for o in n.organisations)])
    tally = _Tally()

    def load_secretariat() -> None:
        _ensure_org(secretariat, founded, tally, password)

    def loader(plan: _NationPlan) -> Callable[[], None]:
        def load() -> None:
            _ensure_nation(plan.spec, founded, tally)
            for org in plan.organisations:
                _ensure_org(org, founded, tally, password)

        return load

    def player(scenario: _Scenario) -> Callable[[], None]:
        def play() -> None:
            coordinator = User.objects.filter(email=f"coordinator@{_SECRETARIAT_DOMAIN}").first()
            if coordinator is None:
                raise DemoError("the demo needs its secretariat coordinator")
            _run_scenario(scenario, now, coordinator, tally)

        return play

    steps: list[tuple[str, Callable[[], None]]] = [("Secretariat", load_secretariat)]
    steps += [(plan.spec.name, loader(plan)) for plan in nations]
    steps += [(f"RFA: {s.title}", player(s)) for s in _SCENARIOS]
    steps.append(("Federation feed", lambda: _demo_feed(now, tally)))

    columns = (TextColumn("{task.description:<60.60}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("Loading the demo federation", total=len(steps))
        for label, step in steps:
            bar.update(task, description=label)
            # One transaction per step: an interrupted load keeps whole steps and resumes.
            with transaction.atomic():
                step()
            bar.advance(task)
        bar.update(task, description="Demo federation loaded")
    return tally.summary
