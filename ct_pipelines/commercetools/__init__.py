"""commercetools HTTP API client, settings and models (plain Python, no Dagster)."""

from ct_pipelines.commercetools.auth import AccessToken, TokenProvider
from ct_pipelines.commercetools.client import (
    DEFAULT_TIMEOUT,
    MAX_PAGE_SIZE,
    MAX_UPDATE_ACTIONS,
    CommercetoolsClient,
)
from ct_pipelines.commercetools.errors import (
    AuthError,
    BadRequestError,
    CommercetoolsError,
    ConcurrentModificationError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    TooManyActionsError,
)
from ct_pipelines.commercetools.settings import CommercetoolsSettings

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_PAGE_SIZE",
    "MAX_UPDATE_ACTIONS",
    "AccessToken",
    "AuthError",
    "BadRequestError",
    "CommercetoolsClient",
    "CommercetoolsError",
    "CommercetoolsSettings",
    "ConcurrentModificationError",
    "NotFoundError",
    "RateLimitedError",
    "ServiceUnavailableError",
    "TokenProvider",
    "TooManyActionsError",
]
