"""``python -m crossdistill.distill ARGS`` is ``crossdistill distill ARGS``: the module torchrun
launches for data-parallel distillation (one process per GPU; see
:mod:`crossdistill.engine.distributed`)::

    torchrun --nproc-per-node 4 -m crossdistill.distill --config C.yaml [--teacher T] [--resume]

Same options and behaviour as the command; ``train.batch_size`` is the global batch.
"""

from crossdistill.cli import main

if __name__ == "__main__":
    main("distill")
