"""Sampling: generate n answers per prompt, verify them, vote, decontaminate the prompts."""
