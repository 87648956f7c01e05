import sys

from sereno.cli.main import main

sys.exit(main())
