"""Alerts reach a webhook and Slack (a local receiver) for ERROR checks and failed runs."""

import json
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster._core.events import DagsterEventType

from ct_pipelines.defs.operations.resources import AlertsResource, build_alerts
from ct_pipelines.defs.operations.sensors import check_failure_alerts, run_failure_alerts
from ct_pipelines_tests.defs.operations.receiver import Receiver, receiver

SLACK_TOKEN = "xoxb-000000000-local-test-token"
CUSTOMER_EMAIL = "jo.bloggs@example.co.uk"
ERP_TOKEN = "erp-token-5f0c2d7e9a"


@pytest.fixture
def local() -> Iterator[Receiver]:
    with receiver() as running:
        yield running


@pytest.fixture
def alerts(local: Receiver) -> AlertsResource:
    return AlertsResource(
        webhook_url=f"{local.url}/hooks/T000/B000/secret-path",
        slack_token=SLACK_TOKEN,
        slack_channel="#ops",
        slack_api_url=f"{local.url}/slack/api/",
        ui_url="http://dagster.internal:3000",
    )


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def assert_clean(local: Receiver, alerts: AlertsResource) -> None:
    for request in local.requests:
        assert CUSTOMER_EMAIL not in request.body and "@example" not in request.body
        assert ERP_TOKEN not in request.body
        assert SLACK_TOKEN not in request.body
        assert "secret-path" not in request.body and str(alerts.webhook_url) not in request.body


@dg.asset(
    group_name="order_to_cash",
    check_specs=[
        dg.AssetCheckSpec("totals_parity", asset="erp_sales_orders"),
        dg.AssetCheckSpec("tax_rounding", asset="erp_sales_orders"),
    ],
)
def erp_sales_orders():
    yield dg.Output(None)
    yield dg.AssetCheckResult(
        check_name="totals_parity",
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"2 orders differ; first placed by {CUSTOMER_EMAIL} (token={ERP_TOKEN})",
        metadata={"orders_with_differences": 2, "differences": f"| UK-1 | {CUSTOMER_EMAIL} |"},
    )
    yield dg.AssetCheckResult(
        check_name="tax_rounding", passed=False, severity=dg.AssetCheckSeverity.WARN
    )


def test_a_failed_error_check_is_alerted_once_without_personal_data_or_secrets(
    instance: dg.DagsterInstance, local: Receiver, alerts: AlertsResource
) -> None:
    dg.materialize([erp_sales_orders], instance=instance)

    context = dg.build_sensor_context(instance=instance, resources={"alerts": alerts})
    result = check_failure_alerts.evaluate_tick(context)

    [hook] = local.bodies("/hooks/")
    payload = json.loads(hook)
    assert payload["alert"]["kind"] == "check_failed"
    assert payload["alert"]["facts"]["check"] == "totals_parity"
    assert payload["alert"]["facts"]["orders_with_differences"] == 2
    assert "docs/runbook.md, section `totals_parity`" in payload["text"]
    assert payload["alert"]["link"].startswith("http://dagster.internal:3000/runs/")
    [slack] = [r for r in local.requests if r.path.endswith("/slack/api/chat.postMessage")]
    assert (
        slack.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    )  # the token stays in the header
    assert "totals_parity" in slack.body and "#ops" in slack.body
    assert "tax_rounding" not in "".join(local.bodies())  # WARN: no alert
    assert_clean(local, alerts)

    # The next tick starts after what was seen: no repeat.
    again = dg.build_sensor_context(
        instance=instance, cursor=result.cursor, resources={"alerts": alerts}
    )
    check_failure_alerts.evaluate_tick(again)
    assert len(local.requests) == 2


class ExportConfig(dg.Config):
    fail: bool = True


@dg.op
def export_orders(config: ExportConfig) -> None:
    if config.fail:
        raise RuntimeError(
            f"ERP rejected order UK-100002 for {CUSTOMER_EMAIL}: Authorization: Bearer {ERP_TOKEN}"
        )


@dg.job(name="order_export_job")
def failing_export_job() -> None:
    export_orders()


def test_a_failed_run_is_alerted_without_personal_data_or_secrets(
    instance: dg.DagsterInstance, local: Receiver, alerts: AlertsResource
) -> None:
    result = failing_export_job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    [failure] = [
        record.event_log_entry.dagster_event
        for record in instance.get_records_for_run(
            result.run_id, of_type=DagsterEventType.RUN_FAILURE
        ).records
    ]
    context = dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_event=failure,
        dagster_instance=instance,
        dagster_run=run,
        resources={"alerts": alerts},
    ).for_run_failure()

    run_failure_alerts(context)

    [hook] = local.bodies("/hooks/")
    payload = json.loads(hook)
    assert payload["alert"]["kind"] == "run_failed"
    assert payload["alert"]["facts"]["job"] == "order_export_job"
    assert "RuntimeError" in payload["alert"]["facts"]["step export_orders"]
    assert "UK-100002" in payload["text"]
    assert len(local.bodies("/slack/api/")) == 1
    assert_clean(local, alerts)


def test_without_a_destination_the_sensors_skip_and_say_why(
    instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("CT_PIPELINES_ALERT_WEBHOOK_URL", "CT_PIPELINES_SLACK_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    dg.materialize([erp_sales_orders], instance=instance)
    context = dg.build_sensor_context(instance=instance, resources={"alerts": build_alerts()})
    result = check_failure_alerts.evaluate_tick(context)
    assert "CT_PIPELINES_ALERT_WEBHOOK_URL" in (result.skip_message or "")
    assert json.loads(result.cursor or "{}")["after"] is not None


def test_secrets_come_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CT_PIPELINES_ALERT_WEBHOOK_URL", "https://hooks.example/x")
    monkeypatch.setenv("CT_PIPELINES_SLACK_TOKEN", SLACK_TOKEN)
    resource = build_alerts()
    assert isinstance(resource.webhook_url, dg.EnvVar)
    assert isinstance(resource.slack_token, dg.EnvVar)
    assert resource.configured and [s.name for s in resource.senders()] == ["webhook", "slack"]
