"""Text that leaves the integration (alerts, traces) with secrets and personal data removed.

Error messages are written by many hands and libraries; an alert channel is read by many people
and kept forever. So every free text passes through here before it is sent: e-mail addresses,
credentials in URLs, bearer tokens and ``secret=...`` pairs are replaced, and any value the
caller knows to be secret (the webhook URL, the Slack token) is removed wherever it appears.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@")
_URL_QUERY = re.compile(r"(?P<base>https?://[^\s?#]+)\?[^\s]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=\-!$%*#@^|]{8,}")
# A quoted Authorization header: everything after the name up to the end of the line or quote.
_AUTH_HEADER = re.compile(
    r"(?i)(?P<key>\b(?:proxy-)?authori[sz]ation\b[\"']?\s*[:=]\s*[\"']?)(?P<value>[^\"'\r\n,;}]+)"
)
_SECRET_PAIR = re.compile(
    r"(?i)\b(?P<key>[\w\-]*(?:secret|token|password|passwd|api[_\-]?key|authorization|cookie)"
    r"[\w\-]*)(?P<sep>\s*[=:]\s*|\"\s*:\s*\")(?P<value>[^\s,;&\"']+)"
)
# Slack tokens and similar opaque credentials, recognisable by their prefixes.
_KNOWN_TOKEN = re.compile(r"\b(xox[abposr]-[A-Za-z0-9\-]+|gh[pousr]_[A-Za-z0-9]{20,})")

REDACTED = "[redacted]"
EMAIL_REDACTED = "[e-mail]"

# Environment variables whose values are credentials, wherever they may be echoed back.
SECRET_VARIABLES = (
    "CTP_CLIENT_SECRET",
    "CT_PIPELINES_ERP_TOKEN",
    "CT_PIPELINES_SLACK_TOKEN",
    "CT_PIPELINES_ALERT_WEBHOOK_URL",
)
_SECRET_NAME = re.compile(r"(?i)(secret|token|password|passwd|api_?key|webhook)")
_MIN_SECRET_LENGTH = 6


def configured_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """The credentials this process holds: the known variables, and any variable named like one.

    Longest first, so a secret that contains another is removed whole.
    """
    env = os.environ if environ is None else environ
    found = {env.get(name, "") for name in SECRET_VARIABLES}
    found |= {
        value
        for name, value in env.items()
        if _SECRET_NAME.search(name) and name.startswith(("CTP_", "CT_PIPELINES_"))
    }
    return sorted((s for s in found if s and len(s) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def _variants(secret: str) -> list[str]:
    """A secret as it may appear in an echoed text: as is, URL-encoded, JSON-escaped."""
    forms = {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}
    return sorted(forms, key=len, reverse=True)


def scrub_text(text: str | None, secrets: Iterable[str] = (), *, limit: int | None = None) -> str:
    """``text`` safe to show: known secrets, e-mails and credentials replaced; optionally cut."""
    if not text:
        return ""
    for secret in secrets:
        if secret and len(secret) >= 4:
            for form in _variants(secret):
                text = text.replace(form, REDACTED)
    text = _AUTH_HEADER.sub(lambda m: f"{m['key']}{REDACTED}", text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _URL_QUERY.sub(lambda m: m["base"], text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _SECRET_PAIR.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", text)
    text = _KNOWN_TOKEN.sub(REDACTED, text)
    text = EMAIL.sub(EMAIL_REDACTED, text)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text


def scrub(text: str | None, extra: Iterable[str] = (), *, limit: int | None = None) -> str:
    """``scrub_text`` with every configured secret (``configured_secrets``) plus ``extra``.

    The one scrubber for text from outside (ERP and commercetools answers, exception messages)
    on its way to a sink: the store, a log line, Dagster metadata, the CLI, an alert.
    """
    return scrub_text(text, [*configured_secrets(), *extra], limit=limit)


def scrub_value(value: Any, extra: Iterable[str] = ()) -> Any:
    """``scrub`` applied to every string inside a JSON-like value (dicts, lists)."""
    secrets = [*configured_secrets(), *extra]

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return scrub_text(item, secrets) if item else item
        if isinstance(item, Mapping):
            return {key: walk(inner) for key, inner in item.items()}
        if isinstance(item, list | tuple):
            return [walk(inner) for inner in item]
        return item

    return walk(value)


def first_line(text: str | None) -> str:
    """The first non-empty line: tracebacks and long bodies stay in the Dagster UI."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""
