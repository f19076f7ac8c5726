from gatewaycerts.cli import main

raise SystemExit(main())
