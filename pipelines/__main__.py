import sys

from pipelines.cli import main

# The guard matters: nnU-Net (stage nnunet) starts "spawn" process pools, whose workers import this module as
# __mp_main__; without it every worker would run the command line again.
if __name__ == "__main__":
    sys.exit(main())
