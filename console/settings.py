"""Agent settings, read from flags, the environment and an env file.

A flag wins over the environment, which wins over the env file. The names
follow FLIP's trust poller where FLIP has one, so an existing FLIP trust's
environment works unchanged.
"""

from __future__ import annotations

import base64
import re
import binascii
import ipaddress
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_ENV_FILE = Path(".env")

HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP header name: one token as RFC 9110 defines it."""


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the variable and the fix."""


class StateSettings(BaseSettings):
    """The one setting that the ledger commands (`tasks`, `retry`) need."""

    model_config = SettingsConfigDict(
        case_sensitive=False,
        extra="ignore",
        env_file_encoding="utf-8",
        hide_input_in_errors=True,
        allow_inf_nan=False,
    )

    state_dir: Path = Field(
        default=Path("state"), description="Directory for the agent's local state: the ledger and its lock."
    )


class Settings(StateSettings):
    """Every setting of the agent; `config.example.env` documents each one."""

    central_hub_api_url: str = Field(
        description="Base URL of the hub's API, including the /api prefix.",
    )
    trust_api_key: SecretStr = Field(
        description="This trust's API key; the hub identifies the trust by it.",
    )
    trust_api_key_header: str = Field(
        default="X-Trust-API-Key",
        min_length=1,
        description="Header that carries the API key (FLIP deployments use X-Trust-API-Key or Authorization).",
    )
    poll_interval_seconds: float = Field(default=5.0, gt=0, description="Seconds between polls for pending tasks.")
    expected_trust_id: UUID | None = Field(
        default=None,
        description="Trust id this key must belong to; a mismatch stops the agent before any task runs.",
    )
    heartbeat_interval_seconds: float = Field(
        default=5.0, gt=0, le=25, description="Seconds between heartbeats (the hub marks a trust offline after 30)."
    )
    max_concurrent_tasks: int = Field(default=4, ge=1, le=256, description="Handlers that may run at once.")
    handler_timeout_seconds: float = Field(
        default=3600.0, gt=0, description="Seconds a handler may run before its task fails as timed out."
    )
    drain_timeout_seconds: float = Field(
        default=60.0, ge=0, description="Seconds a stop waits for in-flight tasks to finish and report."
    )
    enabled_task_types: Annotated[list[str] | None, NoDecode] = Field(
        default=None,
        description="Comma-separated task types this trust runs; empty means every registered type.",
    )
    report_stuck_after_seconds: float = Field(
        default=600.0, gt=0, description="Seconds after which an undelivered result is marked stuck (still retried)."
    )
    ledger_retention_days: float = Field(
        default=30.0, gt=0, le=36500, description="Days a delivered task stays in the ledger before it is pruned."
    )
    poll_burst_interval_seconds: float = Field(
        default=2.0,
        ge=0,
        description="Seconds between polls while the hub still hands out tasks (FLIP allows 30 polls a minute).",
    )
    hub_backoff_max_seconds: float = Field(
        default=30.0, gt=0, description="Maximum wait between retries while the hub fails, in seconds."
    )
    auth_retry_seconds: float = Field(
        default=60.0, gt=0, description="Seconds between checks while the hub rejects the API key."
    )
    http_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Timeout of each request to the hub, in seconds."
    )

    allow_insecure_http: bool = Field(
        default=False, description="Allow a plain http:// hub URL to a host that is not loopback."
    )
    hub_ca_bundle: Path | None = Field(
        default=None,
        description="PEM file of certificate authorities to trust for the hub, for a private CA; unset uses the system's.",
    )
    max_result_chars: int = Field(
        default=10_000_000,
        ge=1000,
        le=10_000_000,
        description="Maximum result length stored and sent, in characters; longer ones are cut with a marker (hub limit 10,000,000).",
    )

    # FLIP's payload encryption and the trust's local services.
    aes_key_base64: SecretStr | None = Field(
        default=None,
        description="Shared AES-256 key, base64 of 32 bytes; when set, task payloads are decrypted with it.",
    )
    data_access_api_url: str = Field(
        default="http://data-access-api:8000", description="Base URL of the trust's data-access-api."
    )
    imaging_api_url: str = Field(default="http://imaging-api:8000", description="Base URL of the trust's imaging-api.")
    trust_internal_service_key: SecretStr | None = Field(
        default=None, description="Key sent to the trust's local services."
    )
    trust_internal_service_key_header: str = Field(
        default="X-Trust-Internal-Service-Key", min_length=1, description="Header that carries the internal service key."
    )
    cohort_query_timeout_seconds: float = Field(
        default=300.0, gt=0, description="Timeout of cohort_query and persist_cohort calls to data-access-api, in seconds."
    )
    health_collect_interval_seconds: float = Field(
        default=30.0, gt=0, description="Seconds between health snapshots of the local services sent with heartbeats."
    )

    # Server operation.
    log_format: Literal["text", "json"] = Field(default="text", description="Headless log format: text or json.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="Lowest level logged.")
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Loopback port for /healthz and /metrics; unset turns them off.",
    )

    @field_validator("central_hub_api_url")
    @classmethod
    def _check_hub_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as https://hub.example.org/api")
        if parts.username is not None or parts.password is not None:
            raise ValueError("must not contain a user name or password; the hub identifies the trust by TRUST_API_KEY")
        try:
            parts.port
        except ValueError:
            raise ValueError("has an invalid port; use a number from 1 to 65535") from None
        return value

    @model_validator(mode="after")
    def _check_plain_http(self) -> Settings:
        parts = urlsplit(self.central_hub_api_url)
        if parts.scheme == "http" and not _is_loopback(parts.hostname or "") and not self.allow_insecure_http:
            raise PydanticCustomError(
                "insecure_url",
                "CENTRAL_HUB_API_URL is invalid: '{url}' sends the API key over plain http to a host that is not"
                " loopback; use https, or set ALLOW_INSECURE_HTTP=true if the network is trusted",
                {"url": self.central_hub_api_url},
            )
        return self

    @field_validator("enabled_task_types", mode="before")
    @classmethod
    def _split_task_types(cls, value: Any) -> Any:
        if isinstance(value, str):
            names = [name.strip() for name in value.split(",") if name.strip()]
            return names or None
        return value

    @field_validator("trust_api_key")
    @classmethod
    def _check_key(cls, value: SecretStr) -> SecretStr:
        # A key read from a file often ends in a newline, which no HTTP header may carry.
        key = value.get_secret_value().strip()
        if not key:
            raise ValueError("must not be empty")
        if not all(" " < character < "\x7f" for character in key):
            raise ValueError("may contain only visible ASCII characters, as an HTTP header value")
        return SecretStr(key)

    @field_validator("trust_api_key_header", "trust_internal_service_key_header")
    @classmethod
    def _check_header_name(cls, value: str) -> str:
        value = value.strip()
        if not HEADER_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid HTTP header name; use for example X-Trust-API-Key")
        return value

    @field_validator("aes_key_base64")
    @classmethod
    def _check_aes_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        try:
            key = base64.b64decode(value.get_secret_value().strip(), validate=True)
        except binascii.Error:
            raise ValueError("is not valid base64; expected base64 of a 32-byte key") from None
        if len(key) != 32:
            raise ValueError(f"decodes to {len(key)} bytes; AES-256 needs exactly 32")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("hub_ca_bundle")
    @classmethod
    def _check_ca_bundle(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"file {str(value)!r} not found; point it at a PEM file of CA certificates")
        return value

    def hub_url(self, path: str) -> str:
        """Join an endpoint path such as `/tasks/pending` to the hub's API URL."""
        return f"{self.central_hub_api_url}{path}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def secret_fields() -> set[str]:
    """Names of the settings that hold secrets, which never leave the process."""
    return {
        name
        for name, field in Settings.model_fields.items()
        if field.annotation is SecretStr or SecretStr in get_args(field.annotation)
    }


