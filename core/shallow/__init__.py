"""The shallow-net lab: train the article's shallow networks on Fashion-MNIST and explain them.

    config.py      `TrainingConfig` (validated settings: the per-pixel net, the MLP, the shallow CNN),
                   parameter counts, estimates, `build_model`, the article's and the CNN presets
    engines.py     the engines that train a Keras model: Keras `fit`, and the two-product numpy
                   engine for the article's linear network
    piecewise_engine.py  the two-product engine extended to one layer with ReLU, LeakyReLU,
                   PReLU or ELU
    dense_engine.py  the numpy engine for every other per-pixel network (and the MLP)
    compiled.py    the numpy engines' element-wise passes compiled with numba (optimizer updates,
                   layer passes, per-pixel slices), bit-for-bit or within float32 of numpy's
    jax_engine.py  the compiled JAX engine for every dense network (the GPU path; the CNN uses Keras)
    replay.py      replays of real full-length runs
    calibration.py times a few real batches of the engine a run would use (the time estimates)
    jobs.py        training jobs, their progress, the queue (when) and the executors (where):
                   a thread, a warm child process
    ray_executor.py  the executor for a Ray cluster (`EXPLORER_RAY_ADDRESS`; Ray is optional)
    scheduling.py  who trains next (FIFO, or round-robin between sessions), waits, the job-length cap
    board.py       the class board: filters, accuracy against parameters, the leaderboard
    runs.py        saved runs in SQLite, each with its `.keras` model
    network.py     a saved run's network in numpy (weights read with h5py, no Keras): predictions, layers
    inside.py      what a trained network computes: class templates, neuron maps, CNN kernels and feature
                   maps, signed colours
    picture.py     your own photo prepared the way Fashion-MNIST was made (each step kept), for a run to classify
    evaluation.py  the test-set metrics (the article's Precision/Recall), confusion matrix
    view.py        UI-free tables and text for the page; charts.py draws them with Altair
    __main__.py    the command line: `python -m core.shallow --help`

May import: `core.data`, `core.device`, `core.classroom`, `core.images` (photos), and its own modules. Other labs read its saved runs
through one seam, `core.shallow.runs.list_finished_runs` (the Architectures page plots them).
"""
