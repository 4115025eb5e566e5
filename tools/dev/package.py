"""``make package``: the plugin ZIP for *Plugins > Manage and Install Plugins > Install from ZIP*.

``git archive`` under the prefix ``deeplandcover/`` without what a QGIS user does not need (:data:`EXCLUDE`:
the demo/test data, the tests, CI and every developer tool of ``tools/``: benchmarks, demo, packaging, sample
data). By default it archives the committed tree (``HEAD``); ``--worktree`` archives the working tree instead (tracked and untracked files that git does
not ignore), through a temporary index, so that HEAD, the real index and the working tree are left
alone (the tests use it). Standard library only: ``python3 tools/dev/package.py [OUT] [--worktree]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PREFIX = "deeplandcover/"
#: Left out of the ZIP: the test suite, the developer tools (benchmarks, demo, packaging, sample data), CI.
EXCLUDE = ("data", "tests", "tools", ".ci", "BENCHMARKS.md")


def _git(*args: str, repo: Path = REPO, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout.strip()


def worktree_tree(repo: Path = REPO) -> str:
    """Id of a git tree holding the working tree as ``git add -A`` would stage it (real index untouched)."""
    real_index = Path(_git("rev-parse", "--absolute-git-dir", repo=repo)) / "index"
    with tempfile.TemporaryDirectory(prefix="dlc_index_") as tmp:
        index = Path(tmp) / "index"
        if real_index.is_file():
            shutil.copyfile(real_index, index)  # keeps the stat data: unchanged files are not re-hashed
        env = dict(os.environ, GIT_INDEX_FILE=str(index))
        _git("add", "-A", repo=repo, env=env)
        return _git("write-tree", repo=repo, env=env)


def build(out: Path, tree: str = "HEAD", repo: Path = REPO) -> Path:
    """Write the plugin ZIP of ``tree`` (a commit or tree id) to ``out``; returns ``out``."""
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    _git(
        "archive",
        "--format=zip",
        f"--prefix={PREFIX}",
        "-o",
        str(out),
        tree,
        "--",
        ".",
        *[f":!{p}" for p in EXCLUDE],
        repo=repo,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", nargs="?", default=str(REPO / "dist" / "deeplandcover.zip"))
    ap.add_argument("--worktree", action="store_true", help="archive the working tree instead of HEAD")
    args = ap.parse_args(argv)
    out = build(Path(args.out), worktree_tree() if args.worktree else "HEAD")
    print(f"{out}: {out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
