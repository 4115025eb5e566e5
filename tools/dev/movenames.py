"""Developer tool: move top-level names (functions, classes, constants) from one module to another and
rewrite every import of them in the repository.

    python tools/dev/movenames.py core/raster/grid.py core/raster/tiling.py tile_offsets tile_windows

The destination is created when missing (module docstring to be written by hand). What the moved code
uses from the source is imported from it; what the source still uses from the moved code is imported
back. Imports of the moved names anywhere in the repository (relative or absolute
``deeplandcover.core...``, one-line or parenthesised) are split accordingly, and ``ruff check --fix``
(unused imports, import order) runs over the files touched. Review the diff afterwards.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PKG = "deeplandcover"


def dotted(path: Path) -> str:
    rel = path.resolve().relative_to(REPO).with_suffix("")
    parts = [PKG, *rel.parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def resolve(importer: Path, node: ast.ImportFrom) -> str:
    """Absolute dotted module of an ``ImportFrom`` in ``importer``."""
    if node.level == 0:
        return node.module or ""
    base = dotted(importer).split(".")
    if importer.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def relative(importer: Path, target: str) -> str:
    """The relative form of ``target`` as seen from ``importer`` (inside the package)."""
    here = dotted(importer).split(".")
    if importer.name != "__init__.py":
        here = here[:-1]
    tgt = target.split(".")
    common = 0
    while common < min(len(here), len(tgt)) and here[common] == tgt[common]:
        common += 1
    return "." * (len(here) - common + 1) + ".".join(tgt[common:])


def top_level_spans(tree: ast.Module, src_lines: list[str], names: set[str]) -> list[tuple[int, int, str]]:
    spans = []
    for node in tree.body:
        name = None
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = node.name
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
        if name in names:
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            while start > 1 and src_lines[start - 2].lstrip().startswith("#:"):
                start -= 1
            spans.append((start, node.end_lineno, name))
    return spans


def used_names(code: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)} | {
        n.value.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
    }


def defined(tree: ast.Module) -> set[str]:
    out = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, ast.Assign):
            out |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.add(node.target.id)
    return out


def header(src: str, tree: ast.Module) -> str:
    """The import block of a module (everything from the first import to the last top-level import)."""
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    if not imports:
        return ""
    lines = src.splitlines(keepends=True)
    return "".join(lines[imports[0].lineno - 1 : imports[-1].end_lineno])


def rewrite_imports(path: Path, src_mod: str, dst_mod: str, moved: set[str]) -> bool:
    text = path.read_text()
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return False
    lines = text.splitlines(keepends=True)
    edits = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or resolve(path, node) != src_mod:
            continue
        hit = [a for a in node.names if a.name in moved]
        if not hit:
            continue
        rest = [a for a in node.names if a.name not in moved]
        indent = re.match(r"\s*", lines[node.lineno - 1]).group()
        is_rel = node.level > 0

        def stmt(mod: str, aliases, indent=indent, is_rel=is_rel) -> str:
            target = relative(path, mod) if is_rel else mod
            names = ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in aliases)
            return f"{indent}from {target} import {names}\n"

        new = (stmt(src_mod, rest) if rest else "") + stmt(dst_mod, hit)
        edits.append((node.lineno, node.end_lineno, new))
    if not edits:
        return False
    for start, end, new in sorted(edits, reverse=True):
        lines[start - 1 : end] = [new]
    path.write_text("".join(lines))
    return True


def main(argv: list[str]) -> int:
    src_path, dst_path, *names = argv
    src_path, dst_path = (REPO / src_path).resolve(), (REPO / dst_path).resolve()
    moved = set(names)
    src = src_path.read_text()
    tree = ast.parse(src)
    lines = src.splitlines(keepends=True)
    spans = top_level_spans(tree, lines, moved)
    missing = moved - {s[2] for s in spans}
    if missing:
        print(f"not found at the top level of {src_path}: {sorted(missing)}", file=sys.stderr)
        return 2
    chunks = ["".join(lines[a - 1 : b]) for a, b, _ in sorted(spans)]
    for a, b, _ in sorted(spans, reverse=True):
        del lines[a - 1 : b]
    remaining_src = re.sub(r"\n{4,}", "\n\n\n", "".join(lines))
    src_mod, dst_mod = dotted(src_path), dotted(dst_path)
    moved_code = "\n\n".join(c.strip("\n") for c in chunks) + "\n"

    # destination: its own imports + the source's import block (ruff removes what is unused)
    if dst_path.exists():
        dst_text = dst_path.read_text().rstrip("\n") + "\n\n\n" + moved_code
    else:
        dst_path.parent.mkdir(parents=True, exist_ok=True)
        dst_text = (
            '"""TODO: module docstring."""\n\nfrom __future__ import annotations\n\n'
            + header(src, tree).replace("from __future__ import annotations\n", "")
            + "\n\n"
            + moved_code
        )
    # names of the source that the moved code needs
    need_from_src = (used_names(moved_code) & defined(ast.parse(remaining_src))) - moved
    if need_from_src:
        imp = f"from {relative(dst_path, src_mod)} import {', '.join(sorted(need_from_src))}\n"
        dst_text = (
            re.sub(r"(from __future__ import annotations\n)", r"\1" + imp, dst_text, count=1)
            if "from __future__" in dst_text
            else imp + dst_text
        )
    dst_path.write_text(dst_text)
    # names the source still uses from the moved code
    need_back = used_names(remaining_src) & moved
    if need_back:
        imp = f"from {relative(src_path, dst_mod)} import {', '.join(sorted(need_back))}\n"
        remaining_src = re.sub(r"(from __future__ import annotations\n)", r"\1" + imp, remaining_src, count=1)
    src_path.write_text(remaining_src)

    touched = [src_path, dst_path]
    for path in REPO.rglob("*.py"):
        if any(p in path.parts for p in (".git", ".venv", ".pkgroot", "data")):
            continue
        if rewrite_imports(path, src_mod, dst_mod, moved):
            touched.append(path)
    for path in list(REPO.rglob("*.py")) + list(REPO.rglob("*.md")):
        if any(p in path.parts for p in (".git", ".venv", ".pkgroot", "data")):
            continue
        text = path.read_text()
        new = re.sub(
            re.escape(src_mod) + r"\.(" + "|".join(map(re.escape, moved)) + r")\b",
            lambda m: f"{dst_mod}.{m.group(1)}",
            text,
        )
        if new != text:
            path.write_text(new)
            touched.append(path)
    # also `module.name` uses through `from ..raster import grid` are NOT rewritten: reported here
    pat = re.compile(r"\b" + re.escape(src_mod.rsplit(".", 1)[-1]) + r"\.(" + "|".join(map(re.escape, moved)) + r")\b")
    for path in REPO.rglob("*.py"):
        if any(p in path.parts for p in (".git", ".venv", ".pkgroot", "data")):
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pat.search(line) and "import" not in line:
                print(f"check by hand: {path.relative_to(REPO)}:{i}: {line.strip()}")
    ruff = Path(sys.executable).with_name("ruff")
    subprocess.run(
        [str(ruff) if ruff.exists() else "ruff", "check", "--fix", "-q", "--select", "F401,I", *map(str, set(touched))],
        cwd=REPO,
    )
    print(f"moved {sorted(moved)} from {src_mod} to {dst_mod}; {len(set(touched))} files touched")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
