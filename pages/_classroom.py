"""Classroom mode in the page layer: who this browser is, the lecturer key, the nickname.

Who a session is must survive a reload of its tab (a new Streamlit session) so that a
student's job stays theirs, yet must not travel with a link: whoever opens another's
`?job=` link may watch, not stop. So the owner token is a random value the server makes
(`secrets.token_urlsafe(16)`, 128 bits) and hands to this browser alone, as a first-party
cookie set by a line of JavaScript (`explorer_owner`, path /, SameSite=Strict, 30 days).
Streamlit cannot set cookies itself but reads them when a session connects
(`st.context.cookies`), so a reloaded tab, or a second tab of the same browser, comes back
as the same owner; another browser never has the cookie and gets an owner of its own. The
token is never put in the address bar. A browser that refuses cookies still works: it is
one owner until the tab is reloaded.

The lecturer key (`core.classroom.configured_key`: `EXPLORER_LECTURER_KEY` or `lecturer_key`
in `.streamlit/secrets.toml`) is typed into a password field of a form that clears itself,
compared in constant time, and remembered as "this session is the lecturer" in its
`st.session_state` only: a reload, or another tab, asks for it again.
"""

from __future__ import annotations

import secrets
import time

import streamlit as st

from core.classroom import OWNER_TOKEN, Actor, clean_nickname, configured_key, key_matches

OWNER_COOKIE = "explorer_owner"
WRONG_KEY_DELAY_SECONDS = 1.5
COOKIE_SCRIPT = "<script>document.cookie = '{name}={token}; path=/; max-age=2592000; SameSite=Strict';</script>"


def lecturer_key() -> str | None:
    """The configured key, or None: the app is then single-user."""
    if from_environment := configured_key({}):  # Asked several times a rerun: skip the secrets when it is set.
        return from_environment
    try:
        app_secrets = dict(st.secrets)
    except Exception:  # No secrets.toml at all is the usual case, and not an error.
        app_secrets = {}
    return configured_key(app_secrets)


def is_classroom() -> bool:
    return lecturer_key() is not None


def is_lecturer() -> bool:
    return bool(st.session_state.get("class_lecturer")) and is_classroom()


def session_owner() -> str:
    """This browser's owner token: from its cookie, or made now and handed to it (see the module docstring)."""
    if "class_owner" not in st.session_state:
        remembered = st.context.cookies.get(OWNER_COOKIE, "")
        if isinstance(remembered, str) and OWNER_TOKEN.fullmatch(remembered):
            st.session_state.class_owner = remembered
        else:
            st.session_state.class_owner = secrets.token_urlsafe(16)
            st.session_state.class_set_cookie = True
    if st.session_state.get("class_set_cookie"):
        # Drawn on every run of this session, so that the page the browser keeps has it.
        st.sidebar.html(
            COOKIE_SCRIPT.format(name=OWNER_COOKIE, token=st.session_state.class_owner),
            unsafe_allow_javascript=True,
        )
    return st.session_state.class_owner


def actor() -> Actor:
    """Who this session is, for the queue's and the store's permission checks."""
    return Actor(owner=session_owner(), lecturer=is_lecturer(), classroom=is_classroom())


def nickname() -> str | None:
    return st.session_state.get("class_nickname")


def _unlock(key: str) -> None:
    if key_matches(st.session_state.get("class_key_typed", ""), key):
        st.session_state.class_lecturer = True
    else:
        time.sleep(WRONG_KEY_DELAY_SECONDS)  # Slows down guessing; the comparison itself leaks no timing.
        st.session_state.class_key_error = (
            "That is not the lecturer key. Students need no key: you can train and stop your own jobs without one."
        )
    st.session_state.class_key_typed = ""  # The key never stays in a widget's state.


def _set_nickname() -> None:
    typed = st.session_state.get("class_nickname_typed", "")
    try:
        chosen = clean_nickname(typed) if typed.strip() else None
    except ValueError as error:
        st.session_state.class_nickname_error = str(error)
        return
    st.session_state.class_nickname = chosen
    # Renames this session's saved runs and waiting jobs on the board (imported here: only this needs the queue).
    from pages.shallow.jobs import rename_owner

    rename_owner(session_owner(), chosen)


def classroom_sidebar() -> None:
    """The sidebar's classroom part: the nickname, and the lecturer key (nothing in single-user mode)."""
    key = lecturer_key()
    if key is None:
        return
    owner = session_owner()
    if "class_nickname" not in st.session_state:  # A reloaded tab gets back the nickname its runs carry.
        from core.shallow.runs import RunStore, RunStoreError

        try:
            st.session_state.class_nickname = RunStore().nickname_of(owner)
        except RunStoreError:
            st.session_state.class_nickname = None
        st.session_state.class_nickname_typed = st.session_state.class_nickname or ""
    st.markdown("**Classroom mode**")
    st.text_input(
        "Your nickname on the class board",
        key="class_nickname_typed",
        on_change=_set_nickname,
        max_chars=24,
        placeholder="optional, e.g. Ada",
        help="Shown beside your best run on the class board. Nothing else about you is shown or kept.",
    )
    if "class_nickname_error" in st.session_state:
        st.error(st.session_state.pop("class_nickname_error"))
    if is_lecturer():
        st.success("You are the lecturer: you manage every job, run and the queue.", icon=":material/school:")
        st.button("Leave lecturer mode", on_click=lambda: st.session_state.pop("class_lecturer", None))
        return
    st.text_input("Lecturer key", type="password", key="class_key_typed", autocomplete="off")
    st.button("Unlock", on_click=_unlock, args=(key,), icon=":material/key:")
    if "class_key_error" in st.session_state:
        st.error(st.session_state.pop("class_key_error"))
