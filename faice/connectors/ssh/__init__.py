"""The built-in ``red-connector-ssh`` (see :mod:`faice.connectors.ssh.connector`)."""

from faice.connectors.ssh.connector import SshConnector

__all__ = ["SshConnector"]
