"""The conversation as a LangGraph state machine.

START ─▶ reason ─▶ ask ───────┐
           ├─────▶ recommend ─┤
           └──────────────────┴─▶ respond → END

``reason`` runs the steps that always follow one another, in order: recall long-term memory
(at a thread's first turn; later turns skip it), understand the message, walk the path with the
turn's feedback, and decide the act (``TurnSteps.recall``, ``understand``, ``reason``, ``decide``).
The act picks the next node: ``ask`` an attribute question, ``recommend`` items, or straight to
``respond`` for turns that need neither. With a long-term memory, ``respond`` also hands the
finished turn to it (``TurnSteps.reflect``). Each graph node costs a turn about as much as the
steps' own work (``benchmarks/turn_cost_split.py``), so steps that always run one after the other
share a node, and the graph keeps the places where the turn branches.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from crs.graphs.steps import TurnState, TurnSteps

__all__ = ["build_conversation_graph"]


class Step(Protocol):
    """A turn step: the state in, the channels it writes out."""

    def __call__(self, state: TurnState) -> dict[str, Any]: ...


def _in_order(*steps: Step) -> Step:
    """One node that runs ``steps`` one after another, each on the state as the last left it."""

    def run(state: TurnState) -> dict[str, Any]:
        written: dict[str, Any] = {}
        for step in steps:
            written.update(step(cast(TurnState, {**state, **written})))
        return written

    run.__name__ = "_then_".join(getattr(step, "__name__", "step") for step in steps)
    return run


def build_conversation_graph(
    steps: TurnSteps, *, checkpointer: BaseCheckpointSaver[Any] | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the turn's steps into a graph; pass a checkpointer to keep conversations."""
    graph = StateGraph(TurnState)
    graph.add_node("reason", _in_order(steps.recall, steps.understand, steps.reason, steps.decide))
    graph.add_node("ask", steps.record)
    graph.add_node("recommend", steps.record)
    graph.add_node("respond", steps.respond if steps.memory is None else _in_order(steps.respond, steps.reflect))
    graph.add_edge(START, "reason")
    graph.add_conditional_edges("reason", steps.route, ["ask", "recommend", "respond"])
    graph.add_edge("ask", "respond")
    graph.add_edge("recommend", "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer)
