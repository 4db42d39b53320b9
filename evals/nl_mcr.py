"""The MCR benchmark through natural language: understanding, then policy, then wording.

For the same episodes as the structured benchmark (same seed, same targets, same openings),
the simulated person speaks (:class:`crs.evals.nl_user.NLUser`): the bot's understander reads
each message in the context of what was shown, the engine decides, and the template replier
words the reply that the person answers (items are referred to as the reply names them). An
episode succeeds only when the bot *understood* that the target was chosen.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from crs.evals.metrics import EpisodeResult, default_metrics
from crs.evals.nl_user import NLUser, PhraseBank, Rephraser
from crs.evals.runner import run_episode, sample_episodes
from crs.evals.simulator import SimulatedUser
from crs.kb.errors import KBError
from crs.language.nlg import ReplyPlan, TemplateNLG
from crs.language.nlu import NLUContext, OfflineNLU
from crs.reasoning.engine import Engine
from crs.reasoning.state import Feedback

__all__ = ["NLEpisode", "NLRun", "run_nl_benchmark", "run_nl_episode"]


@dataclass
class NLEpisode:
    result: EpisodeResult
    messages: int = 0
    misread: int = 0  # messages whose reading differs from the structured answer they stand for
    missed_accept: bool = False  # the target was chosen in words but the bot did not understand it
    transcript: list[tuple[str, str]] = field(default_factory=list)


def _same(heard: Feedback, meant: Feedback) -> bool:
    return (set(heard.accept_attributes) == set(meant.accept_attributes)
            and set(heard.reject_attributes) == set(meant.reject_attributes)
            and heard.accept_item == meant.accept_item
            and set(heard.reject_items) == set(meant.reject_items))


def run_nl_episode(engine: Engine, nlu: OfflineNLU, nlg: TemplateNLG, user: NLUser, max_turns: int, *,
                   keep_transcript: bool = False) -> NLEpisode:
    """One conversation in words: the opening, then up to ``max_turns`` bot turns."""
    sim = user.user
    text = user.opening()
    out = NLEpisode(EpisodeResult(sim.user_id, sim.target, None, None))
    heard = nlu.understand(text, NLUContext())
    out.messages, out.misread = 1, int(not _same(heard, sim.opening()))
    if keep_transcript:
        out.transcript.append(("user", text))
    state = engine.start(sim.user_id)
    with contextlib.suppress(KBError):  # a reading naming something unknown changes nothing
        state = engine.apply(state, heard)
    questions = lists = 0
    force = heard.intent == "recommend_now"
    for turn in range(1, max_turns + 1):
        action = engine.decide(state, force_recommend=force)
        if action.kind == "ask":
            questions += 1
        elif action.kind == "recommend":
            lists += 1
        else:
            break
        state = engine.record(state, action)
        reply = nlg.respond(ReplyPlan(kind=action.kind, turn=turn, candidates=action.candidates,
                                      attribute=action.attribute, options=action.options,
                                      recommendations=action.recommendations, accepted=state.accepted))
        text, answer = user.reply(action, reply)
        context = NLUContext(question=state.question, options=state.options, recommended=state.recommended,
                             accepted=state.accepted)
        heard = nlu.understand(text, context)
        out.messages += 1
        out.misread += int(not _same(heard, answer.feedback))
        if keep_transcript:
            out.transcript += [("assistant", reply.text), ("user", text)]
        if heard.accept_item is not None:
            if heard.accept_item == sim.target:
                out.result = EpisodeResult(sim.user_id, sim.target, turn, answer.rank, questions, lists)
                return out
            break  # the bot took another item as chosen: the search is over, and failed
        out.missed_accept = out.missed_accept or answer.accepted
        force = heard.intent == "recommend_now"
        try:
            state = engine.apply(state, heard)
        except KBError:  # a reading naming something unknown changes nothing
            state = engine.apply(state, Feedback())
    out.result = EpisodeResult(sim.user_id, sim.target, None, None, questions, lists)
    return out


@dataclass
class NLRun:
    structured: dict[str, Any]
    nl: dict[str, Any]
    episodes: list[tuple[EpisodeResult, NLEpisode]]
    seconds: float
    max_turns: int = 15

    @property
    def gap(self) -> float:
        """Structured SR@15 minus NL SR@15, in points (percent)."""
        key = f"SR@{self.max_turns}"
        gap: float = self.structured[key] - self.nl[key]
        return round(100 * gap, 2)


def run_nl_benchmark(
    engine: Engine, pairs: Sequence[tuple[str, str]], *, episodes: int, seed: int, max_turns: int = 15,
    enumerate_facets: bool = False, bank: PhraseBank | None = None, embedder: Any = None,
    rephraser: Rephraser | None = None, progress: Callable[[int], None] | None = None, transcripts: int = 0,
) -> NLRun:
    """The same episodes twice: structured answers, then the same answers in words."""
    bank = bank or PhraseBank.load()
    chosen = sample_episodes(pairs, episodes, seed)
    choices = np.random.default_rng([seed, 1]).random(len(chosen)).tolist()  # as run_benchmark draws them
    nlu = OfflineNLU(engine.graph, embedder)
    nlg = TemplateNLG(engine.graph)
    metrics_s, metrics_n = default_metrics(max_turns), default_metrics(max_turns)
    out: list[tuple[EpisodeResult, NLEpisode]] = []
    started = time.perf_counter()
    for k, ((user_id, target), choice) in enumerate(zip(chosen, choices, strict=True)):
        structured = run_episode(engine, SimulatedUser(engine.graph, user_id, target, choice=choice,
                                                       enumerate_facets=enumerate_facets), max_turns)
        sim = SimulatedUser(engine.graph, user_id, target, choice=choice, enumerate_facets=enumerate_facets)
        nl_user = NLUser(sim, bank, np.random.default_rng([seed, 2, k]), rephraser=rephraser)
        spoken = run_nl_episode(engine, nlu, nlg, nl_user, max_turns, keep_transcript=k < transcripts)
        metrics_s.update(structured)
        metrics_n.update(spoken.result)
        out.append((structured, spoken))
        if progress is not None:
            progress(1)
    n = max(len(out), 1)
    nl = metrics_n.result()
    nl.update({
        "misread_rate": round(sum(e.misread for _, e in out) / max(sum(e.messages for _, e in out), 1), 4),
        "missed_accepts": sum(e.missed_accept for _, e in out),
        "messages_per_episode": round(sum(e.messages for _, e in out) / n, 2),
    })
    return NLRun(metrics_s.result(), nl, out, time.perf_counter() - started, max_turns)
