"""Content hashes of inputs and outputs (faice/cache/content.py), on real files and trees."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from faice.cache.content import BLOCK, content_sha256, file_sha256, tree_sha256


def make_tree(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "sub" / "b.bin").write_bytes(bytes(range(256)) * 10)
    (root / "sub" / "deeper" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "sub" / "deeper" / "run.sh").chmod(0o755)
    (root / "empty").mkdir()
    os.symlink("a.txt", root / "link")
    return root


def test_a_file_hash_is_the_sha256_of_its_bytes_at_any_size(tmp_path: Path):
    small, big = tmp_path / "small", tmp_path / "big"
    small.write_bytes(b"")
    big.write_bytes(os.urandom(BLOCK * 2 + 17))
    assert file_sha256(small) == hashlib.sha256(b"").hexdigest()
    assert file_sha256(big) == hashlib.sha256(big.read_bytes()).hexdigest() == content_sha256(big)


def test_a_copy_of_a_tree_has_its_hash_and_every_change_a_tool_can_see_changes_it(tmp_path: Path):
    tree = make_tree(tmp_path / "tree")
    copy = tmp_path / "copy"
    shutil.copytree(tree, copy, symlinks=True)
    os.utime(copy / "a.txt", (1, 1))  # times are not content
    assert tree_sha256(tree) == tree_sha256(copy) == content_sha256(copy)
    before = tree_sha256(copy)

    def changed(change) -> bool:
        shutil.rmtree(copy)
        shutil.copytree(tree, copy, symlinks=True)
        change(copy)
        return tree_sha256(copy) != before

    assert changed(lambda d: (d / "a.txt").write_text("alpha!\n"))  # content
    assert changed(lambda d: (d / "a.txt").rename(d / "A.txt"))  # name
    assert changed(lambda d: (d / "sub" / "deeper" / "run.sh").chmod(0o644))  # executable bit
    assert changed(lambda d: (d / "empty" / "new").write_text(""))  # a new, empty file
    assert changed(lambda d: (d / "empty").rmdir())  # an empty directory
    assert changed(lambda d: ((d / "link").unlink(), os.symlink("sub", d / "link")))  # a link's target
    assert not changed(lambda d: (d / "a.txt").chmod(0o600))  # other mode bits are not content


def test_links_are_hashed_as_links_never_followed(tmp_path: Path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret elsewhere\n")
    tree = tmp_path / "tree"
    tree.mkdir()
    os.symlink(outside, tree / "out")
    first = tree_sha256(tree)
    outside.write_text("changed elsewhere\n")
    assert tree_sha256(tree) == first
