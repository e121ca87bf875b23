"""Classroom mode's rules: the lecturer key, who may manage what, the class limits, nicknames."""

from __future__ import annotations

import pytest

from core.classroom import Actor, ClassLimits, NotYours, clean_nickname, configured_key, key_matches


def test_the_key_comes_from_the_environment_first_then_the_secrets():
    """EXPLORER_LECTURER_KEY wins over secrets' lecturer_key; blank or absent means single-user mode."""
    assert configured_key({"lecturer_key": "from-secrets"}, {"EXPLORER_LECTURER_KEY": "from-env"}) == "from-env"
    assert configured_key({"lecturer_key": "from-secrets"}, {}) == "from-secrets"
    assert configured_key({}, {"EXPLORER_LECTURER_KEY": "   "}) is None
    assert configured_key(None, {}) is None


def test_key_matching_is_exact_apart_from_surrounding_spaces():
    """Only the key itself matches (a prefix, another case or an empty string does not)."""
    assert key_matches("owl-7-lantern", "owl-7-lantern")
    assert key_matches("  owl-7-lantern\n", "owl-7-lantern")
    for wrong in ("", "owl-7", "OWL-7-LANTERN", "owl-7-lantern!"):
        assert not key_matches(wrong, "owl-7-lantern")
    assert key_matches("clé-ünï", "clé-ünï")  # Non-ASCII keys compare as UTF-8 bytes.


def test_a_session_manages_only_its_own_unless_lecturer():
    """In classroom mode an owner manages its own, the lecturer everything; single-user mode anyone."""
    student = Actor(owner="a" * 22, classroom=True)
    assert student.may_manage("a" * 22)
    assert not student.may_manage("b" * 22) and not student.may_manage(None)
    assert Actor(owner="c" * 22, lecturer=True, classroom=True).may_manage("b" * 22)
    assert Actor().may_manage("b" * 22)
    with pytest.raises(NotYours, match="Job job-3 belongs to another session"):
        student.check("b" * 22, "Job job-3")
    assert Actor(owner=None, classroom=True).may_manage(None) is False


def test_limits_read_from_the_environment_and_name_a_bad_variable():
    """EXPLORER_MAX_* variables set the limits; a value that is not a number names its variable."""
    limits = ClassLimits.from_env(
        {
            "EXPLORER_MAX_WAITING_PER_SESSION": "2",
            "EXPLORER_MAX_RUNNING_PER_SESSION": "1",
            "EXPLORER_MAX_JOB_MINUTES": "7.5",
        }
    )
    assert limits == ClassLimits(waiting_per_session=2, running_per_session=1, max_job_minutes=7.5)
    assert ClassLimits.from_env({}) == ClassLimits(1, 1, None)
    with pytest.raises(ValueError, match="EXPLORER_MAX_JOB_MINUTES='ten'"):
        ClassLimits.from_env({"EXPLORER_MAX_JOB_MINUTES": "ten"})
    with pytest.raises(ValueError, match="at least one"):
        ClassLimits(waiting_per_session=0)
    with pytest.raises(ValueError, match="positive"):
        ClassLimits(max_job_minutes=0)


def test_nicknames_are_one_printable_line_of_at_most_24_characters():
    """Control characters and runs of spaces go; long names are cut; an empty one is refused."""
    assert clean_nickname("  Ada \n\t Lovelace\x07 ") == "Ada Lovelace"
    assert clean_nickname("x" * 40) == "x" * 24
    with pytest.raises(ValueError, match="at least one"):
        clean_nickname(" \n\x00 ")


def test_the_served_app_skips_streamlits_collection_after_every_rerun(monkeypatch):
    """The lecture hall's speed with thirty watchers rests on it (BENCHMARKS.md): Streamlit itself
    must read `runner.postScriptGC = false` from the app's .streamlit/config.toml."""
    from pathlib import Path

    from streamlit import config

    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    monkeypatch.delenv("STREAMLIT_RUNNER_POST_SCRIPT_GC", raising=False)
    try:
        config.get_config_options(force_reparse=True)
        assert config.get_option("runner.postScriptGC") is False
        assert config.get_option("server.fileWatcherType") == "none"
    finally:
        config.get_config_options(force_reparse=True)
