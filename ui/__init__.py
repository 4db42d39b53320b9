"""Front doors over the public API: the Gradio demo (and later an HTTP API for bots)."""

__all__: list[str] = []
