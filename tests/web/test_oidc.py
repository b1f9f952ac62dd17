"""Sign-in with a nation's identity provider (OpenID Connect, authorization code + PKCE) end to
end: Django's test client against the provider of ``tests/oidc_provider.py`` running on
127.0.0.1. A good answer creates or updates the account and signs in (or goes on to VCISC's own
second factor); every bad one answers 4xx, changes nothing, and leaves an audit record. Accounts
are linked by (issuer, subject); the provider's discovery document and keys are kept for
``VCISC_OIDC_CACHE_SECONDS``; signing out continues at the provider (RP-initiated logout)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from django.test import Client
from django_otp.oath import TOTP

from tests.oidc_provider import TestProvider
from tests.web.logcapture import every_logger_at_debug, leaks
from vcisc.audit.models import AuditRecord
from vcisc.config import ConfigError, OidcProvider, load_config
from vcisc.federation import services as fs
from vcisc.federation.models import ExternalIdentity, Organisation, User
from vcisc.web.middleware import AUTH_AT, SEEN_AT
from vcisc.web.oidc import SignInRefused, map_claims

pytestmark = pytest.mark.django_db

CLIENT_ID = "vcisc-test"
CLIENT_SECRET = "test-secret-" + "x" * 20
LABEL = "CERT-EE identity provider"
PERSON = {
    "sub": "ee-0042",
    "email": "Kadri.Tamm@cert.ee.example",
    "email_verified": True,
    "given_name": "Kadri",
    "family_name": "Tamm",
    "vcisc_organisation": "CERT-EE",
    "vcisc_roles": ["liaison", "admin"],
    "amr": ["pwd", "otp"],
}


@pytest.fixture(scope="module")
def idp() -> Iterator[TestProvider]:
    provider = TestProvider(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    yield provider
    provider.stop()


@dataclass
class Directory:
    orgs: dict[str, Organisation]
    users: dict[str, User]


@pytest.fixture
def federation(db: Any) -> Directory:
    """Just the part of the directory these tests need (the shared fixture has far more)."""
    for code, name in [("EE", "Estonia"), ("DE", "Germany"), ("UA", "Ukraine")]:
        fs.create_nation(None, code=code, name=name, kind="member", eu_member=code != "UA")
    orgs = {
        key: fs.create_organisation(None, name=name, kind="cert", nation_code=key.upper())
        for key, name in [("ee", "CERT-EE"), ("de", "CERT-Bund"), ("ua", "CERT-UA")]
    }
    users = {
        key: fs.create_user(None, email=email, organisation_id=orgs[org].pk, roles=[role])
        for key, email, org, role in [
            ("ee", "liaison@cert.ee.example", "ee", "liaison"),
            ("ee_analyst", "analyst@cert.ee.example", "ee", "analyst"),
            ("de", "liaison@cert-bund.de.example", "de", "liaison"),
        ]
    }
    return Directory(orgs, users)


def _config(idp: TestProvider, **overrides: Any) -> OidcProvider:
    entry: dict[str, Any] = {
        "name": "cert-ee",
        "label": LABEL,
        "issuer": idp.issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "organisations": ["CERT-EE"],
        **overrides,
    }
    return OidcProvider.model_validate(entry)


@pytest.fixture(autouse=True)
def _configured(idp: TestProvider, settings: Any) -> Iterator[None]:
    """One provider, VCISC's own second factor; a fresh identity and rate-limit counters."""
    from django.core.cache import cache

    cache.clear()
    idp.reset(PERSON)
    settings.VCISC_OIDC_PROVIDERS = (_config(idp),)
    yield
    cache.clear()


def _use(settings: Any, idp: TestProvider, **overrides: Any) -> None:
    settings.VCISC_OIDC_PROVIDERS = (_config(idp, **overrides),)


# --- driving the flow -------------------------------------------------------------------------


def _to_provider(client: Client, next_: str = "") -> str:
    """Start a sign-in; the authorization URL VCISC sends the browser to."""
    resp = client.get("/login/oidc/cert-ee/" + (f"?next={next_}" if next_ else ""))
    assert resp.status_code == 302, resp.content[:500]
    return str(resp["Location"])


def _at_provider(url: str) -> str:
    """The browser at the provider, which approves at once: the callback URL it sends back."""
    resp = httpx.get(url)
    assert resp.status_code == 302, resp.text
    return str(resp.headers["location"])


