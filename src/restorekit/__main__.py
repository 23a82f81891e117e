import sys

from restorekit.cli.main import main

sys.exit(main())
