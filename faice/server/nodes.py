"""``GET /nodes``: this machine as the one node of a CC-Agency cluster."""

from __future__ import annotations

import shutil
import subprocess
import time
from typing import Any


def detect_gpus() -> list[dict[str, Any]] | None:
    """NVIDIA GPUs as CC-Agency lists them; [] when there are none, None when detection failed."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    gpus = []
    for line in out.splitlines():
        index, _, vram = line.partition(",")
        if index.strip().isdigit():
            gpus.append({"id": int(index), "vram": int(float(vram.strip() or 0)), "vendor": "nvidia"})
    return gpus


class Node:
    def __init__(self, name: str) -> None:
        self.name = name
        self.gpus = detect_gpus()
        self.history: list[dict[str, Any]] = []

    def document(self, cpus: int, ram: int | None, current: list[dict[str, Any]], docker_problem: str | None) -> dict[str, Any]:
        """The node document: ``online`` while Docker answers (``history`` keeps the changes)."""
        state = "offline" if docker_problem else "online"
        if not self.history or self.history[-1]["state"] != state:
            self.history.append({"state": state, "time": time.time(), "debugInfo": docker_problem})
        return {
            "nodeName": self.name, "state": state, "cpus": cpus, "ram": ram, "gpus": self.gpus, "history": list(self.history),
            "currentBatches": [{"batchId": b["id"], "ram": b["ram"]} for b in current],
        }