def _back(client: Client, callback: str) -> Any:
    parts = urlsplit(callback)
    assert parts.path == "/login/oidc/cert-ee/callback/"
    return client.get(f"{parts.path}?{parts.query}")


def _sign_in(client: Client, next_: str = "") -> Any:
    return _back(client, _at_provider(_to_provider(client, next_)))


def _signed_in(client: Client) -> bool:
    return bool(client.get("/").status_code == 200)


def _users() -> list[tuple[Any, ...]]:
    """Accounts and their links to identities: what a refusal must leave as it was."""
    return list(
        User.objects.order_by("pk").values_list(
            "email", "organisation_id", "roles", "is_active", "first_name"
        )
    ) + list(
        ExternalIdentity.objects.order_by("pk").values_list(
            "user_id", "issuer", "subject", "last_login_at"
        )
    )


def _account_of(client: Client) -> User:
    """The account a browser is signed in as."""
    return User.objects.get(pk=client.session["_auth_user_id"])


def _refused(client: Client, resp: Any, status: int, reason: str) -> AuditRecord:
    """The page says what went wrong (no code or token in it); not signed in; audited."""
    page = resp.content.decode()
    assert resp.status_code == status, page[:800]
    assert f"Sign-in with {LABEL} failed" in page
    assert "code=" not in page and "eyJ" not in page
    assert "Content-Security-Policy" in resp.headers
    assert not _signed_in(client)
    last = AuditRecord.objects.order_by("-seq").first()
    assert last is not None and last.action == "auth.oidc-failed", last
    assert last.after and last.after["reason"] == reason and last.after["provider"] == "cert-ee"
    return last


def _totp_code(secret: str) -> str:
    return f"{TOTP(base64.b32decode(secret.replace(' ', ''))).token():06d}"


# --- good answers -----------------------------------------------------------------------------


def test_sign_in_page_offers_each_provider(federation: Directory) -> None:
    page = Client().get("/login/?next=/requests/new/").content.decode()
    assert f'href="/login/oidc/cert-ee/?next=/requests/new/">{LABEL}</a>' in page
    assert Client().get("/login/oidc/nobody/").status_code == 404


def test_first_sign_in_creates_the_account_then_asks_for_the_second_factor(
    federation: Directory, idp: TestProvider
) -> None:
    client = Client()
    authorize = _to_provider(client, "/requests/new/")
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{idp.issuer}/authorize?")
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [CLIENT_ID]
    assert query["nonce"] and query["state"] and query["scope"] == ["openid email profile"]

    resp = _back(client, _at_provider(authorize))
    # The provider vouched for the person; VCISC's own TOTP enrolment comes next.
    assert resp.status_code == 302 and resp["Location"] == "/login/enrol/", resp.content[:500]
    assert not _signed_in(client)
    user = User.objects.get(email="kadri.tamm@cert.ee.example")
    assert user.organisation == federation.orgs["ee"]
    assert user.roles == ["liaison"]  # "admin" is not the provider's to grant
    assert (user.first_name, user.last_name, user.has_usable_password()) == ("Kadri", "Tamm", False)
    created = AuditRecord.objects.get(
        action="create", object_type="federation.user", object_id=str(user.pk)
    )
    assert created.actor == "system"
    verified = AuditRecord.objects.get(action="auth.oidc-verified")
    assert verified.after is not None
    assert verified.after["provider"] == "cert-ee" and verified.after["subject"] == "ee-0042"
    assert verified.after["ignored_roles"] == ["admin"]
    assert verified.after["second_factor"] == "vcisc" and verified.after["account"] == "created"
    identity = ExternalIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (idp.issuer, "ee-0042")
    assert identity.last_login_at == identity.created_at
    assert AuditRecord.objects.filter(
        action="create", object_type="federation.externalidentity", object_id=str(identity.pk)
    ).exists()

    page = client.get("/login/enrol/").content.decode()
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
    assert secret
    resp = client.post("/login/enrol/", {"code": _totp_code(secret[1])})
    assert resp.status_code == 200 and "/requests/new/" in resp.content.decode()
    assert _signed_in(client)
    assert AuditRecord.objects.filter(action="auth.signed-in", actor_id=user.pk).exists()
    # Signing out, after VCISC's own second factor too, continues at the provider.
    resp = client.post("/logout/")
    assert resp.status_code == 302 and resp["Location"].startswith(f"{idp.issuer}/logout?")
    assert not _signed_in(client)


