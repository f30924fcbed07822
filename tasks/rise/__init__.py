"""RISE: subtle errors injected into correct solutions, checked, turned into hard-negative pairs."""
