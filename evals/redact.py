"""Secrets out of text: every error message the engine keeps or shows passes through :func:`scrub`.

An endpoint may echo its ``Authorization`` header in an error body. :func:`scrub` replaces the keys
it is given (the endpoint's own, and any other it knows of) and anything shaped like a credential:
``Bearer …``, ``sk-…``/``pk-…``/``rk-…`` keys, this service's ``ctx_…`` tokens, GitHub, Slack, AWS,
Google and Hugging Face tokens, JWTs, and ``api_key=…``/``"token": "…"`` assignments. Replacements
are ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
EXCERPT_CHARS = 300  # the most of a server's body any message keeps

_SHAPES = re.compile(
    r"(?i:\bbearer\s+)[A-Za-z0-9._~+/=\-]{4,}"  # an Authorization header's credential
    r"|(?i:\bbasic\s+)[A-Za-z0-9+/=]{8,}"
    r"|\b(?:sk|pk|rk)-[A-Za-z0-9_\-]{6,}"  # OpenAI, Anthropic, DeepSeek, Stripe-style keys
    r"|\bctx_[A-Za-z0-9_\-]{8,}"  # this service's API tokens
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,}"
    r"|\bxox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"
    r"|\bAIza[0-9A-Za-z_\-]{30,}"
    r"|\bhf_[A-Za-z0-9]{20,}"
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # a JWT
)
# "api_key": "value", api-key=value, x-api-key: value, token=value, password: value, ...
_ASSIGNED = re.compile(
    r"""(?i)((?:api[_\-]?key|x-api-key|access[_\-]?token|auth[_\-]?token|token|secret|password|authorization)"""
    r"""["']?\s*[:=]\s*["']?)(?!\*\*\*)([^\s"',;}&]{4,})"""
)


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with ``secrets`` and anything shaped like a credential replaced by ``***``."""
    if not text:
        return text
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _SHAPES.sub(_mask_shape, text)
    return _ASSIGNED.sub(lambda m: m.group(1) + MASK, text)


def _mask_shape(m: re.Match[str]) -> str:
    word = m.group(0)
    lowered = word.lower()
    for prefix in ("bearer", "basic"):
        if lowered.startswith(prefix):
            return word[: len(prefix)] + " " + MASK
    return MASK


def excerpt(text: str, secrets: Iterable[str | None] = (), limit: int = EXCERPT_CHARS) -> str:
    """A scrubbed excerpt of at most ``limit`` characters (scrubbed before cutting, so a key cut in
    half is masked whole)."""
    cleaned = scrub(text, secrets)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "…"
