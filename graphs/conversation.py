"""The conversation as a LangGraph state machine.

START ─▶ recall (a thread's first turn) ─▶ understand → reason ─▶ ask ───────┐
  └──────────────────────────────────────▶ understand           ├─▶ recommend ─┤
                                                                └──────────────┴─▶ respond → END

``reason`` walks the path with the turn's feedback, then decides the act (``TurnSteps.reason``,
then ``TurnSteps.decide``); with a long-term memory, ``respond`` also hands the finished turn to
it (``TurnSteps.reflect``). Each graph node costs a turn about as much as the steps' own work
(``benchmarks/turn_cost_split.py``), so steps that always run one after the other share a node.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from crs.graphs.steps import TurnState, TurnSteps

__all__ = ["build_conversation_graph"]


class Step(Protocol):
    """A turn step: the state in, the channels it writes out."""

    def __call__(self, state: TurnState) -> dict[str, Any]: ...


def _first_step(state: TurnState) -> Literal["recall", "understand"]:
    """Recall long-term memory where a conversation starts; later turns go straight on."""
    return "understand" if state.get("dialogue") else "recall"


def _then(first: Step, second: Step) -> Step:
    """One node that runs ``first``, then ``second`` on the state as ``first`` left it."""

    def both(state: TurnState) -> dict[str, Any]:
        out = first(state)
        return {**out, **second(cast(TurnState, {**state, **out}))}

    both.__name__ = f"{getattr(first, '__name__', 'step')}_then_{getattr(second, '__name__', 'step')}"
    return both


def build_conversation_graph(
    steps: TurnSteps, *, checkpointer: BaseCheckpointSaver[Any] | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the turn's steps into a graph; pass a checkpointer to keep conversations."""
    graph = StateGraph(TurnState)
    graph.add_node("recall", steps.recall)
    graph.add_node("understand", steps.understand)
    graph.add_node("reason", _then(steps.reason, steps.decide))
    graph.add_node("ask", steps.record)
    graph.add_node("recommend", steps.record)
    graph.add_node("respond", steps.respond if steps.memory is None else _then(steps.respond, steps.reflect))
    graph.add_conditional_edges(START, _first_step, ["recall", "understand"])
    graph.add_edge("recall", "understand")
    graph.add_edge("understand", "reason")
    graph.add_conditional_edges("reason", steps.route, ["ask", "recommend", "respond"])
    graph.add_edge("ask", "respond")
    graph.add_edge("recommend", "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer)
