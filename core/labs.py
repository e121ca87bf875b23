"""The labs (and the class board): what each one is, and which page file holds it once it exists.

The home page and the navigation read this table; a lab whose page file does not exist
yet is described but not linked (no placeholder pages).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Lab:
    """One lab of the app."""

    page_file: str  # Relative to the project root.
    url_path: str  # The lab's address: http://host/<url_path>, kept stable for shared links.
    title: str
    icon: str
    summary: str

    @property
    def exists(self) -> bool:
        return (ROOT / self.page_file).is_file()


LABS = (
    Lab(
        "pages/shallow/lab.py",
        "shallow_nets",
        "Shallow-net lab",
        ":material/neurology:",
        "Set the hidden neurons, dropout and activation of a shallow network, train it on "
        "Fashion-MNIST live, watch the curves, and see how close it gets to AlexNet's 86.43%.",
    ),
    Lab(
        "pages/kernels/lab.py",
        "kernels",
        "Kernel lab",
        ":material/blur_on:",
        "Slide edge-detection kernels over your own photos and see, pixel by pixel, "
        "how a convolution layer computes what it sees.",
    ),
    Lab(
        "pages/architectures/lab.py",
        "architectures",
        "Architectures",
        ":material/account_tree:",
        "Compare VGG16, ResNet50 and DenseNet121 results with the shallow nets: accuracy, "
        "over-fitting and parameter counts, checked against Keras' own models.",
    ),
    Lab(
        "pages/catdog/lab.py",
        "cat_or_dog",
        "Cat or dog",
        ":material/pets:",
        "Upload photos and get a verdict from a real ImageNet network, with a heatmap of where it looked.",
    ),
    Lab(
        "pages/classboard/lab.py",
        "class_board",
        "Class board",
        ":material/leaderboard:",
        "For the projector: every run the class trained since the lecturer cleared the board, test accuracy "
        "against parameters beside the article and AlexNet, and a leaderboard of nicknames.",
    ),
)


def available_labs() -> list[Lab]:
    """The labs whose page exists, in menu order."""
    return [lab for lab in LABS if lab.exists]
