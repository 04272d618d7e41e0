"""commercetools and ERP errors share one base and its attribute names."""

from ct_pipelines.commercetools.errors import BadRequestError, RateLimitedError
from ct_pipelines.erp.errors import ErpTransientError, ErpValidationError
from ct_pipelines.kernel.errors import IntegrationError


def test_both_error_trees_share_status_code_message_and_retryable() -> None:
    ct = RateLimitedError(429, "Too many requests", [{"code": "TooManyRequests"}])
    bad = BadRequestError(400, "Invalid", [{"code": "InvalidInput"}])
    erp = ErpTransientError(503, "Unavailable", "try later")
    rejected = ErpValidationError(422, "Invalid", "no such item")
    assert all(isinstance(e, IntegrationError) for e in (ct, bad, erp, rejected))
    assert (ct.status, ct.status_code, ct.code, ct.retryable, ct.transient) == (
        429,
        429,
        "TooManyRequests",
        True,
        True,
    )
    assert (bad.code, bad.retryable) == ("InvalidInput", False)
    assert (erp.status, erp.status_code, erp.code, erp.retryable, erp.transient) == (
        503,
        503,
        "Unavailable",
        True,
        True,
    )
    assert (rejected.message, rejected.retryable) == ("no such item", False)
