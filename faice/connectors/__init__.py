"""Connectors move a batch's inputs in and its outputs out (see :mod:`faice.connectors.base`)."""

from faice.connectors.base import Connector, ConnectorError

__all__ = ["Connector", "ConnectorError"]
