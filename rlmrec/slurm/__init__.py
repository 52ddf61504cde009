"""Workers as Slurm jobs: ``rlmrec slurm submit`` hands a job array of workers to
Slurm (``submit.py``), ``status`` and ``cancel`` follow and stop it (``jobs.py``).
The batch script is generated (``script.py``) and checked against what the nodes
can reach (``shared.py``); ``sbatch``, ``squeue`` and friends are called in
``commands.py``; ``env.py`` tells a worker which Slurm job it runs in."""
