"""Provenance of what faice ran: where inputs came from (recorded at registration) and the
Workflow Run RO-Crate that ``faice export`` writes from the state file."""
