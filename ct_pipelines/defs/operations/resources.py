"""Where alerts go: a generic webhook and/or Slack, configured by environment variables.

- CT_PIPELINES_ALERT_WEBHOOK_URL: a URL that takes a JSON POST (Slack/Teams incoming webhooks
  and most chat tools accept ``{"text": ...}``). Treated as a secret.
- CT_PIPELINES_SLACK_TOKEN (a Slack bot token) and CT_PIPELINES_SLACK_CHANNEL.
- CT_PIPELINES_UI_URL: the Dagster UI's address, so alerts link to the run.

Secrets reach the resource only as ``dg.EnvVar`` (resolved at run time, never shown in the UI).
With nothing configured the alert sensors skip with a message saying so.
"""

import os
from collections.abc import Mapping

import dagster as dg

from ct_pipelines.defs.operations.logic.alerts import (
    Alert,
    AlertDeliveryError,
    AlertSender,
    WebhookSender,
    deliver,
)
from ct_pipelines.defs.resources import resolved

DEFAULT_SLACK_CHANNEL = "#ct-pipelines-alerts"


# Beside the resource rather than in logic/: it speaks to Slack through dagster-slack.
class SlackSender:
    """Posts the alert's text to a Slack channel with dagster-slack's client."""

    name = "slack"

    def __init__(self, token: str, channel: str, *, base_url: str | None = None) -> None:
        self._token = token
        self._channel = channel
        self._base_url = base_url

    def __repr__(self) -> str:
        return f"SlackSender(channel={self._channel!r}, token=[redacted])"

    def send(self, alert: Alert) -> None:
        from dagster_slack import SlackResource
        from slack_sdk.errors import SlackApiError

        client = SlackResource(token=self._token).get_client()
        if self._base_url:
            client.base_url = self._base_url.rstrip("/") + "/"
        try:
            client.chat_postMessage(channel=self._channel, text=alert.text())
        except SlackApiError as exc:
            code = exc.response.get("error") if exc.response is not None else None
            raise AlertDeliveryError(f"Slack refused the alert ({code or 'error'})") from None
        except Exception as exc:
            raise AlertDeliveryError(f"Slack unreachable ({type(exc).__name__})") from None


class AlertsResource(dg.ConfigurableResource):
    """Alert destinations; none configured means alerts are only visible in the Dagster UI."""

    webhook_url: str | None = None
    slack_token: str | None = None
    slack_channel: str = DEFAULT_SLACK_CHANNEL
    # Only for tests and Slack-compatible gateways; Slack's own API by default.
    slack_api_url: str | None = None
    ui_url: str | None = None

    def senders(self) -> list[AlertSender]:
        senders: list[AlertSender] = []
        url = resolved(self.webhook_url)
        if url:
            senders.append(WebhookSender(url))
        token = resolved(self.slack_token)
        if token:
            senders.append(
                SlackSender(token, self.slack_channel, base_url=resolved(self.slack_api_url))
            )
        return senders

    @property
    def configured(self) -> bool:
        return bool(resolved(self.webhook_url) or resolved(self.slack_token))

    def secrets(self) -> list[str]:
        """Values that must never appear in an alert (scrubbed from every text)."""
        return [s for s in (resolved(self.webhook_url), resolved(self.slack_token)) if s]

    def link_base(self) -> str | None:
        return resolved(self.ui_url)

    def send(self, alert: Alert) -> list[str]:
        return deliver(alert, self.senders())


def build_alerts(environ: Mapping[str, str] = os.environ) -> AlertsResource:
    def env(name: str) -> str | None:
        return dg.EnvVar(name) if environ.get(name) else None

    return AlertsResource(
        webhook_url=env("CT_PIPELINES_ALERT_WEBHOOK_URL"),
        slack_token=env("CT_PIPELINES_SLACK_TOKEN"),
        slack_channel=environ.get("CT_PIPELINES_SLACK_CHANNEL") or DEFAULT_SLACK_CHANNEL,
        ui_url=environ.get("CT_PIPELINES_UI_URL") or None,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(resources={"alerts": build_alerts()})
