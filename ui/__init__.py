"""Front doors over the public API: the Gradio demo (``crs.ui.web``), the HTTP API for bots
(``crs.ui.http_api``, served by ``crs serve``) and the Telegram adapter (``crs.ui.telegram``)."""

__all__: list[str] = []
