"""Cat or dog: an ImageNet network's verdict on a photo, and where it looked (Grad-CAM).

    pth.py           reads PyTorch `.pth` checkpoints with numpy alone (`python -m core.catdog.pth FILE`)
    efficientnet.py  EfficientNet-Lite0 in Keras 3 and the port of its ImageNet weights
                     (`python -m core.catdog.efficientnet [PTH] OUT.keras`)
    classify.py      the classifier: verdict, top-5, Grad-CAM, display helpers
    teach.py         Teach your own: photos embedded once, a small Keras head on the frozen
                     features, cross-validation, learning curve, .keras export/import
                     (`python -m core.catdog.teach train|predict`)
    teach_worker.py  the warm child process the page trains heads in
    __main__.py      the command line: `python -m core.catdog PATH [PATH ...] [--json]`

May import: `core.images` and its own modules. Seam: `classify.stem_filters` gives the
network's first-layer filters to the kernel lab.
"""
