"""Federation directory API: thin routes over :mod:`vcisc.federation.services`."""

from datetime import datetime
from typing import Annotated, Literal

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from vcisc import authz
from vcisc.errors import Forbidden, NotFound
from vcisc.federation import services
from vcisc.federation.models import (
    ApiToken,
    Capability,
    Nation,
    Organisation,
    PointOfContact,
    Role,
    User,
)
from vcisc.http import DbInt, InputSchema, Page, StrictSchema, user_of
from vcisc.vocabulary import DepthName, RoleName, ServiceName

router = Router(tags=["directory"])

Text = Annotated[str, Field(max_length=200)]
LongText = Annotated[str, Field(max_length=4000)]
Lang = Annotated[str, Field(min_length=2, max_length=3, pattern=r"^[a-z]{2,3}$")]
NationCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
NationKindT = Literal["member", "partner", "observer"]
OrgKindT = Literal["cert", "cyber-command", "law-enforcement", "industry-partner", "secretariat"]
ServiceT = ServiceName
DepthT = DepthName
RoleT = RoleName
Short = Annotated[str, Field(min_length=1, max_length=60)]


# --- nations ------------------------------------------------------------------------------------


class NationOut(Schema):
    code: str
    name: str
    kind: str
    eu_member: bool
    active: bool


class NationIn(StrictSchema):
    code: NationCode
    name: Text
    kind: NationKindT
    eu_member: bool = False


class NationPatch(StrictSchema):
    name: Text | None = None
    kind: NationKindT | None = None
    eu_member: bool | None = None


def _nation(code: str) -> Nation:
    nation = Nation.objects.filter(code=code.upper()).first()
    if nation is None:
        raise NotFound(f"nation {code} not found")
    return nation


@router.get("/nations", response=list[NationOut])
def list_nations(
    request: HttpRequest, kind: NationKindT | None = None, active: bool | None = None
) -> QuerySet[Nation]:
    qs = Nation.objects.all()
    if kind:
        qs = qs.filter(kind=kind)
    if active is not None:
        qs = qs.filter(active=active)
    return qs


@router.post("/nations", response={201: NationOut})
def create_nation(request: HttpRequest, body: NationIn) -> Status[Nation]:
    return Status(201, services.create_nation(user_of(request), **body.model_dump()))


@router.get("/nations/{code}", response=NationOut)
def get_nation(request: HttpRequest, code: str) -> Nation:
    return _nation(code)


@router.patch("/nations/{code}", response=NationOut)
def update_nation(request: HttpRequest, code: str, body: NationPatch) -> Nation:
    return services.update(user_of(request), _nation(code), body.model_dump(exclude_unset=True))


@router.post("/nations/{code}/deactivate", response=NationOut)
def deactivate_nation(request: HttpRequest, code: str) -> Nation:
    return services.deactivate(user_of(request), _nation(code))


# --- organisations ------------------------------------------------------------------------------


class OrganisationOut(Schema):
    id: int
    name: str
    short_name: str
    kind: str
    nation: str | None = Field(None, alias="nation.code")
    active: bool


class OrganisationIn(StrictSchema):
    name: Text
    short_name: Annotated[str, Field(max_length=40)] = ""
    kind: OrgKindT
    nation: NationCode | None = None


class OrganisationPatch(StrictSchema):
    name: Text | None = None
    short_name: Annotated[str, Field(max_length=40)] | None = None
    kind: OrgKindT | None = None


def _organisation(org_id: int) -> Organisation:
    org = Organisation.objects.select_related("nation").filter(pk=org_id).first()
    if org is None:
        raise NotFound(f"organisation {org_id} not found")
    return org


class OrganisationFilter(InputSchema):
    nation: Annotated[str, Field(max_length=2)] | None = None
    kind: OrgKindT | None = None
    active: bool | None = None
    q: Annotated[str, Field(max_length=100, description="part of the name")] | None = None


@router.get("/organisations", response=list[OrganisationOut])
@paginate(Page)
def list_organisations(
    request: HttpRequest, filters: Query[OrganisationFilter]
) -> QuerySet[Organisation]:
    qs = Organisation.objects.select_related("nation")
    if filters.nation:
        qs = qs.filter(nation__code=filters.nation.upper())
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.active is not None:
        qs = qs.filter(active=filters.active)
    if filters.q:
        qs = qs.filter(name__icontains=filters.q)
    return qs


