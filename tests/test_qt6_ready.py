"""QGIS 4 / Qt 6 readiness, checked statically (no Qt 6 QGIS can be installed on the test machines).

PyQt6 has no unscoped enum values: ``Qt.AlignLeft``, ``Qgis.Critical`` or
``QgsProcessingParameterNumber.Integer`` raise ``AttributeError`` there, while the scoped spellings
(``Qt.AlignmentFlag.AlignLeft``) work on PyQt5 too. The checker parses every Python file of the plugin
(AST, not grep), resolves the names it imports from ``qgis.*`` (aliases such as
``from qgis.core import QgsProcessingParameterNumber as Num`` and ``P = QgsProcessingParameterNumber``
included) to the real classes of the installed QGIS, and reports:

* ``<Class>.<Member>`` where the member is an enum value (its type is an enum type: a sip enum in PyQt5,
  an :class:`enum.Enum` in PyQt6) and ``<Class>`` is not itself an enum type: the unscoped form;
* a class attribute that this QGIS does not have, outside ``algorithms/qtcompat.py`` (names of newer QGIS
  versions are looked up there, in one place);
* ``QVariant`` type constants (Qt 6 field types are ``QMetaType.Type``);
* ``import PyQt5`` / ``PyQt6`` / ``sip`` (only ``qgis.PyQt`` is portable) and ``exec_`` (Qt 6 has ``exec``);

and that ``metadata.txt`` admits QGIS 4 (``qgisMaximumVersion`` >= 4).
"""

from __future__ import annotations

import ast
import configparser
import enum
import importlib
from collections.abc import Iterable
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[1]
SCANNED_DIRS = ("algorithms", "core", "models", "provider", "tools", "tests")
COMPAT_MODULE = "algorithms/qtcompat.py"
FORBIDDEN_MODULES = ("PyQt5", "PyQt6", "sip")
_MISSING = object()


def plugin_sources() -> list[tuple[str, str]]:
    """(path relative to the plugin, source) of every Python file of the plugin."""
    files = sorted(PLUGIN.glob("*.py"))
    for d in SCANNED_DIRS:
        files += sorted(p for p in (PLUGIN / d).rglob("*.py") if "__pycache__" not in p.parts)
    return [(p.relative_to(PLUGIN).as_posix(), p.read_text(encoding="utf-8")) for p in files]


def _enum_metatypes() -> tuple[type, ...]:
    from qgis.PyQt.QtCore import Qt

    # PyQt5: enums are instances of sip.enumtype (not exported by sip); PyQt6 and QGIS "enum class": enum.Enum
    return tuple({type(Qt.AlignmentFlag), type(enum.Enum)})


def _is_enum_type(obj, metas) -> bool:
    return isinstance(obj, type) and isinstance(obj, metas)


def _is_enum_value(obj, metas) -> bool:
    return _is_enum_type(type(obj), metas)


def _dotted(node: ast.AST) -> str:
    try:
        return ast.unparse(node)
    except Exception:  # pragma: no cover - ast.unparse handles every expression
        return "?"


def _import_qgis(module: str):
    """The module object for a ``qgis``/``PyQt`` import, or None when this QGIS lacks it."""
    try:
        return importlib.import_module(module)
    except Exception:
        return None


class _Resolver:
    """Maps the names of one file to real QGIS/Qt objects (imports and simple ``A = B`` aliases)."""

    def __init__(self, tree: ast.AST) -> None:
        self.names: dict[str, object] = {}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.level == 0
                and node.module.split(".")[0] in ("qgis", *FORBIDDEN_MODULES)
            ):
                mod = _import_qgis(node.module)
                for a in node.names:
                    obj = getattr(mod, a.name, _MISSING) if mod is not None else _MISSING
                    if obj is _MISSING:  # a submodule: from qgis.PyQt import QtCore
                        obj = _import_qgis(f"{node.module}.{a.name}")
                    if obj is not None and obj is not _MISSING:
                        self.names[a.asname or a.name] = obj
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] not in ("qgis", *FORBIDDEN_MODULES):
                        continue
                    mod = _import_qgis(a.name)
                    if mod is None:
                        continue
                    if a.asname:
                        self.names[a.asname] = mod
                    else:
                        self.names[a.name.split(".")[0]] = _import_qgis(a.name.split(".")[0])
        # aliases: P = QgsProcessingParameterNumber (to a fixed point: an alias may name another alias)
        assigns = [
            n
            for n in ast.walk(tree)
            if isinstance(n, ast.Assign)
            and len(n.targets) == 1
            and isinstance(n.targets[0], ast.Name)
            and isinstance(n.value, (ast.Name, ast.Attribute))
        ]
        changed = True
        while changed:
            changed = False
            for n in assigns:
                name = n.targets[0].id
                if name in self.names:
                    continue
                obj = self.resolve(n.value)
                if obj is not _MISSING and isinstance(obj, type):
                    self.names[name] = obj
                    changed = True

    def resolve(self, node: ast.AST):
        """The object an expression names, or _MISSING when it is not a known QGIS/Qt name."""
        if isinstance(node, ast.Name):
            return self.names.get(node.id, _MISSING)
        if isinstance(node, ast.Attribute):
            base = self.resolve(node.value)
            return _MISSING if base is _MISSING else getattr(base, node.attr, _MISSING)
        return _MISSING


