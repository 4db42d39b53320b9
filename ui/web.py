"""A minimal Gradio chat over the public API: one browser tab is one session."""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

from crs.api import Recommender

__all__ = ["build_demo", "launch"]


def build_demo(rec: Recommender, *, user_id: str = "web") -> Any:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    def respond(message: str, history: list[dict[str, Any]], session: str | None) -> tuple[str, str]:
        session = session or uuid.uuid4().hex
        return rec.chat(user_id, session, message).text, session

    with gr.Blocks(title="crs — conversational recommender") as demo:
        session = gr.State(None)
        gr.ChatInterface(
            respond,
            additional_inputs=[session],
            additional_outputs=[session],
            title="crs",
            description="Tell me what you're in the mood for. I'll ask a few questions and recommend.",
            examples=[["something calm from the 60s"], ["just recommend something"]],
            api_name="chat",
        )
    return demo


def launch(rec: Recommender, *, port: int = 7860, block: bool = True) -> Any:
    """Serve the demo on 127.0.0.1; with ``block=False`` return the running app (call ``.close()``)."""
    demo = build_demo(rec)
    # Gradio polls its own server through httpx; those request lines are noise for a demo.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if block:
        print(f"crs demo: open http://127.0.0.1:{port}/ (Ctrl-C stops it)", flush=True)
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=not block, quiet=True)
    return demo
