#!/bin/sh
# The formatting rule of STYLE.md: every C file of src/, tests/unit/ and fuzz/ is as
# clang-format (with the repository's .clang-format) would write it. Prints each file that
# differs; `make format` rewrites them.
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check-format: clang-format missing (Debian package clang-format)"; exit 1; }
bad=0
for f in $(find src tests/unit fuzz -name '*.[ch]' | sort); do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		echo "not formatted: $f"
		bad=1
	fi
done
exit $bad
