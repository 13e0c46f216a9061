"""Shared pytest fixtures: the research-licensed real-data samples and small temporary worlds."""
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# The real-data samples live beside the checkout (../shared/realdata); they are never copied here.
REALDATA = pathlib.Path(os.environ.get("CV_MIM_REALDATA", REPO_ROOT.parent / "shared" / "realdata"))


@pytest.fixture(scope="session")
def realdata_dir():
    """Path of ../shared/realdata; the test is skipped when the samples are not present."""
    if not REALDATA.is_dir():
        pytest.skip(f"real-data samples not found at {REALDATA}")
    return REALDATA
