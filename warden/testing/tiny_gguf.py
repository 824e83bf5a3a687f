"""Write a tiny random llama-architecture GGUF (about 250 KB) for fast plumbing tests.

The weights are random, so the text is gibberish, but the file exercises everything a real
model does: a SentencePiece vocabulary with byte fallback (any text tokenizes), ChatML control
tokens and a ChatML chat template. Needs the ``gguf`` and ``numpy`` packages (dev extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _vocab() -> tuple[list[bytes], list[float], list[int]]:
    import gguf

    tokens: list[bytes] = []
    scores: list[float] = []
    types: list[int] = []

    def add(text: str, score: float, kind: int) -> None:
        tokens.append(text.encode("utf-8"))
        scores.append(float(score))
        types.append(int(kind))

    t = gguf.TokenType
    add("<unk>", 0, t.UNKNOWN)
    add("<s>", 0, t.CONTROL)
    add("</s>", 0, t.CONTROL)
    add("<|im_start|>", 0, t.CONTROL)
    add("<|im_end|>", 0, t.CONTROL)  # id 4: end of turn
    for b in range(256):
        add(f"<0x{b:02X}>", 0, t.BYTE)
    pieces = ["\u2581"] + [chr(c) for c in range(33, 127)] + [
        "\u2581" + w for w in ("the", "a", "is", "of", "and", "to", "in", "you", "hello", "world")]
    for i, piece in enumerate(pieces):
        add(piece, -float(i) if len(piece) == 1 else 10.0, t.NORMAL)
    return tokens, scores, types


def write_tiny_gguf(path: Path, *, n_embd: int = 64, n_layer: int = 2, n_head: int = 4,
                    n_head_kv: int = 2, n_ff: int = 128, n_ctx: int = 2048, seed: int = 0) -> Path:
    """Write the model to ``path`` and return it."""
    import gguf
    import numpy as np

    rng = np.random.default_rng(seed)
    tokens, scores, types = _vocab()
    head_dim = n_embd // n_head
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny-random-llama")
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(4)
    w.add_eot_token_id(4)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    w.add_chat_template(CHAT_TEMPLATE)

    def mat(rows: int, cols: int) -> Any:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.05).astype(np.float16)

    def ones(n: int) -> Any:
        return np.ones(n, dtype=np.float32)

    w.add_tensor("token_embd.weight", mat(len(tokens), n_embd))
    w.add_tensor("output_norm.weight", ones(n_embd))
    w.add_tensor("output.weight", mat(len(tokens), n_embd))
    for i in range(n_layer):
        w.add_tensor(f"blk.{i}.attn_norm.weight", ones(n_embd))
        w.add_tensor(f"blk.{i}.attn_q.weight", mat(n_head * head_dim, n_embd))
        w.add_tensor(f"blk.{i}.attn_k.weight", mat(n_head_kv * head_dim, n_embd))
        w.add_tensor(f"blk.{i}.attn_v.weight", mat(n_head_kv * head_dim, n_embd))
        w.add_tensor(f"blk.{i}.attn_output.weight", mat(n_embd, n_head * head_dim))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", ones(n_embd))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", mat(n_ff, n_embd))
        w.add_tensor(f"blk.{i}.ffn_up.weight", mat(n_ff, n_embd))
        w.add_tensor(f"blk.{i}.ffn_down.weight", mat(n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
