"""Dialogue scripts: the format's errors, the expectations, the runner, the command and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crs.cli import app
from crs.evals.dialogue_report import compare_runs, markdown_report, summarise
from crs.evals.dialogues import RecommenderPool, format_failure, run_script
from crs.evals.expect import check_memory, check_reply, quick_reply_labels
from crs.evals.script import Expect, MemoryCheck, ScriptError, find_scripts, load_script_text
from crs.language.reply import Pending, Question, RecommendedItem, Reply

SUITE = Path(__file__).parent / "dialogues"
FAST = "settings: {embeddings: false}\n"  # the offline parser alone: these tests are about the runner


def _error(text: str) -> str:
    with pytest.raises(ScriptError) as info:
        load_script_text(text, "my.dialogue.yaml")
    return str(info.value)


@pytest.mark.parametrize(("text", "message"), [
    ("turns:\n  - say: hi\n  - say: jazz\n    expect: {action: ask, colour: red}\n",
     "my.dialogue.yaml, turn 2 (line 3): expect.colour: unknown key"),
    ("turns:\n  - say: hi\n    do: {type: recommend_now}\n", "turn 1 (line 2): a turn needs exactly one of"),
    ("turns:\n  - say: hi\n    expect: {action: dance}\n", "turn 1 (line 2): expect.action: unknown action 'dance'"),
    ("turns:\n  - say: hi\n    expect: {matches: '(unclosed'}\n", "expect.matches: not a regular expression"),
    ("users: [ann]\nturns:\n  - say: hi\n    as: bob\n", "turn 1 (line 3): user 'bob' is not one of"),
    ("turns:\n  - wait: a while\n", "turn 1 (line 2): wait 'a while' is not a duration"),
    ("turns:\n  - memory: {holds: [jazz]}\n", "'jazz' is not '<kind> <attribute or word>'"),
    ("turns:\n  - session: new\n    expect: {action: ask}\n", "expect only follows a say or do turn"),
    ("persona: default\nturnz: []\n", "my.dialogue.yaml: turnz: unknown key (did you mean 'turns'?)"),
    ("turns:\n  - say: hi\n    expect: {mention: jazz}\n", "expect.mention: unknown key (did you mean 'mentions'?)"),
    ("turns: [\n", "my.dialogue.yaml: not valid YAML"),
    ("- say: hi\n", "a script is a mapping with at least 'turns'"),
])
def test_a_bad_script_is_refused_with_its_file_turn_and_problem(text: str, message: str) -> None:
    assert message in _error(text)


def test_yes_and_no_in_a_script_are_words_not_booleans() -> None:
    script = load_script_text("turns:\n  - say: yes\n  - say: no\n  - do: {type: answer, yes: true}\n"
                              "    expect: {quick_replies: [Yes, No]}\n")
    assert [t.say for t in script.turns[:2]] == ["yes", "no"]
    assert script.turns[2].do == {"type": "answer", "yes": True}
    assert script.turns[2].expect.quick_replies == ["Yes", "No"]


def test_folders_are_searched_and_a_missing_path_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.dialogue.yaml").write_text("turns: [{say: hi}]\n")
    (tmp_path / "a.dialogue.yaml").write_text("turns: [{say: hi}]\n")
    (tmp_path / "notes.yaml").write_text("x: 1\n")
    assert [p.name for p in find_scripts([tmp_path])] == ["a.dialogue.yaml", "b.dialogue.yaml"]
    with pytest.raises(ScriptError, match="no such file or folder"):
        find_scripts([tmp_path / "nope"])


QUESTION = Question(attribute="decade:1970s", facet="decade", value="1970s", options=["1970s", "1980s"],
                    option_ids=["decade:1970s", "decade:1980s"])
LIST = [RecommendedItem(id="kind-of-blue", name="Kind of Blue", why="matches jazz"),
        RecommendedItem(id="time-out", name="Time Out", why="matches jazz")]


def test_each_expectation_passes_on_a_matching_reply_and_fails_on_another() -> None:
    ask = Reply(text="Jazz. Something from the 1970s?", action="ask", question=QUESTION, candidates=12)
    rec = Reply(text="These should fit: Kind of Blue, Time Out", action="recommend", recommendations=LIST,
                candidates=2)
    cases = [
        (Expect(action="ask"), Expect(action=["recommend", "explain"])),
        (Expect(asks="decade"), Expect(asks="genre")),
        (Expect(asks="decade:1970s"), Expect(asks="decade:1980s")),
        (Expect(mentions=["jazz", "1970s"]), Expect(mentions="jaz")),  # whole words only
        (Expect(not_mentions="rock"), Expect(not_mentions="Jazz")),
        (Expect(max_candidates=12), Expect(max_candidates=11)),
        (Expect(matches=r"^Jazz\."), Expect(matches=r"rock")),
        (Expect(not_matches=r"\brock\b"), Expect(not_matches=r"\d{4}s")),
        (Expect(quick_replies=["Yes", "No", "1980s", "Just recommend"]), Expect(quick_replies="1970s")),
    ]
    for good, bad in cases:
        assert check_reply(good, ask) == [], good
        assert len(check_reply(bad, ask)) == 1, bad
    assert check_reply(Expect(in_top={"item": "time-out", "k": 2}), rec) == []
    assert check_reply(Expect(in_top={"item": "time-out", "k": 1}), rec)[0].got == "list: ['kind-of-blue', 'time-out']"
    assert check_reply(Expect(not_in_top=[{"item": "nevermind", "k": 10}]), rec) == []
    assert len(check_reply(Expect(not_in_top={"item": "kind-of-blue"}), rec)) == 1


def test_quick_replies_stay_open_after_a_clarification_or_an_explanation() -> None:
    clarify = Reply(text="Sorry?", action="clarify", pending=Pending(question=QUESTION))
    assert quick_reply_labels(clarify) == ["Yes", "No", "1980s", "Just recommend"]
    explain = Reply(text="Because jazz.", action="explain", recommendations=LIST[:1],
                    pending=Pending(recommendations=LIST))
    assert quick_reply_labels(explain) == ["Kind of Blue", "Time Out", "None of these"]
    assert quick_reply_labels(Reply(text="Enjoy!", action="accepted")) == ["Start over"]
    assert quick_reply_labels(Reply(text="Sorry?", action="clarify")) == []


class _Memory:
    def __init__(self, kind: str, text: str, *ids: str) -> None:
        self.kind, self.text, self.attribute_ids = kind, text, ids


def test_memory_expectations_name_what_is_remembered() -> None:
    memories = [_Memory("like", "Loves jazz.", "genre:jazz"), _Memory("dislike", "Done with metal.", "genre:metal")]
    assert check_memory(MemoryCheck(holds=["like genre:jazz", "dislike metal", "any genre:metal"],
                                    lacks=["like genre:metal", "fact vegetarian"]), memories) == []
    [miss] = check_memory(MemoryCheck(holds=["like genre:rock"]), memories)
    assert miss.got == "like: Loves jazz.; dislike: Done with metal."


@pytest.fixture(scope="module")
def pool() -> RecommenderPool:
    shared = RecommenderPool()
    yield shared
    shared.close()


def test_the_runner_stops_at_the_first_failing_turn_and_shows_a_diff(pool: RecommenderPool) -> None:
    script = load_script_text(FAST + "turns:\n  - say: jazz from the 1950s\n    expect: {action: [ask, recommend]}\n"
                              "  - say: just recommend something\n    expect: {action: ask, mentions: polka}\n"
                              "  - say: the first one please\n", "x.dialogue.yaml")
    result = run_script(script, pool)
    assert not result.passed and result.failure is not None and result.failure.index == 2
    assert len(result.turns) == 2  # later turns depend on this one: not run
    diff = format_failure(result)
    assert "turn 2 (line 5), user: say \"just recommend something\"" in diff
    assert "- expected action: ask\n  + got      action: recommend" in diff
    assert "- expected mentions 'polka': mentioned\n  + got      mentions 'polka': not in the text" in diff


def test_a_refused_action_is_a_failure_unless_expected(pool: RecommenderPool) -> None:
    bad = load_script_text(FAST + "turns:\n  - do: {type: accept_item, item_id: nope}\n", "y.dialogue.yaml")
    result = run_script(bad, pool)
    assert not result.passed and "refused" in result.failure.mismatches[0].got
    expected = load_script_text(FAST + "turns:\n  - do: {type: accept_item, item_id: nope}\n"
                                "    expect: {refused: unknown item}\n", "z.dialogue.yaml")
    assert run_script(expected, pool).passed


def test_scripts_users_are_kept_apart(pool: RecommenderPool) -> None:
    text = FAST + "users: [ann, bob]\nturns:\n  - say: jazz\n    as: ann\n  - say: yes\n    as: bob\n" \
                  "    expect: {action: clarify}\n"
    assert run_script(load_script_text(text, "u.dialogue.yaml"), pool).passed  # bob has no open question


def _write(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.dialogue.yaml"
    path.write_text(FAST + body, encoding="utf-8")
    return path


def test_the_command_shows_progress_diffs_and_exits_non_zero_on_failure(tmp_path: Path) -> None:
    good = _write(tmp_path, "good", "turns:\n  - say: why?\n    expect: {action: explain}\n")
    bad = _write(tmp_path, "bad", "turns:\n  - say: jazz\n    expect: {action: recommend}\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["eval", "dialogues", str(good), "--json", str(tmp_path / "a.json")])
    assert ok.exit_code == 0, ok.output
    assert "1 passed, 0 failed, 1 scripts" in ok.stdout and "[1/1] ok" in ok.stderr
    failed = runner.invoke(app, ["eval", "dialogues", str(tmp_path), "--json", str(tmp_path / "b.json"),
                                 "--report", str(tmp_path / "b.md")])
    assert failed.exit_code == 1
    assert f"FAIL {bad}" in failed.stdout and "+ got      action: ask" in failed.stdout
    data = json.loads((tmp_path / "b.json").read_text())
    assert (data["scripts"], data["passed"], data["failed"]) == (2, 1, 1)
    assert {d["name"] for d in data["details"]} == {"good", "bad"}
    assert "## Failures" in (tmp_path / "b.md").read_text()
    missing = runner.invoke(app, ["eval", "dialogues", str(tmp_path / "nothing-here")])
    assert missing.exit_code == 2 and "no such file or folder" in missing.stderr
    compared = runner.invoke(app, ["eval", "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert compared.exit_code == 0
    assert f"| {bad} | absent | FAIL |" in compared.stdout and "| pass_rate | 1 | 0.5 | -0.5 |" in compared.stdout


def test_compare_lists_scripts_that_changed_and_metric_differences() -> None:
    def run(passed: bool) -> dict:
        detail = {"path": "s.dialogue.yaml", "name": "s", "passed": passed, "error": None, "first_failure": None,
                  "seconds": 0.1, "tags": [], "turns": []}
        return {"scripts": 1, "passed": int(passed), "failed": int(not passed), "pass_rate": float(passed),
                "turns": 1, "seconds": 0.1, "tags": {}, "details": [detail]}
    text, data = compare_runs(run(True), run(False), names=("old", "new"))
    assert "| s.dialogue.yaml | pass | FAIL |" in text
    assert {"metric": "pass_rate", "old": 1.0, "new": 0.0} in data["metrics"]
    mcr = compare_runs({"dataset": "lastfm", "policy": "best", "SR@15": 0.8},
                       {"dataset": "lastfm", "policy": "best", "SR@15": 0.85})[0]
    assert "| lastfm/best/SR@15 | 0.8 | 0.85 | +0.05 |" in mcr


def test_the_report_counts_tags(pool: RecommenderPool) -> None:
    script = load_script_text(FAST + "tags: [why]\nturns:\n  - say: why?\n    expect: {action: explain}\n", "w.yaml")
    summary = summarise([run_script(script, pool)])
    assert summary["tags"] == {"why": {"scripts": 1, "passed": 1}}
    assert "**1 / 1 passed**" in markdown_report(summary)


def test_the_bundled_suite_has_forty_scripts_covering_the_topics() -> None:
    from crs.evals.script import load_script

    scripts = [load_script(p) for p in find_scripts([SUITE])]
    assert len(scripts) >= 40
    tags = {t for s in scripts for t in s.tags}
    assert {"negation", "typos", "synonyms", "references", "change of mind", "off-topic", "restart", "why",
            "memory", "persona", "bad input", "grammar", "quick replies"} <= tags
    assert {s.persona for s in scripts} >= {"default", "clerk", "expert", "playful"}
    assert all(any(t.expect is not None or t.memory is not None for t in s.turns) for s in scripts)  # each checks


@pytest.mark.slow
def test_a_project_collects_its_own_dialogue_files_with_no_code(tmp_path: Path) -> None:
    """The pytest11 entry point: a folder holding only scripts runs them under plain pytest."""
    import subprocess
    import sys

    _write(tmp_path, "passes", "turns:\n  - say: why?\n    expect: {action: explain}\n")
    _write(tmp_path, "fails", "turns:\n  - say: jazz\n    expect: {action: recommend}\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 failed, 1 passed" in out.stdout
    assert "- expected action: recommend" in out.stdout and "+ got      action: ask" in out.stdout
