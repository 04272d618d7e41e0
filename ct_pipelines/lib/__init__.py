"""Small framework-free helpers shared by the commercetools and ERP clients."""

from ct_pipelines.lib.retry import (
    DEFAULT_RETRY_POLICY,
    RetryEvent,
    RetryPolicy,
    retry_after_seconds,
    send_with_retries,
)

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "RetryEvent",
    "RetryPolicy",
    "retry_after_seconds",
    "send_with_retries",
]
