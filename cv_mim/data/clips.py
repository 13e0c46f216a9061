"""What the action-recognition datasets (Penn Action, NTU RGB+D) have in common."""

import dataclasses

import numpy as np


class LabelledClips:
    """Mixin for dataclasses with ``labels``, ``class_names`` and ``skipped`` fields."""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_skipped(self) -> int:
        """Number of malformed files skipped (``skip_malformed=True``)."""
        return len(self.skipped)


@dataclasses.dataclass
class Tally:
    """What a streaming reader left out, filled while it runs (complete once it is exhausted).

    Attributes:
      skipped: [(file, reason)] of malformed files skipped (``skip_malformed=True``).
      excluded: the clips a protocol rule removed (the reader documents the entries).
      files: number of files the reader looked at.
    """

    skipped: list = dataclasses.field(default_factory=list)
    excluded: list = dataclasses.field(default_factory=list)
    files: int = 0


def sorted_labels(names):
    """Per-clip class names -> (labels [N] int64 indices into class_names, class_names sorted).

    The class list is what the clips hold, sorted, never a hard-coded list; it needs every clip's
    name, so a streaming reader applies it once its clips are exhausted.
    """
    class_names = tuple(sorted(set(names)))
    index = {name: i for i, name in enumerate(class_names)}
    return np.array([index[n] for n in names], np.int64), class_names
