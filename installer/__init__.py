"""Install the optional Python packages into a folder owned by the plugin, with QGIS's own pinned.

QGIS users cannot easily run pip themselves (OSGeo4W Shell, the Python inside QGIS.app, Debian's
externally managed Python), so the Processing algorithm *Install Python dependencies* does it for
them, through this package. The rules it follows, and the module that keeps each:

* **Which Python** (:mod:`.python`). pip runs in a subprocess of the interpreter QGIS itself runs
  (:func:`.python.find_python`): inside QGIS ``sys.executable`` is usually the QGIS binary, so the
  Python is searched next to it, in ``sys.exec_prefix`` and ``sys.base_prefix``, and verified by running it.
* **Where** (:mod:`.folder`). Packages go to a per-user folder owned by the plugin, one per Python
  minor version (:func:`.folder.packages_dir`), never into QGIS's site-packages.
  :func:`.folder.activate` appends it to ``sys.path`` *after* QGIS's own folders, so QGIS's NumPy,
  GDAL and PyQt always win.
* **What stays QGIS's** (:mod:`.constraints`). A constraints file (:func:`.constraints.constraints_text`)
  pins every distribution the running Python already provides, and nothing that it provides is ever
  copied into the folder (a copy would be shadowed anyway, see :func:`.install.install`). PyQt, sip
  and GDAL (:data:`.constraints.QGIS_OWNED`, from ``deps.QGIS_PROVIDED``) are never installed.
* **Only what is missing** (:mod:`.plan`): a requirement already met is not passed to pip at all;
  :mod:`.gpu` picks the onnxruntime build and torch's package index.
* **Never a CUDA build by accident** (:mod:`.gpu`, :mod:`.probe`): unless the GPU is chosen, torch
  comes from PyTorch's CPU index on Linux; an index that does not answer stops the install before pip
  runs, and a resolution with CUDA/triton packages stops it before anything is downloaded.
* **Nothing runs at start-up**: the folder is appended to ``sys.path`` without reading ``.pth`` files,
  and the installer deletes any that a package brings (:func:`.folder.remove_pth_files`).
* **All or nothing** (:mod:`.install`, :mod:`.merge`). pip (:mod:`.pip`) writes into a staging folder
  next to the target; only a successful run is moved into place, so a failed or cancelled install
  leaves the folder as it was.

**Two lists of pins, on purpose.** ``deps.qgis_pins()`` pins only what QGIS ships (NumPy, GDAL,
PyQt, sip: ``deps.QGIS_PROVIDED``). It goes into the one-line ``pip install --user`` of the error
hints and into the constraints of ``make setup`` (``python -m deeplandcover.core.deps constraints``):
there pip installs into QGIS's own Python, the user site or a ``--system-site-packages`` venv, sees
everything already installed and leaves what satisfies a requirement alone, so only the packages
whose replacement would break QGIS need pinning, and the line stays short enough to paste.
This installer pins *every* distribution the running Python provides instead: ``pip --target``
ignores what is installed (pypa/pip#2373), and the plugin folder comes after QGIS's site-packages
on ``sys.path``, so a different version of *any* provided package installed there would never be
imported, and pip would have resolved against a version that is not the one QGIS runs.

Nothing heavy is imported here: the plugin calls :func:`.folder.activate` when QGIS loads it. The
package's modules are imported by name (``from deeplandcover.installer.install import install``);
this ``__init__`` re-exports nothing.
"""
