"""The parts of the ``injection`` scanner (``warden.guard.scanners.injection``).

``normalise`` undoes obfuscation, with ``decode`` spelling out encoded or split instructions;
``heuristics`` holds the attack patterns; ``features`` hashes n-grams; ``context`` compares a
prompt with the request's system prompt; ``model`` loads the shipped artifact (classifier, bank
of known attacks, combiner, and the weights of the optional second stage); ``analysis`` runs a
text through all of them; ``semantic`` is the second stage, which reads the prompts of an
uncertain band with a sentence-embedding model. ``corpus`` reads the
public data sets the model was trained and measured on, with the fixed split; only
scripts/train_injection.py, the benchmark and the tests use it.
"""
