import sys

from cloudtwin.tempest.run import main

sys.exit(main())
