import sys

from facespot.cli import main

sys.exit(main())
