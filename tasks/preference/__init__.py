"""Preference recipe: judge samples, build pairs by a strategy, filter them for consistency."""
