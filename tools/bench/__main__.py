"""``make bench``: run every benchmark and write BENCHMARKS.md.

Each benchmark ``tools/bench/<name>.py`` (``python -m deeplandcover.tools.bench.<name>``) has a ``main()`` that prints one Markdown section (its command, the
machine, the date, its figures and the comparison measured in the same run). This driver captures
each section between ``<!-- bench:<name> -->`` markers in BENCHMARKS.md, so a partial run
(``BENCH_ONLY=export,inference make bench``) replaces only the sections it ran.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import inspect
import io
import os
import re
import sys
import time
import traceback
from pathlib import Path

from deeplandcover.tools.bench.common import machine

REPO = Path(__file__).resolve().parents[2]
BENCHES = [
    "export",
    "train",
    "step_options",
    "threads",
    "inference",
    "batch",
    "change",
    "rf_vs_unet",
    "transfer",
    "seed_methods",
]
HEADER = """# Benchmarks

Every figure here was measured by `make bench` (or the command its section names) on the machine its
section names, with the comparison measured in the same run. Re-run `make bench` after a change to
core code; `BENCH_ONLY=export,inference make bench` re-runs some sections and keeps the others.
"""


def main() -> int:
    """Run the selected benchmarks, update BENCHMARKS.md; non-zero exit if one failed."""
    only = [b for b in os.environ.get("BENCH_ONLY", "").split(",") if b] or BENCHES
    path = REPO / "BENCHMARKS.md"
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    failed = False
    for name in only:
        buf = io.StringIO()
        t0 = time.perf_counter()
        print(f">> bench {name}", flush=True)
        try:
            mod = importlib.import_module(f"deeplandcover.tools.bench.{name}")
            with contextlib.redirect_stdout(buf):
                mod.main([]) if inspect.signature(mod.main).parameters else mod.main()
            body = buf.getvalue().strip()
        except Exception:
            failed = True
            body = f"## {name}\n\nFAILED on {dt.date.today()}:\n\n```\n{traceback.format_exc()[-2000:]}\n```"
        body += f"\n\n_Section written by `make bench` on {dt.date.today()} ({machine()}), {time.perf_counter() - t0:.0f} s._"
        print(body, flush=True)
        block = f"<!-- bench:{name} -->\n{body}\n<!-- /bench:{name} -->"
        pat = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
        text = pat.sub(lambda _m, b=block: b, text) if pat.search(text) else text.rstrip() + "\n\n" + block + "\n"
        path.write_text(text, encoding="utf-8")  # after each section: a later failure keeps the earlier ones
    print(f"wrote {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