def find_problems(sources: Iterable[tuple[str, str]]) -> list[str]:
    """Qt 6 / QGIS 4 blockers in ``sources`` ((path, source) pairs), as ``path:line: message`` lines."""
    from qgis.core import Qgis
    from qgis.PyQt.QtCore import QVariant

    metas = _enum_metatypes()
    problems: list[str] = []
    for path, source in sources:
        tree = ast.parse(source, filename=path)
        res = _Resolver(tree)

        def report(node: ast.AST, msg: str, path=path) -> None:
            problems.append(f"{path}:{getattr(node, 'lineno', 0)}: {msg}")

        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] in FORBIDDEN_MODULES:
                        report(node, f"import {a.name}: import Qt through qgis.PyQt")
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0 and node.module and node.module.split(".")[0] in FORBIDDEN_MODULES:
                    report(node, f"from {node.module} import ...: import Qt through qgis.PyQt")
            elif isinstance(node, ast.Name) and node.id == "exec_":
                report(node, "exec_: Qt 6 has only exec()")
            elif isinstance(node, ast.Attribute):
                if node.attr == "exec_":
                    report(node, f"{_dotted(node)}: Qt 6 has only exec()")
                    continue
                base = res.resolve(node.value)
                if base is _MISSING or not isinstance(base, type):
                    continue
                if base is QVariant or base is getattr(QVariant, "Type", None):
                    if node.attr[:1].isupper():
                        report(
                            node,
                            f"{_dotted(node)}: QVariant type constants are gone in Qt 6 "
                            "(QMetaType.Type); add a helper to algorithms/qtcompat.py",
                        )
                    continue
                value = getattr(base, node.attr, _MISSING)
                if value is _MISSING:
                    if path != COMPAT_MODULE and node.attr[:1].isupper():
                        report(
                            node,
                            f"{_dotted(node)} does not exist in QGIS {Qgis.QGIS_VERSION}: "
                            f"look newer names up in {COMPAT_MODULE}",
                        )
                    continue
                if _is_enum_value(value, metas) and not _is_enum_type(base, metas):
                    scoped = f"{_dotted(node.value)}.{type(value).__name__}.{node.attr}"
                    report(node, f"{_dotted(node)} is an unscoped enum value (AttributeError on PyQt6): write {scoped}")
    return sorted(problems, key=lambda p: (p.split(":")[0], int(p.split(":")[1])))


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.strip().split("."))


# -- the plugin ------------------------------------------------------------------------------------


def test_plugin_has_no_qt6_blockers():
    problems = find_problems(plugin_sources())
    assert not problems, "Qt 6 / QGIS 4 blockers:\n" + "\n".join(problems)


def test_metadata_admits_qgis_4():
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(PLUGIN / "metadata.txt", encoding="utf-8")
    general = cp["general"]
    assert "qgisMaximumVersion" in general, "without qgisMaximumVersion QGIS reads <minimum major>.99 (3.99)"
    assert _version(general["qgisMaximumVersion"]) >= (4, 0)
    assert _version(general["qgisMinimumVersion"]) <= (3, 22)
    if "supportsQt6" in general:  # read by the Qt 6 builds of QGIS 3.36-3.44 only; ignored by QGIS 4
        assert general["supportsQt6"].strip().lower() in ("true", "yes")


def test_compat_names_load_on_this_qgis():
    """Every compat constant exists here and is the value QGIS 3.22's scoped enums give."""
    from qgis.core import (
        QgsProcessing,
        QgsProcessingParameterDefinition,
        QgsProcessingParameterFile,
        QgsProcessingParameterNumber,
    )

    from deeplandcover.algorithms import qtcompat

    assert int(qtcompat.NUMBER_INTEGER) == int(QgsProcessingParameterNumber.Type.Integer)
    assert int(qtcompat.NUMBER_DOUBLE) == int(QgsProcessingParameterNumber.Type.Double)
    assert int(qtcompat.FILE_BEHAVIOR_FILE) == int(QgsProcessingParameterFile.Behavior.File)
    assert int(qtcompat.FILE_BEHAVIOR_FOLDER) == int(QgsProcessingParameterFile.Behavior.Folder)
    assert int(qtcompat.SOURCE_RASTER) == int(QgsProcessing.SourceType.TypeRaster)
    assert int(qtcompat.SOURCE_VECTOR_POLYGON) == int(QgsProcessing.SourceType.TypeVectorPolygon)
    assert int(qtcompat.SOURCE_VECTOR_ANY_GEOMETRY) == int(QgsProcessing.SourceType.TypeVectorAnyGeometry)
    assert int(qtcompat.PARAMETER_FLAG_ADVANCED) == int(QgsProcessingParameterDefinition.Flag.FlagAdvanced)


