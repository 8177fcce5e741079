from edgekit.cli import main

raise SystemExit(main())
