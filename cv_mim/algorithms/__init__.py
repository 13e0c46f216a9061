"""Representation learners: the registry, the config, the shared contract, CV-MIM, the baselines and
the per-replica step. Import the submodule you need (``from cv_mim.algorithms import registry``)."""
