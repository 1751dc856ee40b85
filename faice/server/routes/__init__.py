"""The API's routes, one router per resource; ``create_app`` includes :data:`ROUTERS` in this order."""

from __future__ import annotations

from faice.server.routes import batches, experiments, misc, nodes, tokens

ROUTERS = [misc.router, tokens.router, experiments.router, batches.router, nodes.router]
