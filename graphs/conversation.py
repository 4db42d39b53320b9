"""The conversation as a LangGraph state machine.

START ─▶ recall (a thread's first turn) ─▶ understand → reason → decide ─▶ ask ───────┐
  └──────────────────────────────────────▶ understand                 ├─▶ recommend ─┤
                                                                      └──────────────┴─▶ respond → END

With a long-term memory, ``respond`` also hands the finished turn to it (``TurnSteps.reflect``)
before the turn ends: every node costs a turn about as much as the steps' own work (measured:
``benchmarks/turn_cost_split.py``), so the graph runs none it can do without.
"""

from __future__ import annotations

from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from crs.graphs.steps import TurnState, TurnSteps

__all__ = ["build_conversation_graph"]


def _first_step(state: TurnState) -> Literal["recall", "understand"]:
    """Recall long-term memory where a conversation starts; later turns go straight on."""
    return "understand" if state.get("dialogue") else "recall"


def build_conversation_graph(
    steps: TurnSteps, *, checkpointer: BaseCheckpointSaver[Any] | None = None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the turn's steps into a graph; pass a checkpointer to keep conversations."""
    graph = StateGraph(TurnState)
    graph.add_node("recall", steps.recall)
    graph.add_node("understand", steps.understand)
    graph.add_node("reason", steps.reason)
    graph.add_node("decide", steps.decide)
    graph.add_node("ask", steps.record)
    graph.add_node("recommend", steps.record)
    graph.add_node("respond", steps.respond if steps.memory is None else steps.respond_and_reflect)
    graph.add_conditional_edges(START, _first_step, ["recall", "understand"])
    graph.add_edge("recall", "understand")
    graph.add_edge("understand", "reason")
    graph.add_edge("reason", "decide")
    graph.add_conditional_edges("decide", steps.route, ["ask", "recommend", "respond"])
    graph.add_edge("ask", "respond")
    graph.add_edge("recommend", "respond")
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer)
