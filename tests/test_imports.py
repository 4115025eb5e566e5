"""Dependency direction: core works without qgis; loading the provider imports neither torch nor onnxruntime."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent(
    """
    import sys, importlib.abc
    class Block(importlib.abc.MetaPathFinder):
        def __init__(self, names): self.names = names
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in self.names:
                raise ImportError(f'{name} is blocked in this test')
    """
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300)


def test_core_imports_without_qgis():
    res = _run(
        """
        # qgis made unimportable, exactly as on a machine without QGIS
        sys.meta_path.insert(0, Block({'qgis', 'PyQt5'}))
        import deeplandcover.core
        import pkgutil, importlib
        for m in pkgutil.iter_modules(deeplandcover.core.__path__):
            importlib.import_module('deeplandcover.core.' + m.name)
        assert 'qgis' not in sys.modules
        print('ok')
        """
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_inference_modules_import_without_torch():
    res = _run(
        """
        sys.meta_path.insert(0, Block({'torch', 'qgis'}))
        import importlib
        for m in ('raster', 'manifest', 'modelcard', 'deps', 'feedback', 'inference', 'change', 'styles'):
            try:
                importlib.import_module('deeplandcover.core.' + m)
            except ModuleNotFoundError as e:
                if e.name != 'deeplandcover.core.' + m:
                    raise
        assert 'torch' not in sys.modules
        print('ok')
        """
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr


def test_provider_loads_without_torch_or_onnxruntime():
    res = _run(
        """
        import os
        os.environ['QT_QPA_PLATFORM'] = 'offscreen'
        from qgis.core import QgsApplication
        app = QgsApplication([], False); app.initQgis()
        from deeplandcover.provider.provider import DeepLandCoverProvider
        p = DeepLandCoverProvider()
        QgsApplication.processingRegistry().addProvider(p)
        names = sorted(a.name() for a in p.algorithms())
        heavy = [m for m in ('torch', 'onnxruntime', 'onnx', 'matplotlib', 'sklearn') if m in sys.modules]
        print('ALGS', names, 'HEAVY', heavy)
        assert not heavy, heavy
        print('ok')
        """
    )
    assert res.returncode == 0 and "ok" in res.stdout, res.stdout + res.stderr
