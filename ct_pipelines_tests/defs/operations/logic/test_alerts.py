from datetime import UTC, datetime, timedelta

import httpx
import pytest

from ct_pipelines.defs.operations.logic.alerts import (
    AlertDeliveryError,
    StepFailure,
    WebhookSender,
    check_failure_alert,
    deliver,
    run_failure_alert,
)
from ct_pipelines.defs.operations.logic.check_alerts import (
    CheckAlertState,
    CheckEvaluation,
    decide_check_alerts,
)
from ct_pipelines.kernel.scrub import scrub_text

AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def test_scrub_removes_emails_credentials_and_known_secrets() -> None:
    text = (
        "customer ella.evans996@example.co.uk failed; POST https://user:pw@erp.example/api?token=abc "
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload client_secret=s3cr3t-value "
        "xoxb-1234-5678-abcdef hook https://hooks.example/T000/B000/XXXX"
    )
    clean = scrub_text(text, ["https://hooks.example/T000/B000/XXXX"])
    for leaked in (
        "ella.evans996",
        "example.co.uk",
        "user:pw",
        "token=abc",
        "eyJhbGciOiJIUzI1NiJ9",
        "s3cr3t-value",
        "xoxb-1234",
        "B000/XXXX",
    ):
        assert leaked not in clean
    assert "[e-mail]" in clean
    assert "https://[redacted]@erp.example/api" in clean


def test_check_alert_copies_counts_only_and_points_to_the_runbook() -> None:
    alert = check_failure_alert(
        asset="erp_sales_orders",
        check="orphaned_orders",
        severity="ERROR",
        description="3 orders not in the ERP, first placed by jo@example.com\nsecond line",
        metadata={"orphaned_orders": 3, "orders": "| UK-1 | jo@example.com |", "ratio": 0.5},
        run_id="abc123",
        at=AT,
        ui_url="http://dagster.local:3000",
    )
    payload = alert.payload()
    assert payload["alert"]["facts"]["orphaned_orders"] == 3
    assert "orders" not in payload["alert"]["facts"]
    assert "@" not in payload["text"].replace("http://", "")
    assert "second line" not in payload["text"]
    assert "docs/runbook.md, section `orphaned_orders`" in payload["text"]
    assert payload["alert"]["link"] == "http://dagster.local:3000/runs/abc123"


def test_run_alert_names_steps_and_error_types_without_secrets() -> None:
    alert = run_failure_alert(
        job="order_export_job",
        run_id="r1",
        partition="2026-11-19",
        failures=[
            StepFailure("erp_sales_orders", "ErpError", "401 for token=abcdef123 at x@y.org")
        ],
        secrets=["abcdef123"],
    )
    text = alert.text()
    assert "order_export_job" in text and "erp_sales_orders" in text and "ErpError" in text
    assert "abcdef123" not in text and "x@y.org" not in text


def _evaluation(storage_id: int, passed: bool, minutes: int, severity: str = "ERROR"):
    return CheckEvaluation(
        storage_id=storage_id,
        at=AT + timedelta(minutes=minutes),
        asset="erp_sales_orders",
        check="totals_parity",
        passed=passed,
        severity=severity,
        description=None,
        metadata={},
        run_id=f"run-{storage_id}",
    )


def test_one_alert_per_incident_then_an_all_clear() -> None:
    alerts, state = decide_check_alerts(
        CheckAlertState(),
        [_evaluation(1, False, 0), _evaluation(2, False, 60), _evaluation(3, True, 120)],
    )
    assert [a.kind for a in alerts] == ["check_failed", "check_recovered"]
    assert state.after == 3 and state.alerted == {}

    alerts, state = decide_check_alerts(
        state, [_evaluation(4, False, 180), _evaluation(5, False, 180 + 7 * 60)]
    )
    # Still failing six hours later: told again.
    assert [a.kind for a in alerts] == ["check_failed", "check_failed"]

    alerts, _ = decide_check_alerts(CheckAlertState(), [_evaluation(6, False, 0, "WARN")])
    assert alerts == []


def test_webhook_failure_does_not_reveal_the_url() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    secret_url = "https://hooks.example/services/T0/B0/SECRETPATH"
    sender = WebhookSender(secret_url, transport=httpx.MockTransport(refuse))
    alert = run_failure_alert(job="dispatch_job", run_id="r", partition=None, failures=[])
    with pytest.raises(AlertDeliveryError) as raised:
        deliver(alert, [sender])
    assert "SECRETPATH" not in str(raised.value) and "HTTP 500" in str(raised.value)
    assert "SECRETPATH" not in repr(sender)
