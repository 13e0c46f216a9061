"""What the action-recognition datasets (Penn Action, NTU RGB+D) have in common."""


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
