"""The one typed settings layer.

Values come from environment variables prefixed ``VCISC_`` and, optionally, from a config file
named by ``VCISC_CONFIG_FILE`` (``KEY=value`` lines, see ``config/vcisc.example.env``).  Environment
variables win over the file.  Everything is validated when the process starts: a wrong value stops
start-up with a message naming the setting, rather than failing later on a request.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

__all__ = ["ConfigError", "OidcProvider", "VciscConfig", "load_config"]


class ConfigError(RuntimeError):
    """Raised when the configuration is invalid; its message names the offending settings."""


# --- sign-in with a nation's identity provider (vcisc.web.oidc) -----------------------------------

#: Roles of :class:`vcisc.federation.models.Role` (models cannot be imported before Django starts).
_ROLE_NAMES = ("liaison", "analyst", "coordinator", "exercise-control", "observer", "admin")
_LOOPBACK_HTTP = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$)")


class OidcProvider(BaseModel):
    """One OpenID Connect identity provider that may sign in people of the organisations it
    vouches for (see docs/operator-guide.md, "Sign-in with a nation's identity provider")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$", description="Slug in the URLs.")
    label: str = Field(min_length=1, max_length=100, description="Text of the sign-in button.")
    issuer: str = Field(
        max_length=255, description="Issuer identifier; discovery at issuer + /.well-known/…"
    )
    client_id: str = Field(min_length=1)
    client_secret: SecretStr = Field(min_length=1)
    organisations: list[str | int] = Field(
        min_length=1, description="Names (or ids) of the organisations this provider vouches for."
    )
    organisation_claim: str = Field(default="vcisc_organisation", min_length=1)
    roles_claim: str = Field(default="vcisc_roles", min_length=1)
    allowed_roles: list[str] = Field(
        default_factory=lambda: ["liaison", "analyst", "observer"], min_length=1
    )
    second_factor: Literal["vcisc", "idp"] = "vcisc"
    mfa_amr: list[str] = Field(
        default_factory=lambda: ["mfa", "otp", "hwk"],
        min_length=1,
        description="amr values that show the provider checked a second factor.",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    link_verified_email: bool = Field(
        default=False,
        description="At a person's first sign-in, sign in the existing account with the same "
        "e-mail address when the provider says it verified it (email_verified true); else such "
        "a sign-in is refused. Later sign-ins find the account by (issuer, subject) only.",
    )

    @field_validator("issuer")
    @classmethod
    def _https_issuer(cls, value: str) -> str:
        # OpenID Connect Discovery 1.0 §3: the issuer is an https URL without query or fragment.
        if not (value.startswith("https://") or _LOOPBACK_HTTP.match(value)):
            raise ValueError("must be an https:// URL (http:// only on this machine's loopback)")
        if any(c in value for c in "?# "):
            raise ValueError("must have no query, fragment or spaces")
        return value

    @field_validator("allowed_roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        unknown = [r for r in value if r not in _ROLE_NAMES]
        if unknown:
            raise ValueError(
                f"unknown role(s) {', '.join(unknown)}; roles: {', '.join(_ROLE_NAMES)}"
            )
        return value

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def _parse_providers(value: object) -> object:
    """JSON text (a list) or the path of a JSON file holding it; each entry is validated here so
    that the message names the provider it is about."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text.startswith(("[", "{")):
            path = Path(text)
            if not path.is_file():
                raise ValueError(f"{text}: no such file (give JSON text or a JSON file's path)")
            text = path.read_text()
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
    if not isinstance(value, list):
        raise ValueError("must be a JSON list of providers")
    providers: list[OidcProvider] = []
    for number, entry in enumerate(value, start=1):
        if isinstance(entry, OidcProvider):
            providers.append(entry)
            continue
        label = entry.get("name") if isinstance(entry, dict) else None
        which = f"provider {label!r} (entry {number})" if label else f"provider entry {number}"
        try:
            providers.append(OidcProvider.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'entry'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ValueError(f"{which}: {problems}") from None
    names = [p.name for p in providers]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"provider name(s) used twice: {', '.join(duplicates)}")
    return providers


class VciscConfig(BaseModel):
    """Validated deployment settings. Field names map to ``VCISC_<NAME>`` variables."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(default=Path("var"), description="Where the SQLite file and keys live.")
    database_url: str | None = Field(
        default=None, description="postgresql://… for PostgreSQL; unset for SQLite in data_dir."
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=500,
        description="PostgreSQL: most connections one process holds (a pool; requests wait).",
    )
    secret_key: str | None = Field(
        default=None,
        min_length=50,
        description="Django secret key; generated into data_dir on first start when unset.",
    )
    debug: bool = False
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost"])
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    token_default_days: int = Field(default=90, ge=1, le=3650)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    secure_cookies: bool = False

    # --- sign-in and abuse limits (documented in config/vcisc.example.env) ---------------------
    tls_proxy_header: bool = Field(
        default=False,
        description="Trust X-Forwarded-Proto from the TLS-terminating proxy (enables HSTS).",
    )
    require_second_factor: bool = True
    session_idle_minutes: int = Field(default=30, ge=1, le=24 * 60)
    session_max_hours: float = Field(default=8.0, gt=0, le=24 * 7)
    signin_failure_limit: int = Field(default=5, ge=1, le=100)
    signin_lockout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    signin_rate_per_ip: str = Field(default="30/m", pattern=r"^\d+/[smhd]$")
    api_rate_per_token: str = Field(default="600/m", pattern=r"^\d+/[smhd]$")
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=2**34)
    taxii_fast_reads: bool = Field(
        default=True,
        description="Answer repeated TAXII object reads without Django's request cycle while "
        "the database is unchanged (vcisc.sharing.taxii.fast); false: Django answers all.",
    )
    oidc_providers: list[OidcProvider] = Field(
        default_factory=list,
        description="Identity providers (JSON list, or a JSON file's path); see OidcProvider.",
    )

    oidc_cache_seconds: int = Field(
        default=3600,
        ge=0,
        le=7 * 24 * 3600,
        description="How long a provider's discovery document and keys (JWKS) are reused; "
        "0: fetched at every sign-in. An unknown key id fetches the keys again at once.",
    )

    @field_validator("oidc_providers", mode="before")
    @classmethod
    def _providers_from_json(cls, value: object) -> object:
        return _parse_providers(value)

    # --- notifications (vcisc.notify; documented in config/vcisc.example.env) -------------------
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="The console's address as recipients reach it; links in notifications.",
    )
    smtp_host: str | None = Field(default=None, description="SMTP relay; unset: e-mail waits.")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle that signs the relay's certificate (else system)."
    )
    smtp_timeout_seconds: float = Field(default=10.0, ge=0.5, le=300)
    mail_from: str = Field(
        default="VCISC <vcisc@localhost>", description="Default sender of notification e-mail."
    )
    webhook_timeout_seconds: float = Field(default=10.0, ge=0.5, le=300)
    webhook_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Networks webhooks may reach although they are not public (CIDR list).",
    )
    feed_max_bytes: int = Field(
        default=50 * 1024 * 1024,
        ge=1024,
        le=2**34,
        description="Largest file (manifest or event) read from a MISP feed.",
    )
    email_tlp_ceiling: str = "green"
    pgp_email_tlp_ceiling: str = "amber+strict"
    webhook_tlp_ceiling: str = "amber"
    delivery_max_attempts: int = Field(default=12, ge=1, le=100)
    delivery_backoff_seconds: float = Field(default=5.0, ge=0.01, le=3600)
    delivery_backoff_max_seconds: float = Field(default=3600.0, ge=0.01, le=86400)
    delivery_lease_seconds: float = Field(default=60.0, ge=1, le=3600)
    worker_concurrency: int = Field(default=200, ge=1, le=2000)
    worker_batch: int = Field(default=100, ge=1, le=1000)
    smtp_connections: int = Field(default=16, ge=1, le=100)
    worker_poll_seconds: float = Field(default=0.5, ge=0.01, le=60)
    escalation_scan_seconds: float = Field(default=15.0, ge=0.1, le=3600)
    escalation_policy: str = "rota+0m,duty-desk+30m,secretariat+1h"
    deadline_reminders: str = "30m"

    @field_validator("secret_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("postgresql://", "postgres://", "sqlite://")):
            raise ValueError("must start with postgresql:// (or sqlite:// for a named file)")
        return value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str) and not value.startswith("["):
            return [h.strip() for h in value.split(",") if h.strip()]
        if isinstance(value, str):
            return json.loads(value)  # a JSON list; a bad one is reported as a ValueError
        return value

    @field_validator("smtp_host", "smtp_username", "smtp_password", "smtp_ca_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("webhook_allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [n.strip() for n in value.split(",") if n.strip()]
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        from vcisc.notify.policy import parse_networks

        parse_networks(value)
        return value

    @field_validator("email_tlp_ceiling", "pgp_email_tlp_ceiling", "webhook_tlp_ceiling")
    @classmethod
    def _valid_ceiling(cls, value: str) -> str:
        from vcisc.notify.policy import parse_ceiling

        return parse_ceiling(value).value

    @field_validator("public_url")
    @classmethod
    def _valid_public_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or " " in value:
            raise ValueError("must be an http:// or https:// address, e.g. https://vcisc.example")
        return value.rstrip("/")

    @field_validator("mail_from")
    @classmethod
    def _valid_sender(cls, value: str) -> str:
        from vcisc.notify.policy import parse_sender

        parse_sender(value)
        return value

    @field_validator("escalation_policy")
    @classmethod
    def _valid_policy(cls, value: str) -> str:
        from vcisc.notify.policy import parse_policy

        parse_policy(value)
        return value

    @field_validator("deadline_reminders")
    @classmethod
    def _valid_reminders(cls, value: str) -> str:
        from vcisc.notify.policy import parse_reminders

        parse_reminders(value)
        return value

    @field_validator("delivery_backoff_max_seconds")
    @classmethod
    def _cap_above_base(cls, value: float, info: ValidationInfo) -> float:
        base = info.data.get("delivery_backoff_seconds")
        if base is not None and value < base:
            raise ValueError(f"must be at least VCISC_DELIVERY_BACKOFF_SECONDS ({base:g})")
        return value

    @field_validator("delivery_lease_seconds")
    @classmethod
    def _lease_outlives_a_delivery(cls, value: float, info: ValidationInfo) -> float:
        # A delivery in flight holds a lease; if the lease could expire while the delivery is
        # still allowed to run, a second worker would send it again although nobody crashed.
        timeouts = [
            info.data.get(name) for name in ("smtp_timeout_seconds", "webhook_timeout_seconds")
        ]
        longest = max((t for t in timeouts if t is not None), default=0.0)
        if value < 2 * longest:
            raise ValueError(
                f"must be at least twice the longest delivery timeout ({longest:g} s), so that "
                "a delivery still running is never taken over by another worker"
            )
        return value

    @property
    def is_postgres(self) -> bool:
        return bool(self.database_url and self.database_url.startswith(("postgres",)))

    def resolved_secret_key(self) -> str:
        """The configured key, or one generated once into ``data_dir/secret_key`` (mode 0600)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(64)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key)
        return key


def _read_config_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ConfigError(f"{path}:{number}: expected KEY=value, got {line!r}")
        key, _, value = line.partition("=")
        key = key.strip()
        if not key.upper().startswith("VCISC_"):
            raise ConfigError(f"{path}:{number}: unknown setting {key!r} (names start with VCISC_)")
        values[key.upper().removeprefix("VCISC_").lower()] = value.strip().strip('"').strip("'")
    return values


def load_config(environ: dict[str, str] | None = None) -> VciscConfig:
    """Read and validate the configuration; raise :class:`ConfigError` naming every bad setting."""
    env = dict(os.environ if environ is None else environ)
    file_values: dict[str, str] = {}
    config_file = env.get("VCISC_CONFIG_FILE")
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"VCISC_CONFIG_FILE={config_file}: no such file")
        file_values = _read_config_file(path)
    env_values = {
        key.removeprefix("VCISC_").lower(): value
        for key, value in env.items()
        if key.startswith("VCISC_") and key != "VCISC_CONFIG_FILE"
    }
    merged: dict[str, object] = {**file_values, **env_values}
    try:
        return VciscConfig.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"VCISC_{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from exc
