"""Bot personas (bundled YAML, files, settings) and the user's profile's style wishes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crs.language.personas import (
    Persona,
    PersonaError,
    UserProfile,
    Voice,
    bundled_personas,
    load_persona,
    load_persona_file,
    resolve_persona,
)
from crs.settings import Settings, SettingsError, load_settings


def test_at_least_three_clearly_different_bundled_personas() -> None:
    names = set(bundled_personas())
    assert {"default", "clerk", "expert", "playful"} <= names
    personas = [load_persona(n) for n in ("clerk", "expert", "playful")]
    assert len({p.verbosity for p in personas}) == 3
    assert len({p.emoji for p in personas}) == 3
    assert len({p.tone for p in personas}) == 3
    assert len({p.wording["items"] for p in personas}) == 3
    for p in personas:  # every template filled in (own or the default persona's)
        assert all(v is not None for v in p.templates.model_dump().values())


def test_unknown_persona_lists_the_known_ones() -> None:
    known = r"unknown persona 'pirate'; known personas: clerk, default, expert, playful"
    with pytest.raises(PersonaError, match=known):
        load_persona("pirate")


def test_persona_from_a_yaml_file_falls_back_to_default_templates(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ntone: dry\ntemplates:\n  thanks: ['Cheers.']\n", "utf-8")
    persona = load_persona_file(path)
    assert persona.templates.thanks == ("Cheers.",)
    assert persona.templates.greet == load_persona("default").templates.greet
    assert resolve_persona(str(path)) == persona


@pytest.mark.parametrize(("yaml_text", "message"), [
    ("name: x\ntemplates:\n  thanks: ['{nope}']\n", "uses ['nope']"),
    ("name: x\ntemplates:\n  error: ['Oops.']\n", "must contain {problem}"),
    ("name: x\nemoji: lots\n", "no emojis are listed"),
    ("name: x\ncolour: red\n", "colour"),
    ("name: X Y\n", "name"),
])
def test_bad_persona_files_are_rejected_with_the_reason(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text, "utf-8")
    with pytest.raises(PersonaError, match=r"bad\.yaml") as info:
        load_persona_file(path)
    assert message in str(info.value)


def test_persona_in_settings_by_name_inline_or_file(tmp_path: Path) -> None:
    assert Settings().persona == "default"
    inline = Settings.model_validate({"persona": {"name": "mine", "tone": "dry", "verbosity": "terse"}})
    assert isinstance(inline.persona, Persona) and resolve_persona(inline.persona).verbosity == "terse"
    (tmp_path / "p.yaml").write_text("name: filed\ntone: odd\n", "utf-8")
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("persona: p.yaml\n", "utf-8")
    loaded = load_settings(settings_file)
    assert resolve_persona(loaded.persona).name == "filed"  # relative to the settings file


def test_llm_settings_typos_are_named(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[llm]\nprovider = "local"\ntemprature = 0.1\n', "utf-8")
    with pytest.raises(SettingsError, match=r"unknown setting 'llm.temprature' \(did you mean 'temperature'\?\)"):
        load_settings(path)


@pytest.mark.parametrize(("wishes", "verbosity", "emoji"), [
    ((), "chatty", "some"),
    (("keep it short",), "terse", "some"),
    (("Please, no emoji",), "chatty", "none"),
    (("brief answers, without emojis",), "terse", "none"),
    (("more detail please",), "chatty", "some"),
])
def test_style_wishes_change_the_voice(wishes: tuple[str, ...], verbosity: str, emoji: str) -> None:
    voice = Voice.of(load_persona("clerk"), UserProfile(style=wishes))
    assert (voice.verbosity, voice.emoji) == (verbosity, emoji)


def test_profile_from_a_mapping() -> None:
    profile = UserProfile.from_dict({"likes": ["genre:jazz"], "facts": "has kids", "style": []})
    assert profile.likes == ("genre:jazz",) and profile.facts == ("has kids",) and not profile.is_empty
    assert UserProfile().is_empty


def _crs(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home), "CRS_HOME": str(home / "crs")}
    return subprocess.run([sys.executable, "-m", "crs.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, input="hello\n")


def test_cli_lists_personas_and_rejects_unknown_ones(tmp_path: Path) -> None:
    out = _crs("personas", home=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("default", "clerk", "expert", "playful"):
        assert name in out.stdout
    for command in ("chat", "demo"):
        bad = _crs(command, "--persona", "pirate", home=tmp_path)
        assert bad.returncode == 2
        assert "unknown persona 'pirate'; known personas: clerk, default, expert, playful" in bad.stderr
        assert "Traceback" not in bad.stderr


def test_cli_chat_speaks_in_the_chosen_persona(tmp_path: Path) -> None:
    out = _crs("chat", "--persona", "expert", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(("State criteria", "Specify criteria"))
