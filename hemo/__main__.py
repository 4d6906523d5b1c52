from hemo.runtime import quiet_tensorflow

quiet_tensorflow()

from hemo.cli import main  # noqa: E402

raise SystemExit(main())
