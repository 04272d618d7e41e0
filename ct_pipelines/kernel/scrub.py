"""Text that leaves the integration (alerts, traces) with secrets and personal data removed.

Error messages are written by many hands and libraries; an alert channel is read by many people
and kept forever. So every free text passes through here before it is sent: e-mail addresses,
credentials in URLs, bearer tokens and ``secret=...`` pairs are replaced, and any value the
caller knows to be secret (the webhook URL, the Slack token) is removed wherever it appears.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@")
_URL_QUERY = re.compile(r"(?P<base>https?://[^\s?#]+)\?[^\s]*")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}")
_SECRET_PAIR = re.compile(
    r"(?i)\b(?P<key>[\w\-]*(?:secret|token|password|passwd|api[_\-]?key|authorization|cookie)"
    r"[\w\-]*)(?P<sep>\s*[=:]\s*|\"\s*:\s*\")(?P<value>[^\s,;&\"']+)"
)
# Slack tokens and similar opaque credentials, recognisable by their prefixes.
_KNOWN_TOKEN = re.compile(r"\b(xox[abposr]-[A-Za-z0-9\-]+|gh[pousr]_[A-Za-z0-9]{20,})")

REDACTED = "[redacted]"
EMAIL_REDACTED = "[e-mail]"


def scrub_text(text: str | None, secrets: Iterable[str] = (), *, limit: int | None = None) -> str:
    """``text`` safe to show: known secrets, e-mails and credentials replaced; optionally cut."""
    if not text:
        return ""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)
    text = _URL_QUERY.sub(lambda m: m["base"], text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _SECRET_PAIR.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", text)
    text = _KNOWN_TOKEN.sub(REDACTED, text)
    text = EMAIL.sub(EMAIL_REDACTED, text)
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text


def first_line(text: str | None) -> str:
    """The first non-empty line: tracebacks and long bodies stay in the Dagster UI."""
    for line in (text or "").splitlines():
        if line.strip():
            return line.strip()
    return ""
