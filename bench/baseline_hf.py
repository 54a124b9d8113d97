"""Peer: Hugging Face ``LlamaForCausalLM`` built ``from_config`` (HF's own init) and written
with ``save_pretrained`` (safetensors), the shapes of llama_spec.py. Run only when
transformers is importable (bench/run.py checks)."""

from __future__ import annotations

import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from llama_spec import HIDDEN, INTER, LAYERS, VOCAB

config = LlamaConfig(
    hidden_size=HIDDEN, intermediate_size=INTER, num_hidden_layers=LAYERS,
    num_attention_heads=16, num_key_value_heads=16, vocab_size=VOCAB,
    tie_word_embeddings=False, torch_dtype=torch.float32,
)
torch.manual_seed(0)
model = LlamaForCausalLM._from_config(config, torch_dtype=torch.float32)
model.save_pretrained(sys.argv[1], safe_serialization=True)
