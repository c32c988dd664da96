import sys

from lowdata.cli import main

sys.exit(main())
