"""Write the student release of the course notebooks: solutions and answers out, outputs cleared.

    python scripts/student_release.py [--out release]     (or: make student)

The instructor notebooks in ``notebooks/`` are the only source. nbgrader's own preprocessors do
the work, without a course directory or database: ``ClearSolutions`` replaces every region between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` by ``raise NotImplementedError()`` (the checks then
say "not done yet") and every answer between ``=== BEGIN SOLUTION ===`` and
``=== END SOLUTION ===`` by "YOUR ANSWER HERE"; ``ClearOutput`` removes outputs.
"""
import argparse
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def student_version(nb):
    """The student release of one instructor notebook (a new notebook; ``nb`` is unchanged)."""
    try:
        from nbgrader.preprocessors import ClearOutput, ClearSolutions
    except ImportError:
        sys.exit("The student release needs nbgrader: pip install -e '.[instructor]' "
                 "(or make student, which installs it).")
    nb = nbformat.from_dict(nb)  # a copy
    resources = {}
    for preprocessor in (ClearSolutions(), ClearOutput()):
        nb, resources = preprocessor.preprocess(nb, resources)
    return nb


def write_release(out, notebooks=NOTEBOOKS):
    """Write ``out/NN_topic.ipynb`` for every instructor notebook; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        nb = student_version(nbformat.read(path, as_version=4))
        nbformat.write(nb, out / path.name)
        written.append(out / path.name)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "release" / "notebooks"),
                        help="folder for the student notebooks (default: release/notebooks)")
    args = parser.parse_args(argv)
    written = write_release(args.out)
    print(f"{len(written)} student notebooks in {args.out}")


if __name__ == "__main__":
    main()
