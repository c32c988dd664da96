"""Kinds of run (`train`, `pretrain`) on one shared skeleton: each kind supplies its data, model and
objective; `skeleton.py` does everything else the same way for all of them."""
