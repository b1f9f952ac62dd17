"""The typed settings layer: environment, config file, validation and the generated secret key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from vcisc.config import ConfigError, VciscConfig, load_config

EXAMPLE_ENV = Path(__file__).resolve().parents[2] / "config" / "vcisc.example.env"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---------------------------------------------------------------- defaults and environment


def test_defaults_from_an_empty_environment() -> None:
    config = load_config({})
    assert config.data_dir == Path("var")
    assert config.database_url is None
    assert config.secret_key is None
    assert config.debug is False
    assert config.allowed_hosts == ["127.0.0.1", "localhost"]
    assert config.host == "127.0.0.1"
    assert config.port == 8000
    assert config.token_default_days == 90
    assert config.log_level == "INFO"
    assert config.secure_cookies is False
    assert config.is_postgres is False


def test_environ_none_reads_os_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VCISC_PORT", "9123")
    monkeypatch.setenv("VCISC_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("VCISC_CONFIG_FILE", raising=False)
    config = load_config()
    assert config.port == 9123
    assert config.data_dir == tmp_path


def test_explicit_environ_ignores_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCISC_PORT", "not a port")
    assert load_config({}).port == 8000


def test_environment_values_are_parsed() -> None:
    config = load_config(
        {
            "VCISC_DATA_DIR": "/srv/vcisc",
            "VCISC_DATABASE_URL": "postgresql://vcisc@db:5432/vcisc",
            "VCISC_SECRET_KEY": "k" * 50,
            "VCISC_DEBUG": "true",
            "VCISC_ALLOWED_HOSTS": " vcisc.example.org, 10.0.0.1 ,,",
            "VCISC_HOST": "0.0.0.0",
            "VCISC_PORT": "8443",
            "VCISC_TOKEN_DEFAULT_DAYS": "30",
            "VCISC_LOG_LEVEL": "DEBUG",
            "VCISC_SECURE_COOKIES": "1",
        }
    )
    assert config.data_dir == Path("/srv/vcisc")
    assert config.database_url == "postgresql://vcisc@db:5432/vcisc"
    assert config.is_postgres is True
    assert config.secret_key == "k" * 50
    assert config.debug is True
    assert config.allowed_hosts == ["vcisc.example.org", "10.0.0.1"]
    assert config.host == "0.0.0.0"
    assert config.port == 8443
    assert config.token_default_days == 30
    assert config.log_level == "DEBUG"
    assert config.secure_cookies is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("on", True),
        ("false", False),
        ("0", False),
        ("no", False),
        ("off", False),
    ],
)
def test_booleans(text: str, expected: bool) -> None:
    assert load_config({"VCISC_DEBUG": text}).debug is expected
    assert load_config({"VCISC_SECURE_COOKIES": text}).secure_cookies is expected


def test_bad_boolean() -> None:
    with pytest.raises(ConfigError, match="VCISC_DEBUG"):
        load_config({"VCISC_DEBUG": "maybe"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a.example", ["a.example"]),
        ("a.example,b.example", ["a.example", "b.example"]),
        ("", []),
        ('["a.example", "b.example"]', ["a.example", "b.example"]),
    ],
)
def test_allowed_hosts(text: str, expected: list[str]) -> None:
    assert load_config({"VCISC_ALLOWED_HOSTS": text}).allowed_hosts == expected


def test_allowed_hosts_bad_json_names_setting() -> None:
    with pytest.raises(ConfigError, match="VCISC_ALLOWED_HOSTS"):
        load_config({"VCISC_ALLOWED_HOSTS": '["a.example"'})


@pytest.mark.parametrize("port", ["1", "65535", "08000"])
def test_good_ports(port: str) -> None:
    assert load_config({"VCISC_PORT": port}).port == int(port)


@pytest.mark.parametrize("port", ["0", "-1", "65536", "abc", "80.5", ""])
def test_bad_port(port: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"VCISC_PORT": port})
    message = str(info.value)
    assert message.startswith("invalid configuration: ")
    assert "VCISC_PORT:" in message


@pytest.mark.parametrize("days", ["0", "3651", "x"])
def test_bad_token_days(days: str) -> None:
    with pytest.raises(ConfigError, match="VCISC_TOKEN_DEFAULT_DAYS"):
        load_config({"VCISC_TOKEN_DEFAULT_DAYS": days})


@pytest.mark.parametrize("level", ["debug", "TRACE", "CRITICAL", ""])
def test_bad_log_level(level: str) -> None:
    with pytest.raises(ConfigError, match="VCISC_LOG_LEVEL"):
        load_config({"VCISC_LOG_LEVEL": level})


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR"])
def test_log_levels(level: str) -> None:
    assert load_config({"VCISC_LOG_LEVEL": level}).log_level == level


@pytest.mark.parametrize(
    ("url", "postgres"),
    [
        ("postgresql://vcisc@127.0.0.1:5432/vcisc", True),
        ("postgres://vcisc:pw@db/vcisc?sslmode=require", True),
        ("sqlite:////srv/vcisc/db.sqlite3", False),
    ],
)
def test_database_url_schemes(url: str, postgres: bool) -> None:
    config = load_config({"VCISC_DATABASE_URL": url})
    assert config.database_url == url
    assert config.is_postgres is postgres


def test_empty_database_url_means_sqlite() -> None:
    config = load_config({"VCISC_DATABASE_URL": ""})
    assert config.database_url is None
    assert config.is_postgres is False


@pytest.mark.parametrize(
    "url", ["mysql://vcisc@db/vcisc", "http://db", "db.example:5432", "POSTGRESQL://x", "oracle://"]
)
def test_bad_database_url_scheme(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"VCISC_DATABASE_URL": url})
    message = str(info.value)
    assert "VCISC_DATABASE_URL:" in message
    assert "must start with postgresql://" in message


@pytest.mark.parametrize("key", ["short", "x" * 49])
def test_short_secret_key(key: str) -> None:
    with pytest.raises(ConfigError, match="VCISC_SECRET_KEY"):
        load_config({"VCISC_SECRET_KEY": key})


def test_empty_secret_key_means_unset() -> None:
    assert load_config({"VCISC_SECRET_KEY": ""}).secret_key is None


def test_every_bad_setting_is_named() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(
            {"VCISC_PORT": "0", "VCISC_LOG_LEVEL": "LOUD", "VCISC_DATABASE_URL": "mysql://"}
        )
    message = str(info.value)
    for name in ("VCISC_PORT", "VCISC_LOG_LEVEL", "VCISC_DATABASE_URL"):
        assert name in message
    assert message.count("; ") == 2


def test_unknown_vcisc_variable_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"VCISC_FROBNICATE": "1"})
    assert "VCISC_FROBNICATE:" in str(info.value)


def test_other_variables_are_ignored() -> None:
    config = load_config(
        {"PORT": "abc", "DEBUG": "nonsense", "PATH": "/usr/bin", "vcisc_port": "1"}
    )
    assert config.port == 8000
    assert config.debug is False


def test_config_error_is_runtime_error() -> None:
    assert issubclass(ConfigError, RuntimeError)


# ---------------------------------------------------------------- config file


def test_config_file_key_value_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "vcisc.env",
        "# a comment\n"
        "\n"
        "VCISC_PORT=9001\n"
        "  VCISC_HOST = 0.0.0.0  \n"
        'VCISC_ALLOWED_HOSTS="a.example,b.example"\n'
        "VCISC_LOG_LEVEL='WARNING'\n"
        "vcisc_debug=true\n"
        "VCISC_DATABASE_URL=postgresql://u@h/db?sslmode=require\n"
        "   # indented comment\n",
    )
    config = load_config({"VCISC_CONFIG_FILE": str(path)})
    assert config.port == 9001
    assert config.host == "0.0.0.0"
    assert config.allowed_hosts == ["a.example", "b.example"]
    assert config.log_level == "WARNING"
    assert config.debug is True
    assert config.database_url == "postgresql://u@h/db?sslmode=require"


def test_environment_wins_over_file(tmp_path: Path) -> None:
    path = write(tmp_path / "vcisc.env", "VCISC_PORT=9001\nVCISC_HOST=10.1.1.1\n")
    config = load_config({"VCISC_CONFIG_FILE": str(path), "VCISC_PORT": "9002"})
    assert config.port == 9002
    assert config.host == "10.1.1.1"


def test_environment_can_fix_a_bad_file_value(tmp_path: Path) -> None:
    path = write(tmp_path / "vcisc.env", "VCISC_PORT=0\n")
    with pytest.raises(ConfigError, match="VCISC_PORT"):
        load_config({"VCISC_CONFIG_FILE": str(path)})
    assert load_config({"VCISC_CONFIG_FILE": str(path), "VCISC_PORT": "8001"}).port == 8001


def test_file_setting_without_prefix_is_unknown(tmp_path: Path) -> None:
    path = write(tmp_path / "vcisc.env", "VCISC_PORT=9001\nPORT=9001\n")
    with pytest.raises(ConfigError) as info:
        load_config({"VCISC_CONFIG_FILE": str(path)})
    assert str(info.value) == f"{path}:2: unknown setting 'PORT' (names start with VCISC_)"


def test_file_unknown_vcisc_setting(tmp_path: Path) -> None:
    path = write(tmp_path / "vcisc.env", "VCISC_COLOUR=blue\n")
    with pytest.raises(ConfigError, match="VCISC_COLOUR"):
        load_config({"VCISC_CONFIG_FILE": str(path)})


def test_file_line_without_equals(tmp_path: Path) -> None:
    path = write(tmp_path / "vcisc.env", "# header\nVCISC_PORT 9001\n")
    with pytest.raises(ConfigError) as info:
        load_config({"VCISC_CONFIG_FILE": str(path)})
    assert str(info.value) == f"{path}:2: expected KEY=value, got 'VCISC_PORT 9001'"


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    with pytest.raises(ConfigError) as info:
        load_config({"VCISC_CONFIG_FILE": str(missing)})
    assert str(info.value) == f"VCISC_CONFIG_FILE={missing}: no such file"


def test_config_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config({"VCISC_CONFIG_FILE": str(tmp_path)})


def test_empty_config_file_name_is_ignored() -> None:
    assert load_config({"VCISC_CONFIG_FILE": ""}).port == 8000


def test_example_env_file_is_valid() -> None:
    config = load_config({"VCISC_CONFIG_FILE": str(EXAMPLE_ENV)})
    assert config.data_dir == Path("var")
    assert config.allowed_hosts == ["127.0.0.1", "localhost"]
    assert config.port == 8000
    assert config.token_default_days == 90
    assert config.database_url is None


def test_model_forbids_unknown_fields() -> None:
    with pytest.raises(ValueError):
        VciscConfig.model_validate({"nonsense": 1})


# ---------------------------------------------------------------- secret key


def test_configured_secret_key_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    key = "s" * 64
    config = load_config({"VCISC_SECRET_KEY": key, "VCISC_DATA_DIR": str(tmp_path / "data")})
    assert config.resolved_secret_key() == key
    assert not (tmp_path / "data").exists()


def test_secret_key_generated_once_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "nested" / "data"
    config = load_config({"VCISC_DATA_DIR": str(data_dir)})
    key = config.resolved_secret_key()
    path = data_dir / "secret_key"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == key
    assert len(key) >= 50
    # Stable across calls and across processes (a fresh config object).
    assert config.resolved_secret_key() == key
    assert load_config({"VCISC_DATA_DIR": str(data_dir)}).resolved_secret_key() == key


def test_generated_keys_differ_between_data_dirs(tmp_path: Path) -> None:
    a = load_config({"VCISC_DATA_DIR": str(tmp_path / "a")}).resolved_secret_key()
    b = load_config({"VCISC_DATA_DIR": str(tmp_path / "b")}).resolved_secret_key()
    assert a != b


def test_existing_secret_key_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("  existing-key-" + "e" * 50 + "\n")
    config = load_config({"VCISC_DATA_DIR": str(tmp_path)})
    assert config.resolved_secret_key() == "existing-key-" + "e" * 50
