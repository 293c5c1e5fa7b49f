#!/usr/bin/env bash
# Rebuilds the embedded font subsets from Debian's fonts-dejavu-core (DejaVu Sans 2.37) with
# fontTools (`pip install fonttools`). The certificate only needs Latin, Cyrillic (with the
# letters of the other languages of Russia), digits and punctuation, so the embedded fonts are
# subsets of those ranges: a tenth of the size, and so is every PDF.
set -euo pipefail
cd "$(dirname "$0")"
SRC=${DEJAVU_DIR:-/usr/share/fonts/truetype/dejavu}
RANGES="U+0020-007E,U+00A0-00FF,U+0100-017F,U+0400-052F,U+1E00-1EFF,U+2010-2027,U+2030-203A,U+20AC,U+20BD,U+2116,U+2122,U+2190-2193,U+25CF"
for face in DejaVuSans DejaVuSans-Bold; do
    pyftsubset "$SRC/$face.ttf" --unicodes="$RANGES" --layout-features='kern,liga' \
        --name-IDs='*' --name-legacy --name-languages='*' --notdef-outline \
        --output-file="$face-subset.ttf"
done
