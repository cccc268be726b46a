"""Decontamination against the evaluation tasks (in progress: the n-gram matching and GPT-3's
removal recipe, exact to lm-evaluation-harness's janitor, in ngrams.py; the stage is not wired
into the run yet)."""
