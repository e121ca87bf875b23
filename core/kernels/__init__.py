"""The kernel lab: image kernels applied as a CNN layer applies them, and one pixel explained.

    presets.py      kernels: parsing and checks, the named presets and what each responds to
    correlation.py  the fast banded cross-correlation (whole image or blocks of rows), border
                    modes, stride, colour, the gradient magnitude
    display.py      one output pixel explained; responses as pictures; PNG, whole or banded
    learned.py      a network's learned first-layer filters as pictures, and the nearest preset
    link.py         a kernel in the lab's address: the link format, its checks, `kernel_lab_link`
    __main__.py     the command line: `python -m core.kernels list|apply ...`

The public names of those modules are available here (`from core import kernels`;
`kernels.correlate(...)`). May import: `core.images`, `core.labs` (the lab's address) and its own modules. The learned filters of
the cat-or-dog network reach the kernel lab through one seam, `core.catdog.classify.stem_filters`,
read by the page (this package never imports `core.catdog`). The other way round, the shallow-net
lab's pages open a trained CNN's kernels here through `core.kernels.link.kernel_lab_link`.
"""

from core.kernels.correlation import (  # noqa: F401
    COLORS,
    MODES,
    RENDER_BAND_BYTES,
    FilterSettings,
    apply_kernel,
    convolve,
    correlate,
    correlate_bands,
    filter_bands,
    filter_image,
    flip,
    gradient_magnitude,
    output_shape,
    to_gray,
)
from core.kernels.display import (  # noqa: F401
    DISPLAY_MAX_SIDE,
    LIMIT_SAMPLES,
    NEGATIVE_COLOR,
    PNG_FILTERS,
    POSITIVE_COLOR,
    SCALINGS,
    PixelExplanation,
    banded_limit,
    encode_png,
    encode_png_bands,
    explain_pixel,
    fit_within,
    locate,
    render_png,
    response_limit,
    summarize,
    to_display,
)
from core.kernels.learned import (  # noqa: F401
    correlate_channels,
    enlarge,
    filter_picture,
    filter_sheet,
    nearest_preset,
    resolve_kernel,
)
from core.kernels.link import (  # noqa: F401
    KERNEL_PARAM,
    LABEL_PARAM,
    LinkedKernel,
    clean_label,
    kernel_cells,
    kernel_from_query,
    kernel_lab_link,
    kernel_to_query,
)
from core.kernels.presets import (  # noqa: F401
    MAX_KERNEL_SIDE,
    PRESETS,
    Kernel,
    check_kernel,
    find_preset,
    kernel_from_cells,
    parse_kernel,
    parse_number,
)
