"""``python -m varscale_cli``: the same as the ``varscale`` command."""

from .cli import main

main()
