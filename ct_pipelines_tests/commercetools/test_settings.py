"""Settings from the Merchant Center's environment-variable export."""

from __future__ import annotations

import pytest

from ct_pipelines.commercetools import CommercetoolsSettings

SECRET = "mc-export-secret-8fJ2kQ9zL4"

EXPORT = {
    "CTP_PROJECT_KEY": "uk-shop",
    "CTP_CLIENT_SECRET": SECRET,
    "CTP_CLIENT_ID": "erp-sync",
    "CTP_AUTH_URL": "https://auth.europe-west1.gcp.commercetools.com",
    "CTP_API_URL": "https://api.europe-west1.gcp.commercetools.com",
    "CTP_SCOPES": "manage_orders:uk-shop manage_products:uk-shop view_channels:uk-shop",
}


def test_reads_the_merchant_center_export() -> None:
    settings = CommercetoolsSettings.from_env(EXPORT)
    assert settings.project_key == "uk-shop"
    assert settings.client_id == "erp-sync"
    assert settings.client_secret.get_secret_value() == SECRET
    assert settings.token_url == "https://auth.europe-west1.gcp.commercetools.com/oauth/token"
    assert settings.project_url == "https://api.europe-west1.gcp.commercetools.com/uk-shop"
    assert settings.scopes == [
        "manage_orders:uk-shop",
        "manage_products:uk-shop",
        "view_channels:uk-shop",
    ]


@pytest.mark.parametrize(
    "scopes",
    [
        "manage_orders:uk-shop,view_channels:uk-shop",
        "manage_orders:uk-shop, view_channels:uk-shop",
        "  manage_orders:uk-shop   view_channels:uk-shop ",
    ],
)
def test_scopes_may_be_comma_or_space_separated(scopes: str) -> None:
    settings = CommercetoolsSettings.from_env({**EXPORT, "CTP_SCOPES": scopes})
    assert settings.scopes == ["manage_orders:uk-shop", "view_channels:uk-shop"]


@pytest.mark.parametrize(
    "auth_url",
    [
        "https://auth.europe-west1.gcp.commercetools.com",
        "https://auth.europe-west1.gcp.commercetools.com/",
        "https://auth.europe-west1.gcp.commercetools.com/oauth/token",
        "https://auth.europe-west1.gcp.commercetools.com/oauth/token/",
    ],
)
def test_token_url_tolerates_trailing_slash_and_full_endpoint(auth_url: str) -> None:
    settings = CommercetoolsSettings.from_env({**EXPORT, "CTP_AUTH_URL": auth_url})
    assert settings.token_url == "https://auth.europe-west1.gcp.commercetools.com/oauth/token"


def test_missing_from_env_names_unset_and_blank_variables() -> None:
    assert CommercetoolsSettings.missing_from_env(EXPORT) == []
    partial = {**EXPORT, "CTP_SCOPES": "  "}
    del partial["CTP_CLIENT_ID"]
    partial["CTP_API_URL"] = ""
    assert CommercetoolsSettings.missing_from_env(partial) == ["CTP_CLIENT_ID", "CTP_API_URL"]
    with pytest.raises(ValueError, match="CTP_CLIENT_ID, CTP_API_URL"):
        CommercetoolsSettings.from_env(partial)


def test_scopes_are_optional_as_in_the_oauth_grant() -> None:
    without = {k: v for k, v in EXPORT.items() if k != "CTP_SCOPES"}
    assert CommercetoolsSettings.missing_from_env(without) == []
    assert CommercetoolsSettings.from_env(without).scopes == []
    assert CommercetoolsSettings.from_env({**EXPORT, "CTP_SCOPES": " "}).scopes == []


def test_secret_hidden_in_repr_str_and_dump() -> None:
    settings = CommercetoolsSettings.from_env(EXPORT)
    for text in (
        repr(settings),
        str(settings),
        str(settings.model_dump()),
        settings.model_dump_json(),
    ):
        assert SECRET not in text


def test_blank_project_key_is_rejected_and_keys_are_trimmed() -> None:
    assert (
        CommercetoolsSettings.from_env({**EXPORT, "CTP_PROJECT_KEY": " uk-shop\n"}).project_key
        == "uk-shop"
    )
    with pytest.raises(ValueError):
        CommercetoolsSettings(
            project_key=" ",
            client_id="c",
            client_secret="s",  # type: ignore[arg-type]
            auth_url="https://auth.example",
            api_url="https://api.example",
            scopes=[],
        )
