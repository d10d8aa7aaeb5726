"""``python -m crossdistill COMMAND ARGS`` is ``crossdistill COMMAND ARGS``. It is also what
torchrun launches for data-parallel training, one process per GPU
(:mod:`crossdistill.engine.distributed`)::

    torchrun --nproc-per-node 4 -m crossdistill train   --config C.yaml [--set key=value] [--resume]
    torchrun --nproc-per-node 4 -m crossdistill distill --config C.yaml [--teacher T] [--resume]

Same options and behaviour as the commands; ``train.batch_size`` is the global batch. The
one module that turns the package into a program, so no library package imports the CLI.
"""

from crossdistill.cli import main

if __name__ == "__main__":
    main()
