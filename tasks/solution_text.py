"""Patterns of worked solutions that several stages read: GSM8K calculator annotations and step labels."""

from __future__ import annotations

import re

# A GSM8K calculator annotation, `<<48/2=24>>`: what the calculator computed, not what the text says.
ANNOTATION = re.compile(r"<<[^<>\n]*>>")

# A step label at the start of a step: "Step 2:", "**Step 2.**", "## Step 2)", "New step 2:".
_LABEL = r"(?:[#*_>-]+[^\S\n]*)?(?:new[^\S\n]+)?step[^\S\n]*\d+[^\S\n]*[*_]*[^\S\n]*[:.)][^\S\n]*[*_]*[^\S\n]*"
STEP_LABEL = re.compile(_LABEL, re.IGNORECASE)
STEP_MARKER = re.compile(r"^[^\S\n]*" + _LABEL, re.IGNORECASE | re.MULTILINE)  # a label starting a line


def without_annotations(text: str) -> str:
    """`text` as a model would write it: the calculator annotations removed."""
    return ANNOTATION.sub("", text)
