"""The API's routes, one router per resource; ``create_app`` includes :data:`ROUTERS` in this order
(``outputs`` before ``batches``: its ``/batches/{id}/outputs`` is not a ``/batches/{id}/{filename}``)."""

from __future__ import annotations

from faice.server.routes import batches, events, experiments, misc, nodes, outputs, tokens, webhooks

ROUTERS = [misc.router, tokens.router, experiments.router, outputs.router, batches.router, nodes.router, events.router, webhooks.router]
