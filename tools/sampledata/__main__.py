"""Command line: fetch the sample data, convert them, print where they are (``make data`` runs this).

    python -m deeplandcover.tools.sampledata [--dest DIR] [--sets NAME ...] [--mirror URL] [--force]

Prints each set's attribution and licence (the OSCD labels are non-commercial) before anything is
downloaded, a line per file while fetching, and at the end the ``export DLC_DATA=...`` line to use.
Exit status 1 with one message when a file cannot be fetched or fails its checksum.
"""

from __future__ import annotations

import argparse
import sys
import textwrap

from .catalogue import NOT_FETCHED, DataSet, select_sets, set_names
from .fetch import ChecksumError, SampleDataUnavailableError
from .install import MIRROR_ENV, default_data_dir, default_download_dir, ensure_sample_data, is_complete


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m deeplandcover.tools.sampledata",
        description="Fetch the sample data from their public sources (pinned commits, SHA-256) and convert "
        "them into the layout the demo, the benchmarks and the tests read (DLC_DATA).",
        epilog=NOT_FETCHED,
    )
    p.add_argument("--dest", help=f"data folder to fill (default: {default_data_dir()})")
    p.add_argument(
        "--sets", nargs="+", metavar="NAME", choices=set_names(), help="sets to fetch (default: all): %(choices)s"
    )
    p.add_argument(
        "--mirror",
        help=f"base URL replacing the upstream repositories, read as <mirror>/<set>/<path> "
        f"(e.g. file:///path/to/data; default ${MIRROR_ENV})",
    )
    p.add_argument("--cache", help=f"download cache (default: {default_download_dir()})")
    p.add_argument("--force", action="store_true", help="rebuild the sets even when complete")
    return p


def terms(sets: list[DataSet]) -> str:
    """Attribution and licence of each set, the non-commercial terms first (printed before downloading)."""
    lines = []
    if any(ds.non_commercial for ds in sets):
        lines += [
            "NOTE: the OSCD change labels (oscd_s2_change) are Creative Commons BY-NC-SA: NON-COMMERCIAL use only.",
            "Anything you ship that contains them, or is adapted from them, inherits those terms.",
            "",
        ]
    for ds in sets:
        lines.append(f"{ds.name} ({ds.size / 1e6:.1f} MB): {ds.title}")
        lines.append(f"  source: https://github.com/{ds.repository} at {ds.commit}")
        for label, text in (("attribution", ds.attribution), ("licence", ds.licence)):
            lines += textwrap.wrap(f"{label}: {text}", 100, initial_indent="  ", subsequent_indent="    ")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    dest = args.dest or default_data_dir()
    sets = select_sets(args.sets)
    if args.force or not all(is_complete(dest, ds) for ds in sets):
        print(terms(sets) + "\n", flush=True)
    try:
        out = ensure_sample_data(
            dest,
            [ds.name for ds in sets],
            args.mirror,
            lambda s: print(s, flush=True),
            cache=args.cache,
            force=args.force,
        )
    except (SampleDataUnavailableError, ChecksumError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"\nSample data ready ({', '.join(ds.name for ds in sets)}). Use them with:\n  export DLC_DATA={out}")
    if any(ds.name == "oscd_s2_change" for ds in sets):
        print(NOT_FETCHED)
    return 0


if __name__ == "__main__":
    sys.exit(main())
