#!/usr/bin/env python3
"""Experiment 3: copy live studies into docs/studies/NAME.sqlite.gz (a consistent copy through
SQLite's backup API, the write-ahead log included, then gzipped), while their runs go on.
Usage: python3 docs/studies/exp3-snapshot.py WORKDIR NAME..."""
import gzip
import os
import shutil
import sqlite3
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
if len(sys.argv) < 3:
    sys.exit(__doc__)
work, names = sys.argv[1], sys.argv[2:]
for name in names:
    src = sqlite3.connect(f'file:{os.path.join(work, name)}.sqlite?mode=ro', uri=True)
    fd, tmp = tempfile.mkstemp(suffix='.sqlite')
    os.close(fd)
    dst = sqlite3.connect(tmp)
    src.backup(dst)
    dst.execute('PRAGMA journal_mode=DELETE')
    dst.close()
    src.close()
    out = os.path.join(here, f'{name}.sqlite.gz')
    with open(tmp, 'rb') as f, gzip.open(out + '.tmp', 'wb', compresslevel=9) as g:
        shutil.copyfileobj(f, g)
    os.replace(out + '.tmp', out)
    os.remove(tmp)
    print(name, os.path.getsize(out), 'bytes')
