#!/usr/bin/env python3
"""Build the Docker images that tests and examples use, offline and reproducibly.

Every image is ``FROM scratch`` around the static busybox of Debian's ``busybox-static``
package (``/bin/busybox``), so no registry is needed. Where podman is installed, each image is
also moved into podman's store (``docker save | podman load``; podman names it
``localhost/NAME:TAG``, which the short name finds), so that ``FAICE_ENGINE=podman`` runs them
too. Usage:

    python scripts/build-images.py                 # all images
    python scripts/build-images.py faice-test-busybox

Set BUSYBOX=/path/to/static/busybox to use another binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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


def copy_to_podman(tag: str, podman: str) -> None:
    """``docker save TAG | podman load``: the image in the store of whoever runs this (rootless or
    not); a podman that cannot load it is a warning, since Docker's images are what most use."""
    save = subprocess.Popen(["docker", "save", tag], stdout=subprocess.PIPE)
    loaded = subprocess.run([podman, "load"], stdin=save.stdout, capture_output=True, text=True)
    assert save.stdout is not None
    save.stdout.close()
    if save.wait() != 0 or loaded.returncode != 0:  # Docker's images stand; only FAICE_ENGINE=podman lacks them
        print(f"build-images: warning: docker save {tag} | podman load failed: {loaded.stderr.strip() or 'docker save failed'}", file=sys.stderr)
    else:
        print(f"loaded {tag} into podman")


def main(argv: list[str]) -> None:
    wanted = argv or [tag.split(":")[0] for tag in IMAGES]
    binary = busybox()
    podman = shutil.which("podman")
    for tag, context_dir in IMAGES.items():
        if tag.split(":")[0] in wanted or tag in wanted:
            build(tag, context_dir, binary)
            if podman:
                copy_to_podman(tag, podman)


if __name__ == "__main__":
    main(sys.argv[1:])
