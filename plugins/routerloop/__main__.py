from routerloop.cli import main

raise SystemExit(main())
