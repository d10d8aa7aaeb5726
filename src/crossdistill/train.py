"""``python -m crossdistill.train ARGS`` is ``crossdistill train ARGS``: the module torchrun
launches for data-parallel training (one process per GPU; see
:mod:`crossdistill.engine.distributed`)::

    torchrun --nproc-per-node 4 -m crossdistill.train --config C.yaml [--set key=value] [--resume]

Same options and behaviour as the command; ``train.batch_size`` is the global batch.
"""

from crossdistill.cli import main

if __name__ == "__main__":
    main("train")
