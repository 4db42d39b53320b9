"""The conversation as a LangGraph state machine.

recall → understand → reason → decide ─▶ ask ───────┐
                                     ├─▶ recommend ─┤
                                     └──────────────┴─▶ respond → reflect → END
"""

from __future__ import annotations

from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from crs.graphs.steps import TurnState, TurnSteps

__all__ = ["build_conversation_graph"]


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
    graph.add_node("reflect", steps.reflect)
    graph.add_edge(START, "recall")
    graph.add_edge("recall", "understand")
    graph.add_edge("understand", "reason")
    graph.add_edge("reason", "decide")
    graph.add_conditional_edges("decide", steps.route, ["ask", "recommend", "respond"])
    graph.add_edge("ask", "respond")
    graph.add_edge("recommend", "respond")
    graph.add_edge("respond", "reflect")
    graph.add_edge("reflect", END)
    return graph.compile(checkpointer=checkpointer)
