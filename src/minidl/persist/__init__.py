"""minidl.persist: files that survive crashes, knowing nothing of trainers.

- ``checkpoint.py``: a checkpoint (model, optimizer, scheduler, RNG states, metadata) in one safetensors file;
- ``checkpoint_folder.py``: a run's numbered checkpoints, the newest k kept, the newest readable one found;
- ``safetensors_file.py``: the bytes of a safetensors file checked before the library parses them;
- ``tree.py``: nested state (optimizer, scheduler) as JSON with tagged tensors;
- ``durable.py``: atomic writes and fsynced appends;
- ``rng.py``: RNG states to save and restore.
"""
