"""The simulated user of the CPR / SCPR / UNICORN protocol.

It holds a target item, opens by volunteering one random attribute of it, answers a
binary question "yes" exactly when the target has the attribute, and accepts a list exactly
when the target is in it (a failed list's items are reported back as rejected, so they
leave the candidates). With ``enumerate_facets`` (catalogs with several facets) a question
about a facet is answered with all of the target's values in that facet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from crs.kb.graph import KnowledgeGraph
from crs.reasoning.state import Action, Feedback

__all__ = ["Answer", "SimulatedUser", "UserSimulator"]


@dataclass(frozen=True, slots=True)
class Answer:
    """The user's reply to one action: the feedback, and whether a list hit the target."""

    feedback: Feedback
    accepted: bool = False
    rank: int | None = None  # 1-based rank of the target in an accepted list


class UserSimulator(Protocol):
    user_id: str | None
    target: str

    def opening(self) -> Feedback: ...

    def answer(self, action: Action) -> Answer: ...


class SimulatedUser:
    """One episode's user. ``choice`` in [0, 1) picks the opening attribute (seeded by the runner)."""

    def __init__(
        self,
        graph: KnowledgeGraph,
        user_id: str | None,
        target: str,
        *,
        choice: float = 0.0,
        enumerate_facets: bool = False,
    ) -> None:
        self.graph = graph
        self.user_id = user_id
        self.target = target
        row = graph.item_attrs.row(graph.item(target))
        if len(row) == 0:
            raise ValueError(f"target item {target!r} has no attributes to talk about")
        self._attrs = row
        self._ids = frozenset(graph.attr_ids[a] for a in row.tolist())
        self._opening = graph.attr_ids[int(row[min(int(choice * len(row)), len(row) - 1)])]
        self.enumerate_facets = enumerate_facets

    def has(self, attribute: str) -> bool:
        return attribute in self._ids

    def opening(self) -> Feedback:
        """Turn 0: one random attribute of the target."""
        return Feedback(accept_attributes=(self._opening,))

    def answer(self, action: Action) -> Answer:
        if action.kind == "ask" and action.attribute is not None:
            return Answer(self._answer_question(action.attribute, action.options))
        if action.kind == "recommend":
            shown = [r.item_id for r in action.recommendations]
            if self.target in shown:
                return Answer(Feedback(accept_item=self.target), accepted=True,
                              rank=shown.index(self.target) + 1)
            return Answer(Feedback(reject_items=tuple(shown)))
        return Answer(Feedback(intent="unknown"))

    def _answer_question(self, attribute: str, options: tuple[str, ...]) -> Feedback:
        if not self.enumerate_facets:
            if self.has(attribute):
                return Feedback(accept_attributes=(attribute,))
            return Feedback(reject_attributes=(attribute,))
        g = self.graph
        facet = g.attributes[g.attribute(attribute)].facet
        mine = tuple(a for a in np.sort(self._attrs).tolist() if g.attributes[a].facet == facet)
        accept = tuple(g.attr_ids[a] for a in mine)
        reject = tuple(dict.fromkeys(a for a in (attribute, *options) if a not in self._ids))
        return Feedback(accept_attributes=accept, reject_attributes=reject)