def public_settings(settings: Settings) -> dict[str, Any]:
    """Return every setting but the secrets, as JSON-ready values."""
    return settings.model_dump(mode="json", exclude=secret_fields())


def env_name(field_name: str) -> str:
    return field_name.upper()


SettingsModel = TypeVar("SettingsModel", bound=StateSettings)


def load_settings(overrides: dict[str, Any] | None = None, env_file: Path | None = None) -> Settings:
    """Build the settings from flags (`overrides`), the environment and an env file.

    Without `env_file`, `.env` in the working directory is read when it exists.
    Raises SettingsError with one line per problem, each naming the variable.
    """
    return _load(Settings, overrides, env_file)


def load_state_settings(overrides: dict[str, Any] | None = None, env_file: Path | None = None) -> StateSettings:
    """Build only STATE_DIR, with the same precedence as `load_settings`."""
    return _load(StateSettings, overrides, env_file)


def _load(model: type[SettingsModel], overrides: dict[str, Any] | None, env_file: Path | None) -> SettingsModel:
    if env_file is not None and not env_file.is_file():
        raise SettingsError(f"--env-file {env_file}: file not found; pass an existing file or leave the flag out")
    if env_file is None and DEFAULT_ENV_FILE.is_file():
        env_file = DEFAULT_ENV_FILE

    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    try:
        return model(_env_file=env_file, **given)
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None


def describe_validation_error(error: ValidationError) -> str:
    """Turn pydantic's report into lines such as `POLL_INTERVAL_SECONDS: must be > 0 (got '-1')`."""
    lines = []
    for problem in error.errors():
        if not problem["loc"]:
            lines.append(problem["msg"])
            continue
        name = env_name(str(problem["loc"][0]))
        if problem["type"] == "missing":
            lines.append(f"{name} is missing: set it in the environment or the env file (see config.example.env)")
            continue
        message = problem["msg"].removeprefix("Value error, ")
        got = problem.get("input")
        secret = name in ("TRUST_API_KEY", "AES_KEY_BASE64", "TRUST_INTERNAL_SERVICE_KEY")
        # A URL with user information may carry a password, so it is not repeated either.
        hidden = secret or isinstance(got, dict) or str(got) in message or "@" in str(got)
        shown = "" if hidden else f" (got {got!r})"
        lines.append(f"{name} is invalid: {message}{shown}")
    return "\n".join(lines)
