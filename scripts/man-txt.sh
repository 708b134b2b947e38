#!/bin/sh
# Renders one mdoc page as plain text, the way `make man` writes man/txt and
# internal/mantest checks it: mandoc's terminal output at 78 columns, with
# the backspace overstriking (bold, underline) and the tabs removed by col.
set -e
mandoc -T utf8 -O width=78 "$1" | col -bx
