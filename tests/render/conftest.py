"""The component tests' real photos and explanation, shared here."""

from tests.components.conftest import QUICK, folder, lime_shap, photos, wait_until  # noqa: F401
