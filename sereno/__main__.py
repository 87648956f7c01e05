import sys

from sereno.cli import main

sys.exit(main())
