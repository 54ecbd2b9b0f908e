"""llm_blender.pair_ranker.pairrm: ``DebertaV2PairRM``, the PairRM-hf model card's class, on pairrm.cpp
(``from_pretrained(...).eval()``, ``.to(...)``, calls on input_ids / attention_mask; see pairrm.hf)."""
from pairrm.hf import DebertaV2PairRM, SequenceClassifierOutput

__all__ = ["DebertaV2PairRM", "SequenceClassifierOutput"]
