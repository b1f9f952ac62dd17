"""The one typed settings layer.

Values come from environment variables prefixed ``VCISC_`` and, optionally, from a config file
named by ``VCISC_CONFIG_FILE`` (``KEY=value`` lines, see ``config/vcisc.example.env``).  Environment
variables win over the file.  Everything is validated when the process starts: a wrong value stops
start-up with a message naming the setting, rather than failing later on a request.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["ConfigError", "VciscConfig", "load_config"]


class ConfigError(RuntimeError):
    """Raised when the configuration is invalid; its message names the offending settings."""


class VciscConfig(BaseModel):
    """Validated deployment settings. Field names map to ``VCISC_<NAME>`` variables."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(default=Path("var"), description="Where the SQLite file and keys live.")
    database_url: str | None = Field(
        default=None, description="postgresql://… for PostgreSQL; unset for SQLite in data_dir."
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
