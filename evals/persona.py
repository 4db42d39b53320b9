"""Persona consistency: do replies read like the persona that wrote them?

Generates replies with every bundled persona for every dialogue act on the bundled album
catalog (random questions, recommendation lists, explanations, ... drawn with a seed, under
three user profiles: none, a remembered profile with likes/dislikes/facts, and the style wish
"keep it short"), then attributes each reply to a persona with two offline classifiers:

* **markers**: rule-based markers of each persona's tone, written here independently of the
  templates (the clerk's forms of address and shop words, the expert's criteria vocabulary,
  the playful persona's exclamations, slang and emoji; the default persona is the one with
  none of these);
* **centroid**: a bag-of-words nearest-centroid classifier fitted on replies generated with
  another seed (so on other catalog items and attributes) and tested on these.

Run: ``python -m evals.persona [--samples 8] [--seed 0] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from crs.api import load_knowledge
from crs.kb.graph import KnowledgeGraph
from crs.language.nlg import ReplyPlan, TemplateNLG
from crs.language.personas import UserProfile, bundled_personas
from crs.reasoning.state import Recommendation
from crs.settings import Settings

__all__ = ["Sample", "centroid_classifier", "generate", "marker_classifier", "run"]

ACTS = ("greet", "ask", "recommend", "explain", "accepted", "restart", "clarify", "nothing_left",
        "thanks", "error")
PROBLEMS = ("Your message was empty.", "Your message is too long (5,000 characters; the limit is 2,000).",
            "Unknown attribute 'genre:vaporwave'.")
FACTS = ("has kids", "is learning the piano", "runs every morning", "lived in Brazil", "plays the saxophone")


@dataclass(frozen=True, slots=True)
class Sample:
    persona: str
    act: str
    condition: str
    text: str


def _profiles(graph: KnowledgeGraph, rng: random.Random) -> dict[str, UserProfile | None]:
    attrs = list(graph.attr_ids)
    likes, dislikes = rng.sample(attrs, 2), rng.sample(attrs, 1)
    return {
        "no profile": None,
        "remembered profile": UserProfile(likes=tuple(likes), dislikes=tuple(dislikes),
                                          facts=tuple(rng.sample(FACTS, 2))),
        "wish: keep it short": UserProfile(style=("keep it short",)),
    }


def _rec(graph: KnowledgeGraph, item: int, path: Sequence[str]) -> Recommendation:
    return Recommendation(graph.item_ids[item], graph.item_names[item], (*path, graph.item_ids[item]), 1.0)


def _plan(graph: KnowledgeGraph, act: str, rng: random.Random, profile: UserProfile | None) -> ReplyPlan:
    turn = rng.randrange(30)
    attr = rng.randrange(graph.n_attributes)
    attr_id = graph.attr_ids[attr]
    holders = graph.attr_items.row(attr).tolist()
    examples = tuple(rng.sample(graph.attr_ids, 3))
    if act == "ask":
        facet = graph.attributes[attr].facet
        same = [graph.attr_ids[a] for a in graph.facets[facet].tolist() if a != attr]
        options = (attr_id, *rng.sample(same, min(len(same), rng.randrange(4))))
        return ReplyPlan("ask", turn, candidates=len(holders), attribute=attr_id, options=options, profile=profile)
    if act == "recommend":
        chosen = rng.sample(holders, min(len(holders), rng.randint(1, 3)))
        recs = tuple(_rec(graph, i, [attr_id]) for i in chosen)
        return ReplyPlan("recommend", turn, candidates=len(holders), recommendations=recs, accepted=(attr_id,),
                         profile=profile)
    if act in ("explain", "accepted"):
        item = rng.choice(holders)
        path = [attr_id] if act == "explain" and rng.random() < 0.8 else []
        return ReplyPlan(act, turn, item=graph.item_ids[item], recommendations=(_rec(graph, item, path),),  # type: ignore[arg-type]
                         profile=profile)
    if act == "nothing_left":
        return ReplyPlan("clarify", turn, candidates=0, accepted=tuple(rng.sample(graph.attr_ids, 2)),
                         profile=profile)
    if act == "error":
        return ReplyPlan("error", turn, problem=rng.choice(PROBLEMS), profile=profile)
    return ReplyPlan(act, turn, candidates=5, examples=examples, profile=profile)  # type: ignore[arg-type]


def generate(samples: int = 8, seed: int = 0, personas: Sequence[str] | None = None) -> list[Sample]:
    """``samples`` replies per persona, dialogue act and profile condition."""
    graph, vocabulary = load_knowledge(Settings())
    names = list(personas or bundled_personas())
    writers = {name: TemplateNLG(graph, vocabulary, name) for name in names}
    rng = random.Random(seed)
    out: list[Sample] = []
    for _ in range(samples):
        for condition, profile in _profiles(graph, rng).items():
            for act in ACTS:
                plan = _plan(graph, act, rng, profile)
                out += [Sample(name, act, condition, writers[name].respond(plan).text) for name in names]
    return out


# ------------------------------------------------------------------------------ classifiers
_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]")
_WORD = re.compile(r"[a-z']+")
MARKERS: dict[str, dict[str, float]] = {
    "clerk": {w: 1.0 for w in (
        "hon", "friend", "crate", "crates", "rack", "racks", "bins", "shop", "counter", "lovely", "ooh",
        "dig", "digging", "spinning", "groove", "gems", "records", "record", "flip", "beauty", "dear", "bag",
        "browse", "browsing", "welcome")},
    "expert": {w: 1.0 for w in (
        "criteria", "criterion", "basis", "rationale", "noted", "acknowledged", "logged", "specify", "y/n",
        "unparsed", "alternatives", "else", "result", "retry", "rejected", "reset", "cleared", "query",
        "profile", "relevant", "valid", "zero", "input", "selection")},
    "default": {w: 1.0 for w in (
        "please", "sorry", "i'd", "i'm", "you'll", "welcome", "enjoy", "hi", "hello", "think", "fit",
        "good", "great", "okay", "any", "what", "would", "how", "e.g", "mean", "catch")},
    "playful": {w: 1.0 for w in (
        "yo", "woohoo", "yay", "woo", "vibe", "vibes", "vibing", "banger", "bangers", "boom", "oopsie",
        "whoa", "jackpot", "quiz", "ding", "yesss", "heyyy", "wheee", "psst", "fave", "jam", "galore",
        "whoopsie", "uh-oh", "crank", "party", "ta-da", "drumroll", "sucker", "goooo", "baaack", "spill",
        "wildcard", "peasy", "flavours", "backflip")},
}


def _features(text: str) -> dict[str, float]:
    lower = text.casefold()
    words = _WORD.findall(lower.replace("y/n", " y/n ")) + (["y/n"] if "y/n" in lower else [])
    scores = {name: sum(marks.get(w, 0.0) for w in words) for name, marks in MARKERS.items()}
    emoji = len(_EMOJI.findall(text))
    bangs = text.count("!")
    scores["playful"] += 1.5 * max(0, emoji - 1) + 0.5 * max(0, bangs - 1)
    scores["clerk"] += 1.0 if emoji == 1 else 0.0
    if emoji == 0 and bangs == 0 and len(words) <= 8:  # short, flat, no exclamation: the expert's register
        scores["expert"] += 1.0
    if emoji:  # the neutral voice never uses emoji
        scores["default"] = 0.0
    return scores


def marker_classifier(text: str) -> str:
    """The persona whose markers the text shows most; ``default`` (the neutral voice) on a tie or none.

    The neutral persona's markers are ordinary polite words, so they count for half: a reply
    is put down to the neutral voice only when it shows none of the others' registers.
    """
    scores = _features(text)
    scores["default"] *= 0.5
    best = max(scores, key=lambda k: (scores[k], k == "default"))
    return best if scores[best] >= 0.5 else "default"


def _bag(texts: Sequence[str], vocab: dict[str, int]) -> np.ndarray:
    out = np.zeros((len(texts), len(vocab)), dtype=np.float64)
    for row, text in enumerate(texts):
        tokens = _WORD.findall(text.casefold()) + _EMOJI.findall(text) + ["!"] * text.count("!")
        for token in tokens:
            col = vocab.get(token)
            if col is not None:
                out[row, col] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1.0, norms)


def centroid_classifier(train: Sequence[Sample]) -> Callable[[str], str]:
    """A bag-of-words nearest-centroid classifier fitted on ``train``.

    Only tokens in at least 1% of the training replies count: the style words, not the
    catalog's names (which the seeds draw at random).
    """
    counts = Counter(t for s in train for t in set(_WORD.findall(s.text.casefold()) + _EMOJI.findall(s.text) + ["!"]))
    floor = max(2, len(train) // 100)
    vocab = {t: i for i, t in enumerate(sorted(t for t, n in counts.items() if n >= floor))}
    labels = sorted({s.persona for s in train})
    bags = _bag([s.text for s in train], vocab)
    centroids = np.stack([bags[[s.persona == p for s in train]].mean(axis=0) for p in labels])

    def classify(text: str) -> str:
        return labels[int(np.argmax(centroids @ _bag([text], vocab)[0]))]

    return classify


# ------------------------------------------------------------------------------ report
def _accuracy(samples: Sequence[Sample], predicted: Sequence[str]) -> float:
    return sum(s.persona == p for s, p in zip(samples, predicted, strict=True)) / max(1, len(samples))


def run(samples: int = 8, seed: int = 0) -> dict[str, object]:
    test = generate(samples, seed)
    train = generate(samples, seed + 1000)
    by_markers = [marker_classifier(s.text) for s in test]
    centroid = centroid_classifier(train)
    by_centroid = [centroid(s.text) for s in test]

    def breakdown(key: Callable[[Sample], str], predicted: Sequence[str]) -> dict[str, float]:
        groups: dict[str, list[int]] = defaultdict(list)
        for i, s in enumerate(test):
            groups[key(s)].append(i)
        return {k: round(_accuracy([test[i] for i in ix], [predicted[i] for i in ix]), 4)
                for k, ix in sorted(groups.items())}

    confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for s, p in zip(test, by_markers, strict=True):
        confusion[s.persona][p] += 1
    repeats = sum(len({s.text for s in test if s.persona == p}) for p in bundled_personas())
    return {
        "replies": len(test),
        "personas": list(bundled_personas()),
        "acts": list(ACTS),
        "seed": seed,
        "samples_per_cell": samples,
        "markers_accuracy": round(_accuracy(test, by_markers), 4),
        "centroid_accuracy": round(_accuracy(test, by_centroid), 4),
        "markers_by_persona": breakdown(lambda s: s.persona, by_markers),
        "markers_by_act": breakdown(lambda s: s.act, by_markers),
        "markers_by_condition": breakdown(lambda s: s.condition, by_markers),
        "centroid_by_condition": breakdown(lambda s: s.condition, by_centroid),
        "confusion_markers": {k: dict(v) for k, v in confusion.items()},
        "distinct_replies": repeats,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.persona", description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=8, help="replies per persona, act and profile condition")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = run(args.samples, args.seed)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(f"persona consistency: {report['replies']} replies, personas {', '.join(report['personas'])}, "  # type: ignore[arg-type]
          f"{len(report['acts'])} dialogue acts x 3 profile conditions x {args.samples} samples, seed {args.seed}")  # type: ignore[arg-type]
    print(f"  rule-based markers:      accuracy {report['markers_accuracy']:.1%}")
    print(f"  bag-of-words centroid:   accuracy {report['centroid_accuracy']:.1%} (fitted on seed {args.seed + 1000})")
    for title, key in (("by persona", "markers_by_persona"), ("by act", "markers_by_act"),
                       ("by profile condition", "markers_by_condition")):
        parts = ", ".join(f"{k} {v:.0%}" for k, v in report[key].items())  # type: ignore[attr-defined]
        print(f"  markers {title}: {parts}")
    print("  confusion (true -> predicted):")
    for true, row in report["confusion_markers"].items():  # type: ignore[attr-defined]
        print(f"    {true:<8} " + ", ".join(f"{p} {n}" for p, n in sorted(row.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
