"""The natural-language user simulator, the NL benchmark arm and the optional LLM judge."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from crs.evals.dialogue_cli import _judge_run
from crs.evals.dialogues import ScriptResult, TurnResult
from crs.evals.judge import CRITERIA, LLMJudge, mean_scores
from crs.evals.nl_mcr import run_nl_benchmark
from crs.evals.nl_user import DEFAULT_PHRASES, NLUser, PhraseBank, typo
from crs.evals.simulator import SimulatedUser
from crs.kb.graph import KnowledgeGraph
from crs.language import lexicon
from crs.language.nlu import NLUContext, OfflineNLU
from crs.reasoning.engine import Engine
from crs.reasoning.policy import PolicySettings
from crs.reasoning.state import Action, Recommendation
from tests.conftest import require_data

BANK = PhraseBank.load()


def test_the_phrase_bank_is_its_own_and_is_checked(tmp_path: Path) -> None:
    import crs.evals.nl_user as module

    source = Path(module.__file__).read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not any("lexicon" in line or "nlu" in line for line in imports)  # never built from the understander
    grammar = set(lexicon.PHRASES)
    sentences = [p for phrases in BANK.phrases.values() for p in phrases if len(lexicon.tokenize(p)) > 2]
    shared = [p for p in sentences if tuple(lexicon.tokenize(p)) in grammar]  # "none of these" is just English
    assert len(shared) <= len(sentences) // 10, shared
    bad = tmp_path / "p.yaml"
    bad.write_text(DEFAULT_PHRASES.read_text().replace("agree:", "agre:", 1))
    with pytest.raises(ValueError, match="unknown kinds \\['agre'\\]; missing kinds \\['agree'\\]"):
        PhraseBank.load(bad)


def test_every_plain_answer_of_the_bank_is_understood(toy_graph: KnowledgeGraph) -> None:
    """Without typos, each way the simulated person says yes, no, a pick or "none" reads as meant."""
    nlu = OfflineNLU(toy_graph)
    asked = NLUContext(question="genre:jazz")
    shown = NLUContext(recommended=("kind-of-blue", "a-love-supreme", "blue-train"))
    for phrase in BANK.phrases["agree"] + tuple(p.format(value="jazz") for p in BANK.phrases["agree_mention"]):
        assert nlu.understand(phrase, asked).accept_attributes == ("genre:jazz",), phrase
    for phrase in BANK.phrases["disagree"] + tuple(p.format(value="jazz") for p in BANK.phrases["disagree_mention"]):
        assert nlu.understand(phrase, asked).reject_attributes == ("genre:jazz",), phrase
    for phrase in BANK.phrases["pick_position"]:
        assert nlu.understand(phrase.format(ordinal="second", n=2), shown).accept_item == "a-love-supreme", phrase
    for phrase in BANK.phrases["none"]:
        assert set(nlu.understand(phrase, shown).reject_items) == set(shown.recommended), phrase


def test_the_simulated_person_is_seeded_and_says_what_the_structured_one_decides(toy_graph: KnowledgeGraph) -> None:
    def person(seed: int) -> NLUser:
        return NLUser(SimulatedUser(toy_graph, "u1", "kind-of-blue"), BANK, np.random.default_rng(seed), typos=0.0)

    ask = Action(kind="ask", attribute="genre:jazz", options=("genre:jazz",))
    texts = [person(7).reply(ask, _reply(ask))[0] for _ in range(2)]
    assert texts[0] == texts[1]
    _, answer = person(7).reply(ask, _reply(ask))
    assert answer.feedback.accept_attributes == ("genre:jazz",)
    recs = tuple(Recommendation(i, toy_graph.item_names[toy_graph.item_index[i]], (i,), 1.0)
                 for i in ("thriller", "kind-of-blue"))
    shown = Action(kind="recommend", recommendations=recs)
    words = {person(s).reply(shown, _reply(shown))[0] for s in range(40)}
    assert any("second" in w or "2" in w for w in words) and any("Kind of Blue" in w for w in words)


def _reply(action: Action):
    from crs.language.reply import RecommendedItem, Reply

    return Reply(text="", action=action.kind,
                 recommendations=[RecommendedItem(id=r.item_id, name=r.name, why="") for r in action.recommendations])


def test_typos_change_a_word_a_little() -> None:
    rng = np.random.default_rng(3)
    for word in ("nothing", "these", "electronic"):
        slip = typo(word, rng)
        assert slip != word and abs(len(slip) - len(word)) <= 1
    assert typo("no", rng) == "no"


def test_the_nl_arm_runs_the_same_episodes_and_reports_misreadings(toy_graph: KnowledgeGraph) -> None:
    engine = Engine(toy_graph, settings=PolicySettings(top_k=3, no_rule="strict"))
    pairs = [("u1", i) for i in toy_graph.item_ids]
    run = run_nl_benchmark(engine, pairs, episodes=12, seed=0, max_turns=15, transcripts=2)
    assert run.structured["SR@15"] == 1.0  # a dozen albums: the structured user always finds the target
    assert run.nl["SR@15"] >= 0.75 and 0.0 <= run.nl["misread_rate"] < 0.5
    assert [s.target for s, _ in run.episodes] == [e.result.target for _, e in run.episodes]
    assert run.episodes[0][1].transcript[0][0] == "user" and len(run.episodes[0][1].transcript) >= 3
    again = run_nl_benchmark(engine, pairs, episodes=12, seed=0, max_turns=15)
    assert again.nl == run.nl  # seeded


@pytest.mark.slow
def test_nl_success_stays_close_to_structured_success_on_lastfm() -> None:
    """The floor on real data (a smaller run than the committed 4,000 episodes, same protocol)."""
    from crs.evals.data import load_benchmark_data
    from crs.reasoning.policies import build_policy

    data = load_benchmark_data("lastfm", require_data("lastfm"))
    engine = build_policy("maxent", data.graph, top_k=10, max_turns=15, no_rule="strict").engine(data.graph)
    run = run_nl_benchmark(engine, data.splits["test"], episodes=300, seed=0)
    assert run.gap <= 5.0, (run.structured["SR@15"], run.nl["SR@15"])


def test_the_judge_scores_each_criterion_and_never_guesses() -> None:
    answers = ['{"relevance": 5, "clarity": 4, "persona": 4, "grounding": 5, "comment": "fine"}',
               "Sure! Here is my grading: relevance 5",
               '{"relevance": 9, "clarity": 4, "persona": 4, "grounding": 5}']
    judge = LLMJudge(FakeListChatModel(responses=answers))
    good = judge.score([("user", "jazz")], "In the mood for jazz?")
    assert good.scores == {"relevance": 5, "clarity": 4, "persona": 4, "grounding": 5} and good.comment == "fine"
    prose, out_of_range = judge.score([], "x"), judge.score([], "x")
    assert prose.error.startswith("not a JSON object") and not prose.scores
    assert "not a score from 1 to 5" in out_of_range.error
    means = mean_scores([good, prose, out_of_range])
    assert means["relevance"] == 5.0 and (means["scored"], means["unscored"]) == (1, 2)
    assert set(CRITERIA) <= set(means)


def test_the_judge_reads_a_whole_run_within_its_limit() -> None:
    result = ScriptResult("s.dialogue.yaml", "s", turns=[
        TurnResult(1, 1, "say", "user", "jazz", {"text": "In the mood for jazz?", "action": "ask"}),
        TurnResult(2, 2, "say", "user", "yes", {"text": "Here you go.", "action": "recommend"}),
        TurnResult(3, 3, "session", "user", "new session")])
    model = FakeListChatModel(responses=['{"relevance": 4, "clarity": 5, "persona": 3, "grounding": 4}'] * 2)
    judged = _judge_run(LLMJudge(model), [result], limit=1)
    assert judged["means"]["scored"] == 1 and len(judged["replies"]) == 1
    assert judged["replies"][0]["path"] == "s.dialogue.yaml" and judged["replies"][0]["turn"] == 1


def test_a_chat_model_can_reword_the_messages_and_a_failing_one_is_ignored() -> None:
    from crs.evals.nl_user import ChatRephraser

    assert ChatRephraser(FakeListChatModel(responses=["yeah go on"])).rephrase("yes") == "yeah go on"

    class Broken(FakeListChatModel):
        def invoke(self, *args, **kwargs):  # type: ignore[override]
            raise TimeoutError("slow")

    assert ChatRephraser(Broken(responses=["x"])).rephrase("yes") == "yes"


def test_crs_eval_mcr_nl_reports_both_arms_for_the_same_episodes(tmp_path: Path) -> None:
    """On the bundled catalog with a few made-up listeners: the command, its table and its JSON."""
    from typer.testing import CliRunner

    from crs.evals.cli import app
    from crs.kb import BUNDLED_CATALOG, load_catalog

    items = [item.id for item in load_catalog(BUNDLED_CATALOG).items]
    rows = ["user,item"] + [f"u{u},{items[(u * 7 + k) % len(items)]}" for u in range(30) for k in range(4)]
    (tmp_path / "listens.csv").write_text("\n".join(rows) + "\n")
    out = CliRunner().invoke(app, ["eval", "mcr", "--catalog", str(BUNDLED_CATALOG), "--interactions",
                                   str(tmp_path / "listens.csv"), "--policy", "maxent", "--episodes", "20",
                                   "--nl", "--no-nl-embeddings", "--json", str(tmp_path / "nl.json"),
                                   "--plot", str(tmp_path / "nl.png")])
    assert out.exit_code == 0, out.output
    assert "| structured | strict |" in out.stdout and "| nl | strict |" in out.stdout
    structured, spoken = json.loads((tmp_path / "nl.json").read_text())["rows"]
    assert (structured["mode"], spoken["mode"]) == ("structured", "nl")
    assert structured["episodes"] == spoken["episodes"] == 20 and spoken["examples"][0][0][0] == "user"
    assert (tmp_path / "nl.png").stat().st_size > 0
