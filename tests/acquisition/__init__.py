"""Tests of bal.acquisition (a package: test module names stay unique across tests/)."""
