import logging

import dagster as dg
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
    assert not ErpResource(
        mode="auto", base_url="https://erp.example", api_token="erp-token"
    ).uses_sandbox


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


@pytest.mark.parametrize("missing", [name for name in LIVE if name != "CTP_SCOPES"])
def test_five_of_six_ctp_variables_is_a_load_error_naming_the_missing_one(missing: str) -> None:
    environ = {k: v for k, v in LIVE.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing) as raised:
        build_resources(environ)
    assert "Refusing to fall back to the sandbox" in str(raised.value)
    assert LIVE["CTP_CLIENT_SECRET"] not in str(raised.value)


def test_a_blank_variable_counts_as_missing() -> None:
    with pytest.raises(ConfigurationError, match="CTP_CLIENT_ID missing or blank"):
        build_resources({**LIVE, "CTP_CLIENT_ID": "  "})
    with pytest.raises(ConfigurationError, match="CTP_API_URL"):
        resource = CommercetoolsResource(
            mode="auto",
            project_key=LIVE["CTP_PROJECT_KEY"],
            client_id=LIVE["CTP_CLIENT_ID"],
            client_secret=LIVE["CTP_CLIENT_SECRET"],
            auth_url=LIVE["CTP_AUTH_URL"],
            api_url="",
        )
        assert resource.uses_sandbox


def test_scopes_are_optional_but_alone_still_need_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    without_scopes = {k: v for k, v in LIVE.items() if k != "CTP_SCOPES"}
    for name, value in without_scopes.items():
        monkeypatch.setenv(name, value)  # the resources read their EnvVars
    assert not build_resources(without_scopes)["commercetools"].uses_sandbox
    with pytest.raises(ConfigurationError, match="CTP_PROJECT_KEY, CTP_CLIENT_ID"):
        build_resources({"CTP_SCOPES": LIVE["CTP_SCOPES"]})


def test_erp_url_and_token_go_together(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="CT_PIPELINES_ERP_TOKEN"):
        build_resources({"CT_PIPELINES_ERP_URL": "https://erp.example"})
    with pytest.raises(ConfigurationError, match="CT_PIPELINES_ERP_URL"):
        build_resources({"CT_PIPELINES_ERP_TOKEN": "t0ken"})
    both = {"CT_PIPELINES_ERP_URL": "https://erp.example", "CT_PIPELINES_ERP_TOKEN": "t0ken"}
    for name, value in both.items():
        monkeypatch.setenv(name, value)
    erp = build_resources(both)["erp"]
    assert not erp.uses_sandbox


def test_the_code_location_refuses_to_load_with_partial_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ct_pipelines.definitions import defs

    for name, value in LIVE.items():
        if name != "CTP_CLIENT_SECRET":
            monkeypatch.setenv(name, value)
    with pytest.raises(Exception) as raised:
        loaded = defs()
        if not isinstance(loaded, dg.Definitions):
            loaded()
    assert "CTP_CLIENT_SECRET" in repr(raised.value) + str(raised.value.__cause__)


def test_dagster_definitions_validate_fails_naming_the_missing_variable() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[2]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CTP_")}
    environ.update({k: v for k, v in LIVE.items() if k != "CTP_API_URL"})
    dagster = str(Path(sys.executable).parent / "dagster")
    result = subprocess.run(
        [dagster, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=root,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    assert "CTP_API_URL" in result.stdout + result.stderr
    assert LIVE["CTP_CLIENT_SECRET"] not in result.stdout + result.stderr
