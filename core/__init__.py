"""The explorer's library: everything the pages show, computed without Streamlit.

One package per lab, plus the few modules every lab shares:

    core/shallow/        the shallow-net lab: config, engines, jobs, saved runs, evaluation, views
    core/kernels/        the kernel lab: kernels, fast cross-correlation, one pixel explained
    core/architectures/  the architectures lab: the articles' stored results, the rebuilt models
    core/catdog/         cat or dog: the .pth reader, EfficientNet-Lite0 in Keras, the classifier

    core/data.py         Fashion-MNIST from the IDX files (shared)
    core/images.py       the one safe image loader for every upload (shared)
    core/cache.py        a thread-safe LRU cache bounded by bytes, for what pages share (shared)
    core/device.py       which Keras backend and device the server has (shared)
    core/labs.py         the table of labs that the home page and the navigation read
    core/classroom.py    classroom mode: the lecturer key, who may manage what, the class limits (shared)
    core/devserver.py    starts the app on a free port for the browser tests and benchmarks

A lab's package may import the shared modules and its own modules, never another lab's
package, except through a seam named in the package's docstring. Nothing in `core` imports
Streamlit, and TensorFlow/Keras are imported only inside the functions that need them or in
modules that a page loads only when it trains or classifies.
"""