def test_compat_prefers_the_qgis_namespace_of_newer_qgis(monkeypatch):
    """The QGIS >= 3.36 branch of qtcompat (not reachable on 3.22) with stand-ins of the ``Qgis`` enums.

    The member names are those of QGIS 4 (python/PyQt6/core/auto_additions/qgis.py); a misspelt name in
    qtcompat raises AttributeError here.
    """
    import importlib
    import types

    from qgis.core import Qgis

    from deeplandcover.algorithms import qtcompat

    fakes = {
        "ProcessingNumberParameterType": types.SimpleNamespace(Integer="int", Double="double"),
        "ProcessingFileParameterBehavior": types.SimpleNamespace(File="file", Folder="folder"),
        "ProcessingSourceType": types.SimpleNamespace(
            Raster="raster", VectorPolygon="polygon", VectorAnyGeometry="any geometry"
        ),
        "ProcessingParameterFlag": types.SimpleNamespace(Advanced="advanced"),
    }
    for name, fake in fakes.items():
        monkeypatch.setattr(Qgis, name, fake, raising=False)
    try:
        importlib.reload(qtcompat)
        assert qtcompat.PROCESSING_ENUMS_IN_QGIS
        assert (qtcompat.NUMBER_INTEGER, qtcompat.NUMBER_DOUBLE) == ("int", "double")
        assert (qtcompat.FILE_BEHAVIOR_FILE, qtcompat.FILE_BEHAVIOR_FOLDER) == ("file", "folder")
        assert (qtcompat.SOURCE_RASTER, qtcompat.SOURCE_VECTOR_POLYGON, qtcompat.SOURCE_VECTOR_ANY_GEOMETRY) == (
            "raster",
            "polygon",
            "any geometry",
        )
        assert qtcompat.PARAMETER_FLAG_ADVANCED == "advanced"
    finally:
        monkeypatch.undo()
        importlib.reload(qtcompat)
    assert qtcompat.PROCESSING_ENUMS_IN_QGIS == hasattr(Qgis, "ProcessingSourceType")


# -- the checker itself ----------------------------------------------------------------------------

BAD = """
from qgis.core import Qgis, QgsProcessing, QgsProcessingParameterNumber as Num
from qgis.PyQt.QtCore import Qt, QVariant
from PyQt5.QtWidgets import QDialog
import qgis.core as qc


def f(dlg):
    P = qc.QgsProcessingParameterNumber
    Q = P
    a = Num.Integer
    b = P.Double
    c = Q.Integer
    d = Qgis.Critical
    e = [QgsProcessing.TypeVectorPolygon]
    g = Qt.AlignLeft | Qt.AlignTop
    h = QVariant.Int
    i = qc.QgsVectorFileWriter.NoError
    j = Qgis.NoSuchEnumAnywhere.Member
    dlg.exec_()
"""

GOOD = """
from qgis.core import Qgis, QgsProcessing, QgsProcessingParameterNumber as Num
from qgis.PyQt.QtCore import Qt


def f(dlg, layer):
    P = Num
    a = Num.Type.Integer
    b = P.Type.Double
    d = Qgis.MessageLevel.Critical
    e = [QgsProcessing.SourceType.TypeVectorPolygon]
    g = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop
    h = layer.Integer          # not a QGIS class: not judged
    k = QgsProcessing.TEMPORARY_OUTPUT
    dlg.exec()
"""


def test_checker_catches_unscoped_enums_through_aliases():
    problems = find_problems([("bad.py", BAD)])
    text = "\n".join(problems)
    for expected in (
        "Num.Integer",
        "P.Double",
        "Q.Integer",
        "Qgis.Critical",
        "QgsProcessing.TypeVectorPolygon",
        "Qt.AlignLeft",
        "Qt.AlignTop",
        "QVariant.Int",
        "qc.QgsVectorFileWriter.NoError",
        "Qgis.NoSuchEnumAnywhere",
        "exec_",
        "from PyQt5.QtWidgets",
    ):
        assert expected in text, f"{expected} not reported:\n{text}"
    assert "write Qgis.MessageLevel.Critical" in text
    from deeplandcover.algorithms.qtcompat import PROCESSING_ENUMS_IN_QGIS

    if not PROCESSING_ENUMS_IN_QGIS:  # QGIS < 3.36 names the old scoped homes (3.36+ points to qtcompat)
        assert "write Num.Type.Integer" in text
        assert "write QgsProcessing.SourceType.TypeVectorPolygon" in text


def test_checker_accepts_scoped_enums():
    assert find_problems([("good.py", GOOD)]) == []
