"""The conversation as a LangGraph state machine.

START ─▶ recall (a thread's first turn) ─▶ understand → reason → decide ─▶ ask ───────┐
  └──────────────────────────────────────▶ understand                 ├─▶ recommend ─┤
                                                                      └──────────────┴─▶ respond → reflect → END

``reflect`` is there only when the steps have a long-term memory to hand the turn to: every
node costs a turn about as much as the steps' own work, so the graph runs none for nothing.
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
    graph.add_node("respond", steps.respond)
    graph.add_conditional_edges(START, _first_step, ["recall", "understand"])
    graph.add_edge("recall", "understand")
    graph.add_edge("understand", "reason")
    graph.add_edge("reason", "decide")
    graph.add_conditional_edges("decide", steps.route, ["ask", "recommend", "respond"])
    graph.add_edge("ask", "respond")
    graph.add_edge("recommend", "respond")
    if steps.memory is not None:
        graph.add_node("reflect", steps.reflect)
        graph.add_edge("respond", "reflect")
        graph.add_edge("reflect", END)
    else:
        graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer)
