"""``faice serve``: CC-Agency's REST API over the local state file and the local runner."""
