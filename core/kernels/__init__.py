"""The kernel lab: image kernels applied as a CNN layer applies them, and one pixel explained.

    filtering.py   kernel presets and parsing, the fast banded cross-correlation, the per-pixel
                   explanation, display scaling, the full-size PNG made block by block, and the
                   filter sheets of learned kernels
    __main__.py    the command line: `python -m core.kernels list|apply ...`

May import: `core.images` and its own modules. The learned filters of the cat-or-dog network
reach the kernel lab through one seam, `core.catdog.classify.stem_filters`, read by the page
(this package never imports `core.catdog`).
"""
