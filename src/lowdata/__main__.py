"""`python -m lowdata ...` (and `torchrun --nproc_per_node N -m lowdata train ...`) run the CLI."""
from lowdata.cli import main

raise SystemExit(main())
