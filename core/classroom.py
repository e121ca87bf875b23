"""Classroom mode: the lecturer key, who may manage which job or run, and the class's limits.

Classroom mode is on when a lecturer key is configured (`EXPLORER_LECTURER_KEY`, or
`lecturer_key` in `.streamlit/secrets.toml`, which the page layer reads and passes in);
without one the app is single-user and everybody may manage everything, as before.
In classroom mode a session manages only what it owns (its jobs, its runs), identified by
an owner token that the page keeps per browser; whoever typed the key manages everything.
"""

from __future__ import annotations

import hmac
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

LECTURER_KEY_ENV = "EXPLORER_LECTURER_KEY"
OWNER_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
"""What an owner token looks like (the page makes them with `secrets.token_urlsafe(16)`)."""
NICKNAME_LENGTH = 24


def configured_key(secrets: Mapping | None = None, environ: Mapping | None = None) -> str | None:
    """The lecturer key: the environment first, then the app's secrets; None (single-user) when unset or blank."""
    environ = os.environ if environ is None else environ
    key = environ.get(LECTURER_KEY_ENV) or (secrets or {}).get("lecturer_key") or ""
    return str(key).strip() or None


def key_matches(typed: str, configured: str) -> bool:
    """Whether `typed` is the lecturer key, compared in constant time (no timing hint of how close it was)."""
    return hmac.compare_digest(typed.strip().encode("utf-8"), configured.encode("utf-8"))


def clean_nickname(text: str) -> str:
    """A nickname as the class board shows it: printable, one line, at most 24 characters.

    Raises:
        ValueError: nothing printable is left.
    """
    cleaned = " ".join("".join(ch for ch in text if ch.isprintable()).split())[:NICKNAME_LENGTH]
    if not cleaned:
        raise ValueError("A nickname needs at least one letter or digit.")
    return cleaned


class NotYours(PermissionError):
    """A session tried to stop, cancel or delete what another session owns."""


@dataclass(frozen=True)
class Actor:
    """Who asks for an action: a session's owner token, and whether it typed the lecturer key.

    `classroom=False` is the single-user app, where everybody manages everything.
    """

    owner: str | None = None
    lecturer: bool = False
    classroom: bool = False

    def may_manage(self, owner: str | None) -> bool:
        """Whether this actor may stop, cancel or delete something owned by `owner`."""
        return not self.classroom or self.lecturer or (self.owner is not None and owner == self.owner)

    def check(self, owner: str | None, what: str) -> None:
        """Raises `NotYours` with a message for the page when this actor may not manage `what`."""
        if not self.may_manage(owner):
            raise NotYours(f"{what} belongs to another session: you can watch it, not change it.")


ANYONE = Actor()


@dataclass(frozen=True)
class ClassLimits:
    """How the lecturer shares the server in classroom mode.

    Args:
        waiting_per_session: jobs one session may have waiting at once.
        running_per_session: jobs of one session that train at the same time.
        max_job_minutes: the longest run (the estimate before it starts) a student may queue;
            None for no cap.
    """

    waiting_per_session: int = 1
    running_per_session: int = 1
    max_job_minutes: float | None = None

    def __post_init__(self):
        if self.waiting_per_session < 1 or self.running_per_session < 1:
            raise ValueError("Each session needs at least one waiting and one running job.")
        if self.max_job_minutes is not None and not (math.isfinite(self.max_job_minutes) and self.max_job_minutes > 0):
            raise ValueError("The job-length cap must be a positive number of minutes (or none).")

    @classmethod
    def from_env(cls, environ: Mapping | None = None) -> ClassLimits:
        """Limits from `EXPLORER_MAX_WAITING_PER_SESSION`, `..._RUNNING_PER_SESSION`, `EXPLORER_MAX_JOB_MINUTES`.

        Raises:
            ValueError: a variable that is not a number, naming it.
        """
        environ = os.environ if environ is None else environ
        values = {}
        for field_name, variable, kind in (
            ("waiting_per_session", "EXPLORER_MAX_WAITING_PER_SESSION", int),
            ("running_per_session", "EXPLORER_MAX_RUNNING_PER_SESSION", int),
            ("max_job_minutes", "EXPLORER_MAX_JOB_MINUTES", float),
        ):
            text = environ.get(variable, "").strip()
            if text:
                try:
                    values[field_name] = kind(text)
                except ValueError:
                    raise ValueError(f"{variable}={text!r} is not a {kind.__name__}.") from None
        return cls(**values)