@router.post("/organisations", response={201: OrganisationOut})
def create_organisation(request: HttpRequest, body: OrganisationIn) -> Status[Organisation]:
    org = services.create_organisation(
        user_of(request),
        name=body.name,
        kind=body.kind,
        nation_code=body.nation,
        short_name=body.short_name,
    )
    return Status(201, org)


@router.get("/organisations/{org_id}", response=OrganisationOut)
def get_organisation(request: HttpRequest, org_id: int) -> Organisation:
    return _organisation(org_id)


@router.patch("/organisations/{org_id}", response=OrganisationOut)
def update_organisation(request: HttpRequest, org_id: int, body: OrganisationPatch) -> Organisation:
    return services.update(
        user_of(request), _organisation(org_id), body.model_dump(exclude_unset=True)
    )


@router.post("/organisations/{org_id}/deactivate", response=OrganisationOut)
def deactivate_organisation(request: HttpRequest, org_id: int) -> Organisation:
    return services.deactivate(user_of(request), _organisation(org_id))


# --- points of contact --------------------------------------------------------------------------


class ContactOut(Schema):
    id: int
    organisation_id: int
    name: str
    email: str
    phone: str
    webhook_url: str
    languages: list[str]
    time_zone: str
    on_call: str
    active: bool


class ContactIn(StrictSchema):
    organisation_id: int
    name: Text
    email: Annotated[str, Field(max_length=254)] = ""
    phone: Annotated[str, Field(max_length=40)] = ""
    webhook_url: Annotated[str, Field(max_length=200)] = ""
    languages: Annotated[list[Lang], Field(max_length=20)] = []
    time_zone: Annotated[str, Field(max_length=64)] = "UTC"
    on_call: Annotated[str, Field(max_length=300)] = "24/7"


class ContactPatch(StrictSchema):
    name: Text | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    webhook_url: Annotated[str, Field(max_length=200)] | None = None
    languages: Annotated[list[Lang], Field(max_length=20)] | None = None
    time_zone: Annotated[str, Field(max_length=64)] | None = None
    on_call: Annotated[str, Field(max_length=300)] | None = None


def _directory_reader(request: HttpRequest) -> User:
    user = user_of(request)
    if authz.is_observer_only(user) and not authz.is_secretariat(user):
        raise Forbidden("observers see nations and organisations only")
    return user


def _contact(request: HttpRequest, contact_id: int) -> PointOfContact:
    _directory_reader(request)
    contact = PointOfContact.objects.filter(pk=contact_id).first()
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    return contact


class ContactFilter(InputSchema):
    organisation: DbInt | None = None
    active: bool | None = None


@router.get("/contacts", response=list[ContactOut])
@paginate(Page)
def list_contacts(request: HttpRequest, filters: Query[ContactFilter]) -> QuerySet[PointOfContact]:
    _directory_reader(request)
    qs = PointOfContact.objects.all()
    if filters.organisation is not None:
        qs = qs.filter(organisation_id=filters.organisation)
    if filters.active is not None:
        qs = qs.filter(active=filters.active)
    return qs


@router.post("/contacts", response={201: ContactOut})
def create_contact(request: HttpRequest, body: ContactIn) -> Status[PointOfContact]:
    data = body.model_dump()
    org_id = data.pop("organisation_id")
    return Status(201, services.create_contact(user_of(request), organisation_id=org_id, **data))


@router.get("/contacts/{contact_id}", response=ContactOut)
def get_contact(request: HttpRequest, contact_id: int) -> PointOfContact:
    return _contact(request, contact_id)


@router.patch("/contacts/{contact_id}", response=ContactOut)
def update_contact(request: HttpRequest, contact_id: int, body: ContactPatch) -> PointOfContact:
    return services.update(
        user_of(request), _contact(request, contact_id), body.model_dump(exclude_unset=True)
    )


@router.post("/contacts/{contact_id}/deactivate", response=ContactOut)
def deactivate_contact(request: HttpRequest, contact_id: int) -> PointOfContact:
    return services.deactivate(user_of(request), _contact(request, contact_id))


# --- capabilities -------------------------------------------------------------------------------


