import sys

from jointkl.cli import main

sys.exit(main())
