"""Screenshot of a Deep Land Cover algorithm dialog, as a user sees it in desktop QGIS.

Run under a virtual screen (Debian xvfb):
``xvfb-run -a -s "-screen 0 1280x1024x24" .venv/bin/python -m deeplandcover.tools.screenshot_dialog
deeplandcover:classifypixels docs/images/classifypixels_dialog.png [raster to load]``
(with PATH cleaned of pyenv, as for qgis_process).
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Open the algorithm's Processing dialog with a layer loaded and save a PNG of it."""
    alg_id, out = argv[0], Path(argv[1])
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

    app = QgsApplication([], True)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing

    Processing.initialize()
    from deeplandcover.provider.provider import DeepLandCoverProvider

    provider = DeepLandCoverProvider()  # keep a reference: the registry does not own Python providers
    QgsApplication.processingRegistry().addProvider(provider)
    for p in argv[2:]:
        QgsProject.instance().addMapLayer(QgsRasterLayer(p, Path(p).stem))
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    if alg is None:
        print(f"algorithm {alg_id} not found")
        return 1
    dlg = AlgorithmDialog(alg)
    dlg.resize(1000, 820)
    dlg.show()
    for _ in range(5):
        app.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    dlg.grab().save(str(out))
    print(f"saved {out}")
    dlg.close()
    del dlg, alg
    QgsProject.instance().clear()
    QgsApplication.processingRegistry().removeProvider(provider)
    app.exitQgis()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
