"""Tests of emotion_recognition. A package, so that test.support resolves to our helpers and not to
the standard library test package."""
