"""The persona-consistency evaluation runs and keeps the personas apart."""

from __future__ import annotations

from crs.evals.persona import generate, main, marker_classifier, run


def test_replies_are_attributed_to_the_persona_that_wrote_them() -> None:
    report = run(samples=2, seed=3)
    assert report["replies"] == 2 * 3 * 10 * 4
    assert report["markers_accuracy"] >= 0.85  # type: ignore[operator]
    assert report["centroid_accuracy"] >= 0.7  # type: ignore[operator]


def test_marker_classifier_examples() -> None:
    assert marker_classifier("Ooh, here's a thought, hon: jazz?") == "clerk"
    assert marker_classifier("Genre: jazz? (y/n)") == "expert"
    assert marker_classifier("🎉 Boom! Check out these bangers! 🎸") == "playful"
    assert marker_classifier("Hello! What are you looking for?") == "default"


def test_generation_is_seeded() -> None:
    assert generate(1, seed=5) == generate(1, seed=5)


def test_command_line(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--samples", "1"]) == 0
    assert "rule-based markers:      accuracy" in capsys.readouterr().out
