"""``python -m hemo`` and the installed ``hemo`` command."""

from hemo.runtime import quiet_tensorflow


def run() -> None:
    """TensorFlow is quietened before anything imports it, then the CLI runs."""
    quiet_tensorflow()
    from hemo.cli import main

    raise SystemExit(main())


if __name__ == "__main__":
    run()
