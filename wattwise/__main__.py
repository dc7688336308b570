from wattwise.cli import main

raise SystemExit(main())
