"""Shared test set-up: the Agg backend for every plot test, never at library import."""

import matplotlib

matplotlib.use("Agg")