def test_the_providers_second_factor_is_trusted_only_when_configured_and_shown(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(settings, idp, second_factor="idp")
    client = Client()
    before = time.time()
    resp = _sign_in(client, "/requests/new/")
    assert resp.status_code == 302 and resp["Location"] == "/requests/new/"
    assert _signed_in(client)
    session = client.session
    assert session[AUTH_AT] >= before and session[SEEN_AT] >= before
    record = AuditRecord.objects.get(action="auth.oidc-verified")
    assert record.after is not None and record.after["amr"] == ["pwd", "otp"]

    # A password alone at the provider: on to VCISC's own code, as after a password here.
    idp.behaviour.identity["amr"] = ["pwd"]
    other = Client()
    assert _sign_in(other)["Location"] == "/login/enrol/"
    assert not _signed_in(other)


def test_later_sign_ins_follow_the_claims_within_what_the_provider_may_grant(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(
        settings,
        idp,
        second_factor="idp",
        organisations=["CERT-EE", "CERT-UA"],
        link_verified_email=True,
    )
    user = federation.users["ee_analyst"]  # an existing password account of CERT-EE
    fs.update(None, user, {"roles": ["analyst", "admin"]})  # admin: given in VCISC
    idp.behaviour.identity.update(email=user.email, vcisc_roles=["liaison", "analyst"])
    assert _sign_in(Client()).status_code == 302
    user.refresh_from_db()
    assert user.roles == ["admin", "liaison", "analyst"]  # admin kept: not the provider's
    updates = AuditRecord.objects.filter(action="update", object_id=str(user.pk))
    assert updates.count() == 2
    linked = AuditRecord.objects.filter(action="auth.oidc-verified").order_by("-seq").first()
    assert linked is not None and linked.after is not None and linked.after["account"] == "email"
    assert ExternalIdentity.objects.get(user=user).subject == "ee-0042"

    # Unchanged claims change nothing; changed ones are an audited update again.
    assert _sign_in(Client()).status_code == 302
    assert updates.count() == 2
    idp.behaviour.identity.update(vcisc_roles="observer", vcisc_organisation="CERT-UA")
    assert _sign_in(Client()).status_code == 302
    user.refresh_from_db()
    assert user.roles == ["admin", "observer"]
    assert user.organisation == federation.orgs["ua"]
    last = updates.order_by("-seq").first()
    assert last is not None and last.before is not None and last.after is not None
    assert last.before["roles"] == ["admin", "liaison", "analyst"]
    assert last.after["organisation_id"] == federation.orgs["ua"].pk


def test_claims_missing_from_the_id_token_come_from_userinfo(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(settings, idp, second_factor="idp")
    idp.behaviour.userinfo_only = {"email", "vcisc_organisation", "vcisc_roles"}
    client = Client()
    assert _sign_in(client).status_code == 302 and _signed_in(client)
    assert User.objects.get(email="kadri.tamm@cert.ee.example").roles == ["liaison"]


# --- bad answers: 4xx, nothing changed, an audit record ---------------------------------------


@pytest.mark.parametrize(
    ("reason", "misbehave"),
    [
        ("nonce", {"id_token_claims": {"nonce": "not-the-one-sent"}}),
        ("issuer", {"id_token_claims": {"iss": "https://idp.elsewhere.example"}}),
        ("audience", {"id_token_claims": {"aud": "another-client"}}),
        ("audience", {"id_token_claims": {"aud": "another-client", "azp": CLIENT_ID}}),
        ("signature", {"foreign_key": True}),
        ("signature", {"unsigned": True}),
        ("expired", {"expires_in": -3600}),
    ],
)
def test_a_bad_id_token_is_refused(
    federation: Directory, idp: TestProvider, reason: str, misbehave: dict[str, Any]
) -> None:
    for name, value in misbehave.items():
        setattr(idp.behaviour, name, value)
    users = _users()
    client = Client()
    record = _refused(client, _sign_in(client), 400, reason)
    assert _users() == users
    assert record.actor == "anonymous" and "ip" in (record.after or {})


def test_a_tampered_state_or_issuer_is_refused(federation: Directory, idp: TestProvider) -> None:
    users = _users()
    client = Client()
    callback = _at_provider(_to_provider(client))
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    tampered = {**query, "state": query["state"][:-2] + "xx"}
    _refused(client, client.get(f"{parts.path}?{urlencode(tampered)}"), 400, "state")
    # RFC 9207: an answer that says it comes from another issuer.
    mixed_up = {**query, "iss": "https://idp.elsewhere.example"}
    _refused(client, client.get(f"{parts.path}?{urlencode(mixed_up)}"), 400, "issuer")
    assert idp.codes[query["code"]]["used"] is False  # neither reached the token endpoint
    assert _users() == users
    # The genuine answer still works afterwards.
    assert _back(client, callback)["Location"] == "/login/enrol/"


def test_a_replayed_answer_or_code_is_refused(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(settings, idp, second_factor="idp")
    first = Client()
    callback = _at_provider(_to_provider(first))
    assert _back(first, callback).status_code == 302 and _signed_in(first)
    users = _users()
    # The same answer again, in another browser: its state belongs to no sign-in there.
    other = Client()
    _refused(other, _back(other, callback), 400, "state")
    # The used code with a state of the other browser's own: the provider refuses the code.
    code = parse_qs(urlsplit(callback).query)["code"][0]
    state = parse_qs(urlsplit(_to_provider(other)).query)["state"][0]
    resp = other.get(f"/login/oidc/cert-ee/callback/?{urlencode({'code': code, 'state': state})}")
    record = _refused(other, resp, 400, "token-refused")
    assert idp.last_token_error == "code-used" and record.after is not None
    assert record.after["error"] == "invalid_grant"
    assert _users() == users


def test_a_code_from_another_sign_in_fails_pkce(federation: Directory, idp: TestProvider) -> None:
    """A code injected into another flow of the same browser: the verifier sent with it is that
    flow's, which does not match the code's challenge, so the provider refuses (RFC 7636 §4.6)."""
    users = _users()
    client = Client()
    code = parse_qs(urlsplit(_at_provider(_to_provider(client))).query)["code"][0]
    state = parse_qs(urlsplit(_to_provider(client)).query)["state"][0]
    resp = client.get(f"/login/oidc/cert-ee/callback/?{urlencode({'code': code, 'state': state})}")
    _refused(client, resp, 400, "token-refused")
    assert idp.last_token_error == "pkce"
    assert _users() == users


@pytest.mark.parametrize(
    ("reason", "identity"),
    [
        ("organisation", {"vcisc_organisation": "CERT-Bund"}),
        ("organisation", {"vcisc_organisation": None}),
        ("no-role", {"vcisc_roles": ["admin", "coordinator"]}),
        ("no-role", {"vcisc_roles": []}),
        ("email-unverified", {"email_verified": False}),
        ("email-missing", {"email": "not an address"}),
    ],
)
def test_claims_the_provider_may_not_make_are_refused(
    federation: Directory, idp: TestProvider, reason: str, identity: dict[str, Any]
) -> None:
    idp.behaviour.identity.update(identity)
    users = _users()
    client = Client()
    record = _refused(client, _sign_in(client), 403, reason)
    assert _users() == users
    if reason == "no-role":
        assert record.after is not None
        assert record.after["requested_roles"] == identity["vcisc_roles"]


def test_the_provider_refusing_is_reported(federation: Directory, idp: TestProvider) -> None:
    idp.behaviour.deny = "access_denied"
    client = Client()
    resp = _sign_in(client)
    _refused(client, resp, 403, "provider-error")
    assert "(access_denied)" in resp.content.decode()


def test_accounts_it_may_not_sign_in_are_refused(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(settings, idp, second_factor="idp", link_verified_email=True)
    # Another organisation's account, although the provider names its own organisation.
    german = federation.users["de"]
    idp.behaviour.identity.update(email=german.email)
    users = _users()
    client = Client()
    record = _refused(client, _sign_in(client), 403, "account-organisation")
    assert record.actor_id == german.pk
    # A deactivated account of its own organisation.
    estonian = federation.users["ee"]
    fs.deactivate(None, estonian)
    idp.behaviour.identity.update(email=estonian.email)
    users = _users()
    _refused(client, _sign_in(client), 403, "deactivated")
    assert _users() == users


# --- accounts are linked by (issuer, subject) ---------------------------------------------------


def test_an_existing_account_is_linked_by_e_mail_only_when_configured_and_verified(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(settings, idp, second_factor="idp")
    analyst = federation.users["ee_analyst"]
    idp.behaviour.identity.update(email=analyst.email)
    users = _users()
    client = Client()
    # The default: an account with the address exists, and the provider may not take it over.
    record = _refused(client, _sign_in(client), 403, "account-exists")
    assert record.actor_id == analyst.pk and _users() == users
    # Allowed, but the provider does not say it verified the address.
    _use(settings, idp, second_factor="idp", link_verified_email=True)
    del idp.behaviour.identity["email_verified"]
    record = _refused(client, _sign_in(client), 403, "email-unverified")
    assert record.actor_id == analyst.pk and _users() == users
    # Allowed and verified: linked, signed in as that account.
    idp.behaviour.identity["email_verified"] = True
    assert _sign_in(client).status_code == 302 and _account_of(client) == analyst
    assert ExternalIdentity.objects.filter(user=analyst, subject="ee-0042").count() == 1


def test_later_sign_ins_follow_the_subject_whatever_the_e_mail_address(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(settings, idp, second_factor="idp", link_verified_email=True)
    first = Client()
    assert _sign_in(first).status_code == 302
    kadri = _account_of(first)
    assert kadri.email == "kadri.tamm@cert.ee.example"
    # A new address at the provider: the same account, its address in VCISC unchanged.
    idp.behaviour.identity["email"] = "k.tamm@new.cert.ee.example"
    client = Client()
    assert _sign_in(client).status_code == 302 and _account_of(client) == kadri
    record = AuditRecord.objects.filter(action="auth.oidc-verified").order_by("-seq").first()
    assert record is not None and record.after is not None
    assert record.after["account"] == "subject"
    assert record.after["email_at_provider"] == "k.tamm@new.cert.ee.example"
    # The address of another account of the organisation: still Kadri, never that account,
    # although the provider may link verified addresses.
    analyst = federation.users["ee_analyst"]
    idp.behaviour.identity["email"] = analyst.email
    users = _users()
    client = Client()
    assert _sign_in(client).status_code == 302 and _account_of(client) == kadri
    assert not ExternalIdentity.objects.filter(user=analyst).exists()
    assert [u for u in _users() if u[0] == analyst.email] == [
        u for u in users if u[0] == analyst.email
    ]
    kadri.refresh_from_db()
    assert kadri.email == "kadri.tamm@cert.ee.example"
    identity = ExternalIdentity.objects.get(user=kadri)
    assert identity.last_login_at is not None and identity.last_login_at > identity.created_at


def test_another_subject_with_a_linked_address_is_refused(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(settings, idp, second_factor="idp", link_verified_email=True)
    assert _sign_in(Client()).status_code == 302
    kadri = User.objects.get(email="kadri.tamm@cert.ee.example")
    idp.behaviour.identity["sub"] = "ee-9999"  # someone else at the provider, same address
    users = _users()
    client = Client()
    record = _refused(client, _sign_in(client), 403, "identity-conflict")
    assert record.actor_id == kadri.pk and record.after is not None
    assert record.after["subject"] == "ee-9999" and record.after["linked_subject"] == "ee-0042"
    assert _users() == users


def test_a_subject_vcisc_cannot_keep_is_refused(federation: Directory, idp: TestProvider) -> None:
    idp.behaviour.identity["sub"] = "x" * 256  # OIDC Core §2: at most 255 characters
    users = _users()
    client = Client()
    _refused(client, _sign_in(client), 400, "subject")
    assert _users() == users


# --- the provider's discovery document and keys, kept ---------------------------------------


def test_discovery_and_keys_are_kept_and_fetched_again_for_a_new_key(
    federation: Directory, idp: TestProvider, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(settings, idp, second_factor="idp")
    settings.VCISC_OIDC_CACHE_SECONDS = 600
    discovery, jwks = "/.well-known/openid-configuration", "/jwks"
    for _ in range(3):
        assert _sign_in(Client()).status_code == 302
    assert (idp.hits[discovery], idp.hits[jwks]) == (1, 1)
    # The provider rotates its key: the unknown key id fetches the keys once more, and the new
    # keys are kept.
    idp.rotate_key("test-key-2")
    client = Client()
    assert _sign_in(client).status_code == 302 and _signed_in(client)
    assert _sign_in(Client()).status_code == 302
    assert (idp.hits[discovery], idp.hits[jwks]) == (1, 2)
    # A key id the provider does not publish either: one more fetch, then a refusal.
    idp.behaviour.unknown_kid = True
    users = _users()
    client = Client()
    _refused(client, _sign_in(client), 400, "signature")
    assert (idp.hits[discovery], idp.hits[jwks]) == (1, 3)
    assert _users() == users
    # Once the time is up, both are fetched again.
    idp.behaviour.unknown_kid = False
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 601)
    assert _sign_in(Client()).status_code == 302
    assert (idp.hits[discovery], idp.hits[jwks]) == (2, 4)


def test_with_no_cache_every_sign_in_fetches_discovery(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(settings, idp, second_factor="idp")
    settings.VCISC_OIDC_CACHE_SECONDS = 0
    for _ in range(2):
        assert _sign_in(Client()).status_code == 302
    # Each sign-in: once to start, once for the answer.
    assert idp.hits["/.well-known/openid-configuration"] == 4


def test_a_refused_discovery_document_is_not_kept(federation: Directory, idp: TestProvider) -> None:
    idp.behaviour.discovery_issuer = "https://idp.elsewhere.example"
    client = Client()
    _refused(client, client.get("/login/oidc/cert-ee/"), 502, "provider-metadata")
    idp.behaviour.discovery_issuer = None
    assert client.get("/login/oidc/cert-ee/").status_code == 302
    assert idp.hits["/.well-known/openid-configuration"] == 2


# --- signing out at the provider --------------------------------------------------------------


def test_signing_out_continues_at_the_provider(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(settings, idp, second_factor="idp")
    client = Client()
    assert _sign_in(client).status_code == 302 and _signed_in(client)
    resp = client.post("/logout/")
    assert resp.status_code == 302
    url = urlsplit(resp["Location"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{idp.issuer}/logout"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query == {
        "id_token_hint": idp.id_tokens[-1],
        "client_id": CLIENT_ID,
        "post_logout_redirect_uri": "http://testserver/login/",
    }
    assert not _signed_in(client)  # signed out here before going there
    back = httpx.get(resp["Location"])
    assert back.status_code == 302 and back.headers["location"] == "http://testserver/login/"
    assert len(idp.logouts) == 1


def test_signing_out_stays_here_without_an_end_session_endpoint(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(settings, idp, second_factor="idp")
    idp.behaviour.end_session = False
    client = Client()
    assert _sign_in(client).status_code == 302
    resp = client.post("/logout/")
    assert resp.status_code == 302 and resp["Location"] == "/login/"
    assert not _signed_in(client)
    # After a password sign-in: the console's own sign-in page, as always.
    idp.behaviour.end_session = True
    client = Client()
    client.force_login(federation.users["ee"])
    resp = client.post("/logout/")
    assert resp.status_code == 302 and resp["Location"] == "/login/"
    assert idp.logouts == []


# --- nothing of the flow in the logs ----------------------------------------------------------


def test_no_code_verifier_or_token_reaches_the_logs(
    federation: Directory, idp: TestProvider, settings: Any
) -> None:
    _use(settings, idp, second_factor="idp")
    with every_logger_at_debug() as capture:
        client = Client()
        authorize = _to_provider(client)
        kept = [v for k, v in client.session.items() if k.startswith("_state_")]
        assert kept and kept[0]["data"]["code_verifier"]
        callback = _at_provider(authorize)
        assert _back(client, callback).status_code == 302 and _signed_in(client)
        assert client.post("/logout/").status_code == 302
    query = parse_qs(urlsplit(callback).query) | parse_qs(urlsplit(authorize).query)
    secrets = {
        "code and state": {query["code"][0], query["state"][0], query["nonce"][0]},
        "code verifier": {kept[0]["data"]["code_verifier"]},
        "ID token": {idp.id_tokens[-1]},
        "access token": set(idp.access_tokens),
        "client secret": {CLIENT_SECRET},
        "session cookie": {client.cookies["sessionid"].value} - {""},
    }
    # The test's own browser at the provider is httpx, which VCISC does not use: its records
    # are the browser's, not the server's.
    server = [
        line for line in capture.lines if not line.startswith(("DEBUG httpcore", "INFO httpx"))
    ]
    assert len(server) < len(capture.lines)
    assert any(" authlib." in line for line in server)  # Authlib's records were seen
    found = leaks(server, secrets)
    assert not found, "\n".join(found[:10])


def test_a_provider_whose_discovery_names_another_issuer_is_not_used(
    federation: Directory, idp: TestProvider
) -> None:
    idp.behaviour.discovery_issuer = "https://idp.elsewhere.example"
    client = Client()
    resp = client.get("/login/oidc/cert-ee/")
    _refused(client, resp, 502, "provider-metadata")


def test_starts_and_answers_are_rate_limited_per_address(
    federation: Directory, settings: Any
) -> None:
    settings.VCISC_SIGNIN_RATE_PER_IP = "2/d"
    client = Client(REMOTE_ADDR="192.0.2.20")
    statuses = [client.get("/login/oidc/cert-ee/").status_code for _ in range(3)]
    assert statuses == [302, 302, 429]


# --- configuration and claim mapping without the network --------------------------------------


def _load(providers: Any) -> Any:
    text = providers if isinstance(providers, str) else json.dumps(providers)
    return load_config({"VCISC_DATA_DIR": "/tmp/vcisc-oidc-config", "VCISC_OIDC_PROVIDERS": text})


GOOD = {
    "name": "cert-ee",
    "label": LABEL,
    "issuer": "https://idp.cert.ee.example/realms/vcisc",
    "client_id": "vcisc",
    "client_secret": "s3cret",
    "organisations": ["CERT-EE", 7],
}


def test_providers_are_read_from_json_text_or_a_file(tmp_path: Any) -> None:
    (provider,) = _load([GOOD]).oidc_providers
    assert provider.allowed_roles == ["liaison", "analyst", "observer"]
    assert provider.second_factor == "vcisc" and provider.organisations == ["CERT-EE", 7]
    assert provider.discovery_url == (
        "https://idp.cert.ee.example/realms/vcisc/.well-known/openid-configuration"
    )
    assert "s3cret" not in repr(provider)
    path = tmp_path / "providers.json"
    path.write_text(json.dumps([GOOD]))
    assert _load(str(path)).oidc_providers == [provider]
    assert _load("").oidc_providers == []


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({**GOOD, "client_id": ""}, "provider 'cert-ee' (entry 1): client_id"),
        ({**GOOD, "issuer": "http://idp.example"}, "provider 'cert-ee' (entry 1): issuer"),
        ({**GOOD, "allowed_roles": ["root"]}, "unknown role(s) root"),
        ({**GOOD, "second_factor": "maybe"}, "second_factor"),
        ({**GOOD, "organisations": []}, "organisations"),
        ({**GOOD, "scope": "x"}, "scope: Extra inputs are not permitted"),
        ({k: v for k, v in GOOD.items() if k != "name"}, "provider entry 1: name"),
    ],
)
def test_a_bad_provider_entry_stops_start_up_naming_it(entry: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load([entry])
    assert "VCISC_OIDC_PROVIDERS" in str(caught.value) and message in str(caught.value)


def test_bad_provider_lists_stop_start_up() -> None:
    for value, message in [
        ([GOOD, GOOD], "used twice: cert-ee"),
        ("[not json", "not valid JSON"),
        ("/nonexistent/providers.json", "no such file"),
        ({"name": "x"}, "must be a JSON list"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            _load(value)


def test_claim_mapping() -> None:
    provider = OidcProvider.model_validate(
        {**GOOD, "allowed_roles": ["liaison", "analyst"], "second_factor": "idp"}
    )
    claims = {**PERSON, "vcisc_roles": "analyst admin,liaison", "vcisc_organisation": "7"}
    claimed = map_claims(provider, claims)
    assert claimed.email == "kadri.tamm@cert.ee.example" and claimed.organisation == 7
    assert claimed.roles == ("liaison", "analyst") and claimed.ignored_roles == ("admin",)
    assert claimed.second_factor_done
    assert not map_claims(provider, {**claims, "amr": ["pwd"]}).second_factor_done
    # No email_verified claim at all is accepted; a string "true" too (some providers).
    assert map_claims(provider, {k: v for k, v in claims.items() if k != "email_verified"})
    assert map_claims(provider, {**claims, "email_verified": "true"})
    for bad in ({"vcisc_organisation": True}, {"vcisc_organisation": ["CERT-EE"]}):
        with pytest.raises(SignInRefused, match="organisation"):
            map_claims(provider, {**claims, **bad})
