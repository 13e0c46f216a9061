"""Installs the cv_mim package (CV-MIM, CVPR'21, reimplemented in TensorFlow/Keras 3)."""
import setuptools

setuptools.setup(
    name="cv_mim",
    version="0.1.0",
    description=(
        "Contrastive Cross-View Mutual Information Maximization (CV-MIM): "
        "view-disentangled 2D human pose representations, with data preparation, "
        "distributed pretraining, SavedModel export and the paper's evaluation protocols."
    ),
    packages=setuptools.find_packages(include=["cv_mim", "cv_mim.*"]),
    # The shipped pretrained encoder (a SavedModel and its card, ~5 MB): cv_mim/serving/pretrained.py.
    package_data={"cv_mim": ["pretrained/*.json", "pretrained/*/*.pb", "pretrained/*/*.json",
                             "pretrained/*/variables/*", "pretrained/*/assets/*"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        # tensorflow-probability 0.25 imports tf-keras for its distributions; tf.keras stays Keras 3.
        "tensorflow-probability>=0.24",
        "tf-keras",
        "numpy",
        "absl-py",
        "scipy",
        "matplotlib",
    ],
    extras_require={
        # pytest-xdist: the suite runs on every core (-n auto in pytest.ini), which keeps CI under
        # its 20-minute budget on a 2-core machine (BUILD_NOTES §12). The tests read event files
        # with TensorFlow, not tensorboard.
        "test": ["pytest", "pytest-xdist"],
        # Only to view the curves (`tensorboard --logdir runs/...`): training writes the events
        # with TensorFlow alone.
        "tensorboard": ["tensorboard"],
    },
)
