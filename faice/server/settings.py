"""What an operator may tune about the API (``faice serve`` options), kept on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass

MAX_BODY_BYTES = 64 * 1024 * 1024  # a 100,000-batch RED file is about 5 MiB


@dataclass
class Settings:
    """Limits and token lifetimes of the API (tests shorten them)."""

    access_seconds: float = 900.0
    refresh_seconds: float = 12 * 3600.0
    password_token_seconds: float = 86400.0
    max_body_bytes: int = MAX_BODY_BYTES
    max_batches: int = 100_000
    #: events an event stream may be behind before its client is dropped (faice.server.events)
    event_buffer: int = 1000
