"""Fixtures of the perception-core tests."""

from test.support.models import emotion_models  # noqa: F401  (session fixture: trained or stand-in models)
