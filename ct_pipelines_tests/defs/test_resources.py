import logging

import pytest

from ct_pipelines.defs.resources import (
    CommercetoolsResource,
    ConfigurationError,
    ErpResource,
    build_resources,
    side_mode,
)

LIVE = {
    "CTP_PROJECT_KEY": "acme-prod",
    "CTP_CLIENT_ID": "client-id-123",
    "CTP_CLIENT_SECRET": "s3cr3t-never-shown",
    "CTP_AUTH_URL": "https://auth.europe-west1.gcp.commercetools.com",
    "CTP_API_URL": "https://api.europe-west1.gcp.commercetools.com",
    "CTP_SCOPES": "view_orders:acme-prod manage_orders:acme-prod",
}


def test_without_credentials_both_sides_use_the_sandbox() -> None:
    resources = build_resources({})
    assert resources["commercetools"].uses_sandbox
    assert resources["erp"].uses_sandbox
    assert "sandbox" in resources["commercetools"].describe()


def test_live_mode_refuses_to_start_without_credentials() -> None:
    with pytest.raises(ConfigurationError, match="CTP_CLIENT_SECRET"):
        build_resources({"CT_PIPELINES_MODE": "live"})
    with pytest.raises(ConfigurationError, match="Refusing to fall back"):
        CommercetoolsResource(mode="live", project_key="x").uses_sandbox  # noqa: B018


def test_sides_are_chosen_independently() -> None:
    environ = {**LIVE, "CT_PIPELINES_ERP": "sandbox"}
    assert side_mode("commercetools", environ) == "auto"
    assert side_mode("erp", environ) == "sandbox"
    commercetools = CommercetoolsResource(
        mode="auto",
        project_key=LIVE["CTP_PROJECT_KEY"],
        client_id=LIVE["CTP_CLIENT_ID"],
        client_secret=LIVE["CTP_CLIENT_SECRET"],
        auth_url=LIVE["CTP_AUTH_URL"],
        api_url=LIVE["CTP_API_URL"],
        scopes=LIVE["CTP_SCOPES"],
    )
    assert not commercetools.uses_sandbox
    assert ErpResource(mode="sandbox", base_url="https://erp.example").uses_sandbox
    assert not ErpResource(mode="auto", base_url="https://erp.example").uses_sandbox


def test_unknown_mode_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="expected one of auto, sandbox, live"):
        side_mode("erp", {"CT_PIPELINES_MODE": "production"})


def test_secret_never_shown_by_describe_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    resource = CommercetoolsResource(
        mode="auto",
        project_key=LIVE["CTP_PROJECT_KEY"],
        client_id=LIVE["CTP_CLIENT_ID"],
        client_secret=LIVE["CTP_CLIENT_SECRET"],
        auth_url=LIVE["CTP_AUTH_URL"],
        api_url=LIVE["CTP_API_URL"],
        scopes=LIVE["CTP_SCOPES"],
    )
    assert LIVE["CTP_CLIENT_SECRET"] not in resource.describe()
    assert LIVE["CTP_CLIENT_SECRET"] not in caplog.text


def test_environment_values_are_bound_as_env_vars_not_literals() -> None:
    import dagster as dg

    resources = build_resources(LIVE)
    secret = resources["commercetools"].client_secret
    # An EnvVar is resolved at run time and is not displayed in the UI.
    assert isinstance(secret, dg.EnvVar)
    assert secret.env_var_name == "CTP_CLIENT_SECRET"
