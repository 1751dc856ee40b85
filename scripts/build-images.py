#!/usr/bin/env python3
"""Build the Docker images that tests and examples use, offline and reproducibly.

Every image is ``FROM scratch`` around the static busybox of Debian's ``busybox-static``
package (``/bin/busybox``), so no registry is needed. Usage:

    python scripts/build-images.py                 # all images
    python scripts/build-images.py faice-test-busybox

Set BUSYBOX=/path/to/static/busybox to use another binary.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = {
    "faice-test-busybox:latest": ROOT / "tests" / "images" / "busybox",
    "faice-example-grepwrap:latest": ROOT / "examples" / "images" / "grepwrap",
}


def busybox() -> Path:
    path = Path(os.environ.get("BUSYBOX", "/bin/busybox"))
    if not path.is_file():
        sys.exit(f"build-images: {path} not found; install Debian's busybox-static (apt-get install busybox-static)")
    with path.open("rb") as handle:
        if handle.read(4) != b"\x7fELF":
            sys.exit(f"build-images: {path} is not an ELF binary")
    return path


def build(tag: str, context_dir: Path, binary: Path) -> None:
    import docker

    client = docker.from_env()
    with tempfile.TemporaryDirectory(prefix="faice-image-") as tmp:
        context = Path(tmp) / "context"
        shutil.copytree(context_dir, context)
        shutil.copy2(binary, context / "busybox")
        client.images.build(path=str(context), tag=tag, rm=True, forcerm=True, pull=False)
    print(f"built {tag}")


def main(argv: list[str]) -> None:
    wanted = argv or [tag.split(":")[0] for tag in IMAGES]
    binary = busybox()
    for tag, context_dir in IMAGES.items():
        if tag.split(":")[0] in wanted or tag in wanted:
            build(tag, context_dir, binary)


if __name__ == "__main__":
    main(sys.argv[1:])
