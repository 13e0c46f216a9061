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
        "test": ["pytest"],  # the tests read event files with TensorFlow, not tensorboard
        # Only to view the curves (`tensorboard --logdir runs/...`): training writes the events
        # with TensorFlow alone.
        "tensorboard": ["tensorboard"],
    },
)
