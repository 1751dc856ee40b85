"""``faice report``: an experiment's run as one self-contained HTML file and a Nextflow-like trace.

model.py gathers what the store recorded into plain data; html.py and trace.py render that data
(pure functions); write.py puts the texts where they were asked for.
"""
