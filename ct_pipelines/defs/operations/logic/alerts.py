"""Alerts for the people who run the business: what failed, how bad, where to read more.

An alert names the check or job, the asset, the severity, counts from the check's metadata and
the runbook section to follow. It never carries secrets or personal data: free text is scrubbed
(``ops.scrub``), only numeric metadata is copied, and the destinations' own credentials (the
webhook URL, the Slack token) are removed from anything that is sent or raised.

Destinations: a generic JSON webhook (``{"text": ..., "alert": {...}}``, which Slack, Teams
workflows and most chat tools accept) and Slack through dagster-slack's client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import httpx

from ct_pipelines.kernel.scrub import first_line, scrub_text

AlertKind = Literal["check_failed", "check_recovered", "run_failed"]
RUNBOOK = "docs/runbook.md"
_MAX_FACTS = 10
_MAX_TEXT = 300


class AlertDeliveryError(RuntimeError):
    """An alert could not be delivered; the message names the destination, never its address."""


@dataclass(frozen=True)
class Alert:
    kind: AlertKind
    title: str
    summary: str
    facts: dict[str, str | int | float | bool] = field(default_factory=dict)
    advice: str = ""
    link: str | None = None

    def text(self) -> str:
        lines = [self.title, self.summary]
        lines += [f"• {name}: {value}" for name, value in self.facts.items()]
        if self.advice:
            lines.append(self.advice)
        if self.link:
            lines.append(self.link)
        return "\n".join(line for line in lines if line)

    def payload(self) -> dict[str, Any]:
        return {
            "text": self.text(),
            "alert": {
                "kind": self.kind,
                "title": self.title,
                "summary": self.summary,
                "facts": dict(self.facts),
                "advice": self.advice,
                "link": self.link,
            },
        }


def _numeric_facts(metadata: Mapping[str, Any]) -> dict[str, int | float | bool]:
    """Counts and ratios only: tables and JSON in check metadata may name orders or customers."""
    facts: dict[str, int | float | bool] = {}
    for name, raw in metadata.items():
        value = getattr(raw, "value", raw)
        if isinstance(value, bool | int | float) and not name.startswith("dagster/"):
            facts[str(name)] = value
        if len(facts) >= _MAX_FACTS:
            break
    return facts


def _run_link(ui_url: str | None, run_id: str | None) -> str | None:
    if not ui_url or not run_id:
        return None
    return f"{ui_url.rstrip('/')}/runs/{run_id}"


def check_failure_alert(
    *,
    asset: str,
    check: str,
    severity: str,
    description: str | None,
    metadata: Mapping[str, Any],
    run_id: str | None,
    at: datetime,
    ui_url: str | None = None,
    secrets: Iterable[str] = (),
) -> Alert:
    secrets = list(secrets)
    summary = scrub_text(first_line(description), secrets, limit=_MAX_TEXT)
    return Alert(
        kind="check_failed",
        title=f"[{severity}] check {check} failed on {asset}",
        summary=summary or f"The asset check {check} did not pass.",
        facts={
            "check": check,
            "asset": asset,
            "severity": severity,
            "evaluated_at": at.isoformat(timespec="seconds"),
            **_numeric_facts(metadata),
        },
        advice=f"What to do: {RUNBOOK}, section `{check}`.",
        link=_run_link(ui_url, run_id),
    )


def check_recovered_alert(
    *, asset: str, check: str, run_id: str | None, at: datetime, ui_url: str | None = None
) -> Alert:
    return Alert(
        kind="check_recovered",
        title=f"[RESOLVED] check {check} passes again on {asset}",
        summary=f"The asset check {check} passed at {at.isoformat(timespec='seconds')}.",
        facts={"check": check, "asset": asset},
        link=_run_link(ui_url, run_id),
    )


@dataclass(frozen=True)
class StepFailure:
    step: str
    error_type: str | None
    message: str | None


def run_failure_alert(
    *,
    job: str,
    run_id: str,
    partition: str | None,
    failures: Sequence[StepFailure],
    run_message: str | None = None,
    ui_url: str | None = None,
    secrets: Iterable[str] = (),
) -> Alert:
    secrets = list(secrets)
    facts: dict[str, str | int | float | bool] = {"job": job, "run_id": run_id}
    if partition:
        facts["partition"] = partition
    for failure in failures[:5]:
        reason = scrub_text(first_line(failure.message), secrets, limit=200)
        facts[f"step {failure.step}"] = f"{failure.error_type or 'error'}: {reason}".rstrip(": ")
    if len(failures) > 5:
        facts["more failed steps"] = len(failures) - 5
    summary = (
        f"{len(failures)} step(s) failed."
        if failures
        else scrub_text(first_line(run_message), secrets, limit=_MAX_TEXT) or "The run failed."
    )
    return Alert(
        kind="run_failed",
        title=f"[ERROR] run of {job} failed",
        summary=summary,
        facts=facts,
        advice=f"What to do: {RUNBOOK}, section `Failed runs`.",
        link=_run_link(ui_url, run_id),
    )


# --- delivery --------------------------------------------------------------------------------


class AlertSender(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


class WebhookSender:
    """POSTs the alert as JSON to one URL (the URL itself is treated as a secret)."""

    name = "webhook"

    def __init__(
        self, url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self._url = url
        self._timeout = timeout
        self._transport = transport

    def __repr__(self) -> str:
        return "WebhookSender(url=[redacted])"

    def send(self, alert: Alert) -> None:
        try:
            with httpx.Client(timeout=self._timeout, transport=self._transport) as client:
                response = client.post(self._url, json=alert.payload())
        except httpx.HTTPError as exc:
            # httpx messages may quote the URL, which may embed a token: say only what happened.
            raise AlertDeliveryError(f"webhook unreachable ({type(exc).__name__})") from None
        if response.status_code >= 400:
            raise AlertDeliveryError(f"webhook answered HTTP {response.status_code}")


def deliver(alert: Alert, senders: Sequence[AlertSender]) -> list[str]:
    """Send to every destination; all are tried before a failure is raised."""
    delivered: list[str] = []
    problems: list[str] = []
    for sender in senders:
        try:
            sender.send(alert)
        except AlertDeliveryError as exc:
            problems.append(f"{sender.name}: {exc}")
        else:
            delivered.append(sender.name)
    if problems:
        raise AlertDeliveryError("; ".join(problems))
    return delivered
