"""faice: run RED experiments on your own machine, fast and safely."""

__version__ = "0.1.0"
