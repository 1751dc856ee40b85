"""CWL documents: validated by the CWL reference runner (cwltool, used as a library), and what
faice can do with a valid one (:mod:`faice.cwl.support`).

Nothing here is imported unless a CWL document is given: cwltool and schema-salad take some 0.4 s
to import, which ``faice --help`` and RED files must not pay.
"""

from __future__ import annotations

from typing import Any

#: the classes of CWL processes (a document that names one is CWL, not RED)
PROCESS_CLASSES = ("CommandLineTool", "Workflow", "ExpressionTool", "Operation")


def is_cwl(data: Any) -> bool:
    """Whether parsed data is a CWL document rather than a RED file: no ``redVersion``, and a
    ``cwlVersion``, a ``$graph`` or a process class."""
    if not isinstance(data, dict) or "redVersion" in data:
        return False
    return "cwlVersion" in data or "$graph" in data or data.get("class") in PROCESS_CLASSES


#: the marker of a recorded CWL run (``{"kind": "cwl", "tool": ..., "jobs": [...]}``) where a RED run records its RED document
RUN_KIND = "cwl"


def is_cwl_run(recorded: Any) -> bool:
    """Whether an experiment's recorded document is a CWL run's rather than a RED file."""
    return isinstance(recorded, dict) and recorded.get("kind") == RUN_KIND and "tool" in recorded
