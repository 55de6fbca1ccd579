"""The store tests' real explanations, shared with the request tests."""

from tests.store.conftest import classifier, explained, photos  # noqa: F401
