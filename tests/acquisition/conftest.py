"""Shared fixtures for the acquisition tests: small random predictive samples."""

import jax
import pytest
from .acq_helpers import random_log_probs


@pytest.fixture
def make_log_probs():
    return random_log_probs


@pytest.fixture(scope="module")
def key():
    return jax.random.key(0)
