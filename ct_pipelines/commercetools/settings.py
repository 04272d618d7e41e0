"""Connection settings for one commercetools project, read from the Merchant Center export."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

# The names of the Merchant Center "Environment variables" export.
ENV_VARIABLES: tuple[str, ...] = (
    "CTP_PROJECT_KEY",
    "CTP_CLIENT_ID",
    "CTP_CLIENT_SECRET",
    "CTP_AUTH_URL",
    "CTP_API_URL",
    "CTP_SCOPES",
)
#: CTP_SCOPES may be left out, as in the OAuth grant: the token then carries every scope the
#: API client has.
OPTIONAL_ENV_VARIABLES: tuple[str, ...] = ("CTP_SCOPES",)
REQUIRED_ENV_VARIABLES: tuple[str, ...] = tuple(
    name for name in ENV_VARIABLES if name not in OPTIONAL_ENV_VARIABLES
)
_TOKEN_PATH = "/oauth/token"


def split_scopes(value: str) -> list[str]:
    """Scopes as the export writes them (space-separated) or as people paste them (commas)."""
    return [scope for scope in re.split(r"[\s,]+", value) if scope]


class CommercetoolsSettings(BaseModel):
    """Where the project lives and how to authenticate; the secret is a ``SecretStr``."""

    model_config = ConfigDict(frozen=True)

    project_key: str
    client_id: str
    client_secret: SecretStr
    auth_url: str  # host only, e.g. https://auth.europe-west1.gcp.commercetools.com
    api_url: str
    #: empty: ask for no particular scope (the token carries all of the API client's)
    scopes: list[str] = []

    @field_validator("project_key", "client_id")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("auth_url")
    @classmethod
    def _auth_host(cls, value: str) -> str:
        # The export has no path, but people copy the token endpoint too; accept both.
        value = value.strip().rstrip("/")
        if value.endswith(_TOKEN_PATH):
            value = value[: -len(_TOKEN_PATH)].rstrip("/")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_host(cls, value: str) -> str:
        return value.strip().rstrip("/")

    @field_validator("scopes", mode="before")
    @classmethod
    def _scopes(cls, value: object) -> object:
        if isinstance(value, str):
            return split_scopes(value)
        return value

    @property
    def token_url(self) -> str:
        return f"{self.auth_url}{_TOKEN_PATH}"

    @property
    def project_url(self) -> str:
        return f"{self.api_url}/{self.project_key}"

    @staticmethod
    def missing_from_env(environ: Mapping[str, str] = os.environ) -> list[str]:
        """The export's required variables that are unset or blank, in export order
        (``CTP_SCOPES`` is optional)."""
        return [name for name in REQUIRED_ENV_VARIABLES if not (environ.get(name) or "").strip()]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> CommercetoolsSettings:
        missing = cls.missing_from_env(environ)
        if missing:
            # Names only: the values may be secrets.
            raise ValueError(f"commercetools settings missing: {', '.join(missing)}")
        return cls(
            project_key=environ["CTP_PROJECT_KEY"],
            client_id=environ["CTP_CLIENT_ID"],
            client_secret=SecretStr(environ["CTP_CLIENT_SECRET"].strip()),
            auth_url=environ["CTP_AUTH_URL"],
            api_url=environ["CTP_API_URL"],
            scopes=split_scopes(environ.get("CTP_SCOPES") or ""),
        )
