"""The parts of the ``injection`` scanner (``warden.guard.scanners.injection``).

``normalise`` undoes obfuscation; ``heuristics`` holds the attack patterns; ``features`` hashes
n-grams; ``model`` loads the shipped artifact (classifier, bank of known attacks, combiner);
``analysis`` runs a text through all of them. ``corpus`` reads the public data sets the model
was trained and measured on, with the fixed split; only scripts/train_injection.py and the
tests use it.
"""
