from hemo.cli import main

raise SystemExit(main())
