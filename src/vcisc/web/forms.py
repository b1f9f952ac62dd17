"""The console's forms. Choices come from the vocabularies (:mod:`vcisc.vocabulary`,
:mod:`vcisc.tlp`); the rules beyond a field's own shape stay in the services, whose
:class:`~vcisc.errors.Invalid` errors the views attach to the field they name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from vcisc.errors import Invalid
from vcisc.federation.models import Organisation, OrgKind
from vcisc.sharing.observables import ObservableType
from vcisc.tlp import Tlp
from vcisc.vocabulary import (
    ICS_PROTOCOLS,
    LEGAL_REQUIREMENTS,
    RSIT,
    SECTORS,
    EuImpact,
    ServiceType,
    Severity,
    Urgency,
)

__all__ = [
    "CommaListField",
    "MemberForm",
    "NoteForm",
    "OfferForm",
    "RequestForm",
    "ReviewForm",
    "RouteForm",
    "ServiceForm",
    "SitrepForm",
    "TaskForm",
]

Choices = list[tuple[str, Any]]


def _words(value: str) -> str:
    """``ict-service-management`` -> ``ict service management`` (the vocabulary's own words)."""
    return value.replace("-", " ")


def _sector_choices() -> Choices:
    """NIS2 sectors; sectors with subsectors become groups (the sector itself, then each one)."""
    choices: Choices = [("", "Choose a sector")]
    for sector, subsectors in SECTORS.items():
        if subsectors:
            group = [(sector, f"{_words(sector)} (whole sector)")]
            group += [(f"{sector}/{sub}", _words(sub)) for sub in subsectors]
            choices.append((_words(sector), group))
        else:
            choices.append((sector, _words(sector)))
    return choices


def _rsit_type_choices() -> Choices:
    """RSIT types grouped by class; the service checks that the type belongs to the class."""
    choices: Choices = [("", "Choose a type")]
    for rsit_class, types in RSIT.items():
        choices.append((_words(rsit_class), [(t, _words(t)) for t in types]))
    return choices


class CommaListField(forms.Field):
    """A list typed as text, items separated by commas or spaces (``et, en``)."""

    widget = forms.TextInput

    def __init__(
        self,
        *,
        normalise: Callable[[str], str] = str.strip,
        max_items: int = 20,
        max_item_length: int = 60,
        **kwargs: Any,
    ) -> None:
        self.normalise = normalise
        self.max_items = max_items
        self.max_item_length = max_item_length
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[str]:
        if value in self.empty_values:
            return []
        text = str(value)
        if "\x00" in text:
            raise ValidationError("Null characters are not allowed.", code="null_characters")
        items = [self.normalise(part) for part in re.split(r"[,\s]+", text) if part.strip()]
        if len(items) > self.max_items:
            raise ValidationError(f"At most {self.max_items} items.", code="max_items")
        for item in items:
            if len(item) > self.max_item_length:
                raise ValidationError(
                    f"Each item has at most {self.max_item_length} characters.",
                    code="max_item_length",
                )
        return items

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(str(v) for v in value)
        return value


class OrganisationChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        org: Organisation = obj
        return f"{org.name} ({org.nation.code})" if org.nation else org.name


class ServiceForm(forms.Form):
    """A form whose input a service validates further; its errors land on the field they name."""

    required_css_class = "required"

    #: Service field names that differ from the form's (``assignee_id`` -> ``assignee``).
    FIELD_ALIASES: dict[str, str] = {}
    #: Element ids, distinct per form so that several forms share a page.
    AUTO_ID = "id_%s"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", self.AUTO_ID)
        super().__init__(*args, **kwargs)

    def add_domain_error(self, exc: Invalid) -> None:
        """Show a service's validation error next to the field it names (else above the form)."""
        field = exc.extra.get("field")
        if isinstance(field, str):
            message = exc.message.removeprefix(f"{field}: ")
            name = self.FIELD_ALIASES.get(field, field)
            if name in self.fields:
                self.add_error(name, message)
                return
        self.add_error(None, exc.message)

    def service_data(self) -> dict[str, Any]:
        """The cleaned input, without the optional values left empty (the service's defaults)."""
        return {k: v for k, v in self.cleaned_data.items() if v not in (None, "")}


class RequestForm(ServiceForm):
    """A request for assistance as the requester files it (the content of the RFA schema)."""

    required_css_class = "required"

    #: How the page groups the fields (each group a fieldset with this legend).
    SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
        (
            "The incident",
            (
                "title",
                "affected_entity",
                "description",
                "rsit_class",
                "rsit_type",
                "sector",
                "severity",
                "eu_impact",
                "impact",
                "measures_taken",
            ),
        ),
        (
            "The help needed",
            (
                "services_needed",
                "urgency",
                "needed_by",
                "languages",
                "ics_protocols",
                "ics_vendors",
                "other_support",
            ),
        ),
        (
            "Sharing and caveats",
            (
                "tlp",
                "handling_caveats",
                "legal_requirements",
                "involves_personal_data",
                "excluded_nations",
                "excluded_organisations",
            ),
        ),
    )

    title = forms.CharField(min_length=3, max_length=200)
    affected_entity = forms.CharField(
        max_length=200, help_text="The organisation or system that was hit."
    )
    description = forms.CharField(
        max_length=20000, widget=forms.Textarea(attrs={"rows": 6}), label="What happened"
    )
    rsit_class = forms.ChoiceField(
        label="Incident class (RSIT)",
        choices=[("", "Choose a class"), *((c, _words(c)) for c in RSIT)],
    )
    rsit_type = forms.ChoiceField(
        label="Incident type (RSIT)",
        choices=_rsit_type_choices(),
        help_text="A type of the chosen class (ENISA RSIT v1.3).",
    )
    sector = forms.ChoiceField(label="Sector (NIS2)", choices=_sector_choices())
    severity = forms.TypedChoiceField(
        label="Severity (PPD-41 level)",
        choices=[("", "Choose a level"), *reversed(Severity.choices)],
        coerce=int,
        empty_value=None,
        help_text="Sets the deadlines for triage, first offer and acceptance.",
    )
    eu_impact = forms.ChoiceField(
        label="EU impact severity",
        choices=[("", "Not assessed"), *EuImpact.choices],
        required=False,
    )
    services_needed = forms.MultipleChoiceField(
        label="Services needed",
        choices=ServiceType.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    urgency = forms.ChoiceField(choices=[("", "Choose the urgency"), *Urgency.choices])
    tlp = forms.ChoiceField(
        label="TLP",
        choices=[("", "Choose a TLP label"), *Tlp.choices()],
        help_text="TLP:RED content reaches only the named members of the engagement.",
    )
    impact = forms.CharField(
        max_length=10000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    measures_taken = forms.CharField(
        max_length=10000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    other_support = forms.CharField(
        label="Other support already available",
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    handling_caveats = forms.CharField(
        max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    legal_requirements = forms.MultipleChoiceField(
        choices=list(LEGAL_REQUIREMENTS.items()),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    involves_personal_data = forms.BooleanField(
        label="The incident involves personal data", required=False
    )
    languages = CommaListField(
        normalise=lambda s: s.strip().lower(),
        required=False,
        help_text="ISO 639 codes separated by commas, e.g. et, en.",
    )
    ics_protocols = forms.MultipleChoiceField(
        label="ICS protocols",
        choices=[(p, p) for p in ICS_PROTOCOLS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    ics_vendors = CommaListField(
        label="ICS vendors", required=False, help_text="Separated by commas."
    )
    excluded_nations = CommaListField(
        normalise=lambda s: s.strip().upper(),
        max_items=60,
        max_item_length=2,
        required=False,
        help_text="ISO 3166 codes of nations not to ask, separated by commas, e.g. FR, DE.",
    )
    excluded_organisations = OrganisationChoiceField(
        queryset=Organisation.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Organisations not to ask.",
    )
    needed_by = forms.DateTimeField(
        label="Needed by (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="Optional: after this time, a circulated request without accepted help expires.",
    )

    def __init__(self, *args: Any, requester: Organisation | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["excluded_organisations"]
        assert isinstance(field, OrganisationChoiceField)
        others = Organisation.objects.filter(active=True).exclude(kind=OrgKind.SECRETARIAT)
        if requester is not None:
            others = others.exclude(pk=requester.pk)
        field.queryset = others.select_related("nation").order_by("name")

    def sections(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(legend, [self[name] for name in names]) for legend, names in self.SECTIONS]

    def rfa_data(self) -> dict[str, Any]:
        """The cleaned input in the shape :func:`vcisc.assistance.services.create_rfa` takes."""
        data = dict(self.cleaned_data)
        data["excluded_organisations"] = [org.pk for org in data["excluded_organisations"]]
        return data


def _datetime_field(label: str, *, required: bool = True, help_text: str = "") -> forms.Field:
    return forms.DateTimeField(
        label=label,
        required=required,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=help_text,
    )


def _item_tlp_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        label="TLP",
        choices=[("", "The request's TLP"), *Tlp.choices()],
        required=False,
        help_text="TLP:RED items reach only the engagement's named members.",
    )


class RouteForm(ServiceForm):
    """The coordinator's routing: picked organisations, or the top N suggested matches."""

    AUTO_ID = "route_%s"

    organisations = forms.TypedMultipleChoiceField(
        label="Organisations to route to",
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    top = forms.IntegerField(
        label="Or route to the top N matches",
        min_value=1,
        max_value=50,
        initial=3,
        required=False,
    )

    def __init__(
        self, *args: Any, candidates: Sequence[tuple[Any, Any]] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.set_candidates(candidates)

    def set_candidates(self, candidates: Sequence[tuple[Any, Any]]) -> None:
        field = self.fields["organisations"]
        assert isinstance(field, forms.TypedMultipleChoiceField)
        field.choices = list(candidates)


class OfferForm(ServiceForm):
    """An offer of help, as a routed organisation's liaison makes it."""

    AUTO_ID = "offer_%s"

    scope = forms.CharField(
        max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), help_text="What you offer."
    )
    team_size = forms.IntegerField(min_value=1, max_value=500)
    available_from = _datetime_field("Available from (UTC)")
    available_until = _datetime_field("Available until (UTC)")
    services = forms.MultipleChoiceField(
        choices=ServiceType.choices, widget=forms.CheckboxSelectMultiple, required=False
    )
    remote = forms.BooleanField(label="Remote", required=False, initial=True)
    on_site = forms.BooleanField(label="On site", required=False)
    conditions = forms.CharField(
        max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def service_data(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data["conditions"] = data.get("conditions") or ""
        return data


class TaskForm(ServiceForm):
    AUTO_ID = "task_%s"
    FIELD_ALIASES = {"assignee_id": "assignee"}

    title = forms.CharField(max_length=200)
    description = forms.CharField(
        max_length=10000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    assignee = forms.TypedChoiceField(label="Assigned to", coerce=int, empty_value=None)
    due_at = _datetime_field("Due (UTC)", required=False)
    tlp = _item_tlp_field()

    def __init__(
        self, *args: Any, participants: Sequence[tuple[Any, Any]] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", "Choose a participant"), *participants]

    def service_data(self) -> dict[str, Any]:
        data = super().service_data()
        data["assignee_id"] = data.pop("assignee")
        return data


class MemberForm(ServiceForm):
    """Name a colleague of one's own organisation as a member of the engagement (TLP:RED)."""

    AUTO_ID = "member_%s"
    FIELD_ALIASES = {"user_id": "user"}

    user = forms.TypedChoiceField(label="Colleague", coerce=int, empty_value=None)

    def __init__(
        self, *args: Any, colleagues: Sequence[tuple[Any, Any]] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["user"]
        assert isinstance(field, forms.TypedChoiceField)
        field.choices = [("", "Choose a colleague"), *colleagues]

    def service_data(self) -> dict[str, Any]:
        return {"user_id": self.cleaned_data["user"]}


class NoteForm(ServiceForm):
    AUTO_ID = "note_%s"
    body = forms.CharField(label="Note", max_length=20000, widget=forms.Textarea(attrs={"rows": 3}))
    tlp = _item_tlp_field()


class IndicatorForm(ServiceForm):
    """One indicator by hand (vcisc.engagements.indicators.add_indicator)."""

    AUTO_ID = "indicator_%s"
    value = forms.CharField(
        max_length=16384,
        help_text="Defanged forms such as hxxp:// and [.] are understood.",
    )
    type = forms.ChoiceField(
        choices=[("", "Guess from the value"), *((t.value, t.value) for t in ObservableType)],
        required=False,
    )
    tlp = _item_tlp_field()
    description = forms.CharField(
        max_length=5000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    for_detection = forms.BooleanField(label="Meant for detection", required=False, initial=True)

    def service_data(self) -> dict[str, Any]:
        data = super().service_data()
        data["for_detection"] = bool(self.cleaned_data.get("for_detection"))
        return data


class IndicatorImportForm(ServiceForm):
    """Indicators in bulk (vcisc.engagements.indicators.import_indicators)."""

    AUTO_ID = "import_%s"
    FIELD_ALIASES = {"content": "content", "format": "format"}
    format = forms.ChoiceField(
        choices=[
            ("csv", "CSV (a header row: type,value,tlp,…)"),
            ("text", "Free text (indicators are extracted)"),
            ("stix", "STIX 2.1 bundle"),
            ("misp", "MISP event JSON"),
        ]
    )
    content = forms.CharField(
        max_length=5_000_000, widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"})
    )
    skip_invalid = forms.BooleanField(
        label="Skip invalid objects (otherwise one invalid object rejects the whole import)",
        required=False,
    )

    def service_data(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


class SitrepForm(ServiceForm):
    AUTO_ID = "sitrep_%s"
    summary = forms.CharField(max_length=20000, widget=forms.Textarea(attrs={"rows": 3}))
    actions_taken = forms.CharField(
        max_length=20000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    next_steps = forms.CharField(
        max_length=20000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    outlook = forms.ChoiceField(
        choices=[("improving", "Improving"), ("stable", "Stable"), ("worsening", "Worsening")],
        initial="stable",
    )
    tlp = _item_tlp_field()


class ReviewForm(ServiceForm):
    AUTO_ID = "review_%s"
    what_helped = forms.CharField(max_length=20000, widget=forms.Textarea(attrs={"rows": 3}))
    what_did_not = forms.CharField(
        label="What did not help",
        max_length=20000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    lessons = forms.CharField(
        label="Lessons learned", max_length=20000, widget=forms.Textarea(attrs={"rows": 3})
    )
    first_deliverable_at = _datetime_field(
        "First deliverable received (UTC)",
        required=False,
        help_text="When the help first produced something usable.",
    )
    rating = forms.TypedChoiceField(
        choices=[("", "No rating"), *((n, str(n)) for n in range(1, 6))],
        coerce=int,
        empty_value=None,
        required=False,
        help_text="1 (poor) to 5 (excellent).",
    )
    tlp = _item_tlp_field()
