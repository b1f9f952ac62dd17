"""Controlled vocabularies of DOMAIN.md §2 and §4: service types, sectors, RSIT, severity.

Values are the lower-case, hyphenated identifiers used on the wire (API, CLI, exports).
"""

from __future__ import annotations

from typing import Literal

from django.db import models

__all__ = [
    "ICS_PROTOCOLS",
    "LEGAL_CONDITIONS",
    "LEGAL_REQUIREMENTS",
    "RSIT",
    "SECTORS",
    "Depth",
    "EuImpact",
    "ServiceType",
    "Severity",
    "Urgency",
]


class ServiceType(models.TextChoices):
    MALWARE_ANALYSIS = "malware-analysis", "Malware analysis and reverse engineering"
    THREAT_INTELLIGENCE = "threat-intelligence", "Cyber threat intelligence"
    DIGITAL_FORENSICS = "digital-forensics", "Digital forensics"
    INCIDENT_RESPONSE = "incident-response", "Incident response"
    ICS_OT_EXPERTISE = "ics-ot-expertise", "Industrial control systems / OT expertise"
    LAW_ENFORCEMENT_COORDINATION = "law-enforcement-coordination", "Law-enforcement coordination"
    NETWORK_MONITORING = "network-monitoring", "Network monitoring"


class Depth(models.TextChoices):
    """How deep an organisation's capability goes (scored in matching)."""

    BASIC = "basic", "Basic"
    ADVANCED = "advanced", "Advanced"
    EXPERT = "expert", "Expert"


class Severity(models.IntegerChoices):
    """US PPD-41 / CISA NCISS levels (DOMAIN.md §4)."""

    BASELINE = 0, "0 Baseline (white)"
    LOW = 1, "1 Low (green)"
    MEDIUM = 2, "2 Medium (yellow)"
    HIGH = 3, "3 High (orange)"
    SEVERE = 4, "4 Severe (red)"
    EMERGENCY = 5, "5 Emergency (black)"


class EuImpact(models.TextChoices):
    """EU impact severity (NIS Cooperation Group taxonomy, 2018)."""

    RED = "red", "Red (very large)"
    YELLOW = "yellow", "Yellow (large)"
    GREEN = "green", "Green (minor)"
    WHITE = "white", "White (none)"


class Urgency(models.TextChoices):
    """How soon the requester needs help to start."""

    IMMEDIATE = "immediate", "Immediately"
    HOURS = "hours", "Within hours"
    DAYS = "days", "Within days"
    WEEKS = "weeks", "Within weeks"


#: NIS2 Annex I and II sectors, plus defence and government for allied use (DOMAIN.md §4).
SECTORS: dict[str, tuple[str, ...]] = {
    "energy": ("electricity", "district-heating-cooling", "oil", "gas", "hydrogen"),
    "transport": ("air", "rail", "water", "road"),
    "banking": (),
    "financial-market-infrastructures": (),
    "health": (),
    "drinking-water": (),
    "waste-water": (),
    "digital-infrastructure": (),
    "ict-service-management": (),
    "public-administration": (),
    "space": (),
    "postal-and-courier": (),
    "waste-management": (),
    "chemicals": (),
    "food": (),
    "manufacturing": (),
    "digital-providers": (),
    "research": (),
    "defence": (),
    "government": (),
}

#: ENISA RSIT v1.3: class -> types (DOMAIN.md §4).
RSIT: dict[str, tuple[str, ...]] = {
    "abusive-content": ("spam", "harmful-speech", "violence"),
    "malicious-code": (
        "infected-system",
        "c2-server",
        "malware-distribution",
        "malware-configuration",
    ),
    "information-gathering": ("scanner", "sniffing", "social-engineering"),
    "intrusion-attempts": ("ids-alert", "brute-force", "exploit"),
    "intrusions": (
        "privileged-account-compromise",
        "unprivileged-account-compromise",
        "application-compromise",
        "system-compromise",
        "burglary",
    ),
    "availability": ("dos", "ddos", "misconfiguration", "sabotage", "outage"),
    "information-content-security": (
        "unauthorised-information-access",
        "unauthorised-information-modification",
        "data-loss",
        "data-leak",
    ),
    "fraud": ("unauthorised-use-of-resources", "copyright", "masquerade", "phishing"),
    "vulnerable": (
        "weak-crypto",
        "ddos-amplifier",
        "potentially-unwanted-accessible",
        "information-disclosure",
        "vulnerable-system",
    ),
    "other": ("other", "undetermined"),
    "test": ("test",),
}

#: ICS protocols named in DOMAIN.md §2 and a few more that CERTs meet in the field.
ICS_PROTOCOLS: tuple[str, ...] = (
    "modbus",
    "dnp3",
    "iec-61850",
    "iec-60870-5-104",
    "s7",
    "opc-ua",
    "profinet",
    "ethernet-ip",
    "bacnet",
)

#: Conditions an offering organisation attaches to a capability (legal/handling).
LEGAL_CONDITIONS: dict[str, str] = {
    "no-personal-data": "Will not process personal data",
    "eu-only-transfer": "May only assist requesters inside the EU (data stays in the EU)",
    "members-only": "Assists member nations only",
    "requires-mou": "Requires a bilateral memorandum of understanding",
}

#: Requirements a requester attaches to an RFA (legal caveats).
LEGAL_REQUIREMENTS: dict[str, str] = {
    "eu-only-transfer": "Data may only go to organisations of EU member states",
    "no-law-enforcement": "Do not involve law-enforcement organisations",
    "members-only": "Only organisations of member nations",
}


#: The same vocabularies as Literal types, for typed API schemas (a unit test keeps them equal).
ServiceName = Literal[
    "malware-analysis",
    "threat-intelligence",
    "digital-forensics",
    "incident-response",
    "ics-ot-expertise",
    "law-enforcement-coordination",
    "network-monitoring",
]
DepthName = Literal["basic", "advanced", "expert"]
UrgencyName = Literal["immediate", "hours", "days", "weeks"]
EuImpactName = Literal["red", "yellow", "green", "white"]
RoleName = Literal["liaison", "analyst", "coordinator", "exercise-control", "observer", "admin"]


def sector_choices() -> list[str]:
    """Every valid sector value: ``sector`` and ``sector/subsector``."""
    values: list[str] = []
    for sector, subs in SECTORS.items():
        values.append(sector)
        values.extend(f"{sector}/{sub}" for sub in subs)
    return values


def top_sector(value: str) -> str:
    """``energy/electricity`` -> ``energy``."""
    return value.split("/", 1)[0]
