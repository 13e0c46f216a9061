"""The encoder shipped inside the package: CV-MIM pretrained on the synthetic world only.

Human3.6M needs a licence and the authors never released a checkpoint, so the package carries a CV-MIM
export trained by this project's own binaries on its synthetic world (``launch/synthetic_shipped.flags``;
BUILD_NOTES §14 says how it was chosen and what it measures on real data). Every binary that takes
``--export_dir`` uses it when none is given, and :class:`cv_mim.serving.embedder.Embedder` uses it when
constructed without one.

The model card (``cv_mim/pretrained/<name>.card.json``) records the data, command, steps, seed, commit
and the numbers measured with this export; :func:`card` reads it.
"""

from __future__ import annotations

import json
import os

from absl import logging

NAME = "synthetic_cv_mim"

PACKAGE_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "pretrained")

# Keys every model card has (tests check them; the README and BUILD_NOTES quote them).
CARD_KEYS = ("name", "algorithm", "data", "command", "steps", "checkpoint_step", "seed", "commit",
             "hidden_dim", "measured", "licence")


def export_dir() -> str:
    """Path of the shipped SavedModel directory.

    Raises:
      FileNotFoundError: the package was installed without its data (say how to get it back).
    """
    path = os.path.join(PACKAGE_DATA_DIR, NAME)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(
            f"the shipped pretrained encoder is missing from {path}: reinstall cv_mim from the "
            f"repository (pip install -e .), or pass --export_dir from cv_mim.export")
    return path


def card() -> dict:
    """The shipped model's card (data, command, steps, seed, commit, measured numbers)."""
    with open(os.path.join(PACKAGE_DATA_DIR, f"{NAME}.card.json"), encoding="utf-8") as stream:
        return json.load(stream)


def resolve(export_dir_or_none: str | None) -> str:
    """`export_dir_or_none`, or the shipped export (logged) when it is None or empty."""
    if export_dir_or_none:
        return export_dir_or_none
    path = export_dir()
    logging.info("no --export_dir given: using the shipped pretrained encoder %s (CV-MIM trained on "
                 "the synthetic world only; its card: cv_mim/pretrained/%s.card.json)", path, NAME)
    return path