class CapabilityOut(Schema):
    id: int
    organisation_id: int
    organisation: str = Field(alias="organisation.name")
    nation: str | None = Field(None, alias="organisation.nation.code")
    service_type: str
    depth: str
    description: str
    sectors: list[str]
    ics_protocols: list[str]
    ics_vendors: list[str]
    languages: list[str]
    max_concurrent: int
    remote: bool
    on_site: bool
    lead_time_hours: int
    handling_conditions: str
    legal_conditions: list[str]
    active: bool


class CapabilityFields(StrictSchema):
    depth: DepthT = "advanced"
    description: LongText = ""
    sectors: Annotated[list[Short], Field(max_length=40)] = []
    ics_protocols: Annotated[list[Short], Field(max_length=20)] = []
    ics_vendors: Annotated[list[Short], Field(max_length=40)] = []
    languages: Annotated[list[Lang], Field(max_length=20)] = []
    max_concurrent: Annotated[int, Field(ge=1, le=1000)] = 1
    remote: bool = True
    on_site: bool = False
    lead_time_hours: Annotated[int, Field(ge=0, le=24 * 90)] = 24
    handling_conditions: Annotated[str, Field(max_length=2000)] = ""
    legal_conditions: Annotated[list[Short], Field(max_length=10)] = []


class CapabilityIn(CapabilityFields):
    organisation_id: int
    service_type: ServiceT


class CapabilityPatch(StrictSchema):
    service_type: ServiceT | None = None
    depth: DepthT | None = None
    description: LongText | None = None
    sectors: Annotated[list[Short], Field(max_length=40)] | None = None
    ics_protocols: Annotated[list[Short], Field(max_length=20)] | None = None
    ics_vendors: Annotated[list[Short], Field(max_length=40)] | None = None
    languages: Annotated[list[Lang], Field(max_length=20)] | None = None
    max_concurrent: Annotated[int, Field(ge=1, le=1000)] | None = None
    remote: bool | None = None
    on_site: bool | None = None
    lead_time_hours: Annotated[int, Field(ge=0, le=24 * 90)] | None = None
    handling_conditions: Annotated[str, Field(max_length=2000)] | None = None
    legal_conditions: Annotated[list[Short], Field(max_length=10)] | None = None


class CapabilityFilter(InputSchema):
    service_type: ServiceT | None = None
    sector: str | None = None
    organisation: DbInt | None = None
    nation: str | None = None
    language: str | None = None
    active: bool | None = None


def _capability(request: HttpRequest, cap_id: int) -> Capability:
    _directory_reader(request)
    cap = Capability.objects.select_related("organisation__nation").filter(pk=cap_id).first()
    if cap is None:
        raise NotFound(f"capability {cap_id} not found")
    return cap


@router.get("/capabilities", response=list[CapabilityOut])
@paginate(Page)
def list_capabilities(request: HttpRequest, filters: Query[CapabilityFilter]) -> list[Capability]:
    _directory_reader(request)
    qs = Capability.objects.select_related("organisation__nation")
    if filters.service_type:
        qs = qs.filter(service_type=filters.service_type)
    if filters.organisation is not None:
        qs = qs.filter(organisation_id=filters.organisation)
    if filters.nation:
        qs = qs.filter(organisation__nation__code=filters.nation.upper())
    if filters.active is not None:
        qs = qs.filter(active=filters.active)
    caps = list(qs)
    # JSON list membership is filtered in Python: portable across SQLite and PostgreSQL.
    if filters.sector:
        top = filters.sector.split("/", 1)[0]
        caps = [c for c in caps if not c.sectors or filters.sector in c.sectors or top in c.sectors]
    if filters.language:
        caps = [c for c in caps if filters.language in c.languages]
    return caps


@router.post("/capabilities", response={201: CapabilityOut})
def create_capability(request: HttpRequest, body: CapabilityIn) -> Status[Capability]:
    data = body.model_dump()
    org_id = data.pop("organisation_id")
    return Status(201, services.create_capability(user_of(request), organisation_id=org_id, **data))


@router.get("/capabilities/{cap_id}", response=CapabilityOut)
def get_capability(request: HttpRequest, cap_id: int) -> Capability:
    return _capability(request, cap_id)


@router.patch("/capabilities/{cap_id}", response=CapabilityOut)
def update_capability(request: HttpRequest, cap_id: int, body: CapabilityPatch) -> Capability:
    return services.update(
        user_of(request), _capability(request, cap_id), body.model_dump(exclude_unset=True)
    )


