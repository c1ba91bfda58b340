#!/usr/bin/env python3
"""Print the URI of the Debian archive this machine's apt already uses.

scripts/autobahn.sh fetches Debian 11 packages from the same archive (every
Debian mirror carries all supported releases). The chosen entry is a `deb`
source whose suite is this system's own release codename, from the deb822
files (*.sources) first, then the one-line files (sources.list, *.list).
Prints nothing and exits 1 when there is no such entry. Stdlib only.
"""
import glob
import re
import sys


def codename():
    with open("/etc/os-release") as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            if key == "VERSION_CODENAME":
                return value.strip("\"'")
    return ""


def deb822_entries(path):
    """(types, uris, suites) for each enabled stanza of a .sources file."""
    with open(path) as f:
        text = f.read()
    for stanza in re.split(r"\n[ \t]*\n", text):
        fields = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and key:  # continuation line
                fields[key] += line.split()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.split()
        if fields.get("enabled", ["yes"])[0].lower() == "no":
            continue
        yield fields.get("types", []), fields.get("uris", []), fields.get("suites", [])


def one_line_entries(path):
    """(types, uris, suites) for each `deb` line of a sources.list file."""
    with open(path) as f:
        for line in f:
            line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0])  # drop [options]
            words = line.split()
            if len(words) >= 3:
                yield [words[0]], [words[1]], [words[2]]


def main():
    release = codename()
    sources = [(p, deb822_entries) for p in sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))]
    sources += [(p, one_line_entries)
                for p in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]
    for path, reader in sources:
        try:
            entries = list(reader(path))
        except OSError:
            continue
        for types, uris, suites in entries:
            if "deb" in types and release in suites and uris:
                print(uris[0])
                return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
