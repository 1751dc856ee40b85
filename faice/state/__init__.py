"""The SQLite state shared by faice exec, faice serve and the inspection commands."""
