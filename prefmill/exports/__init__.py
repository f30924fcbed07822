"""Trainer exports of a version (`prefmill export`): one file per format, in the layout a trainer reads.

- `dpo` (`dpo.py`): the `pairs` config as TRL DPOTrainer's conversational preference format;
- `prm` (`prm.py`): the `steps` config as stepwise supervision for a token-classification PRM, with
  `tokenize_prm` for AutoModelForTokenClassification;
- `openrlhf-prm` (`openrlhf.py`): the `steps` config as OpenRLHF `train_prm` reads it.

`source.py` reads a version's config through its manifest; `write.py` ties a format to a file.
"""