@router.post("/capabilities/{cap_id}/deactivate", response=CapabilityOut)
def deactivate_capability(request: HttpRequest, cap_id: int) -> Capability:
    return services.deactivate(user_of(request), _capability(request, cap_id))


# --- users --------------------------------------------------------------------------------------


class UserOut(Schema):
    id: int
    email: str
    first_name: str
    last_name: str
    organisation_id: int | None
    roles: list[str]
    is_active: bool


class UserIn(StrictSchema):
    email: Annotated[str, Field(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
    organisation_id: int | None
    roles: Annotated[list[RoleT], Field(max_length=6)]
    password: Annotated[str, Field(min_length=12, max_length=200)] | None = None
    first_name: Annotated[str, Field(max_length=150)] = ""
    last_name: Annotated[str, Field(max_length=150)] = ""


class UserPatch(StrictSchema):
    first_name: Annotated[str, Field(max_length=150)] | None = None
    last_name: Annotated[str, Field(max_length=150)] | None = None
    roles: Annotated[list[RoleT], Field(max_length=6)] | None = None
    organisation_id: int | None = None


def _visible_users(user: User) -> QuerySet[User]:
    """Admins and coordinators see everyone; others their own organisation's colleagues."""
    if user.has_role(Role.ADMIN) or authz.is_coordinator(user):
        return User.objects.all()
    if user.organisation_id is None:
        return User.objects.filter(pk=user.pk)
    return User.objects.filter(organisation_id=user.organisation_id)


def _user(request: HttpRequest, user_id: int) -> User:
    found = _visible_users(user_of(request)).filter(pk=user_id).first()
    if found is None:
        raise NotFound(f"user {user_id} not found")
    return found


@router.get("/users/me", response=UserOut)
def me(request: HttpRequest) -> User:
    return user_of(request)


class UserFilter(InputSchema):
    organisation: DbInt | None = None


@router.get("/users", response=list[UserOut])
@paginate(Page)
def list_users(request: HttpRequest, filters: Query[UserFilter]) -> QuerySet[User]:
    qs = _visible_users(user_of(request))
    if filters.organisation is not None:
        qs = qs.filter(organisation_id=filters.organisation)
    return qs


@router.post("/users", response={201: UserOut})
def create_user(request: HttpRequest, body: UserIn) -> Status[User]:
    return Status(201, services.create_user(user_of(request), **body.model_dump()))


@router.get("/users/{user_id}", response=UserOut)
def get_user(request: HttpRequest, user_id: int) -> User:
    return _user(request, user_id)


@router.patch("/users/{user_id}", response=UserOut)
def update_user(request: HttpRequest, user_id: int, body: UserPatch) -> User:
    return services.update(
        user_of(request), _user(request, user_id), body.model_dump(exclude_unset=True)
    )


@router.post("/users/{user_id}/deactivate", response=UserOut)
def deactivate_user(request: HttpRequest, user_id: int) -> User:
    return services.deactivate(user_of(request), _user(request, user_id))


# --- tokens -------------------------------------------------------------------------------------


class TokenOut(Schema):
    key_id: str
    name: str
    user_id: int
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; store it now")


class TokenIn(StrictSchema):
    name: Annotated[str, Field(max_length=100)] = ""
    days: Annotated[int, Field(ge=1, le=3650)] = 90
    user_id: int | None = Field(None, description="admins may issue tokens for others")


def _tokens(user: User) -> QuerySet[ApiToken]:
    if user.has_role(Role.ADMIN):
        return ApiToken.objects.all()
    return ApiToken.objects.filter(user=user)


@router.get("/tokens", response=list[TokenOut])
def list_tokens(request: HttpRequest) -> QuerySet[ApiToken]:
    return _tokens(user_of(request))


@router.post("/tokens", response={201: TokenCreated})
def create_token(request: HttpRequest, body: TokenIn) -> Status[dict[str, object]]:
    actor = user_of(request)
    owner = actor if body.user_id is None else _user(request, body.user_id)
    row, text = services.create_token(actor, owner, days=body.days, name=body.name)
    return Status(201, {**TokenOut.from_orm(row).model_dump(), "token": text})


@router.post("/tokens/{key_id}/revoke", response=TokenOut)
def revoke_token(request: HttpRequest, key_id: str) -> ApiToken:
    actor = user_of(request)
    row = _tokens(actor).filter(key_id=key_id).first()
    if row is None:
        raise NotFound(f"token {key_id} not found")
    return services.revoke_token(actor, row)
