"""The architectures lab: the articles' VGG16 / ResNet50 / DenseNet121 results, checked in Keras.

    results.py     the stored results (assets/architectures.json), their validation and rows
    models.py      the Keras rebuilds and their parameter counts (Keras imported lazily)
    charts.py      Altair charts of those rows
    __main__.py    the command line: `python -m core.architectures params|summary ...`

May import: its own modules only. The shallow-net runs that the page plots beside the stored
results come through `core.shallow.runs.list_finished_runs`, read by the page.
"""
