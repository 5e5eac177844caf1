"""Every generation default a user sees, in one place (no torch: the CLI's help imports it).

The CLI, the web page and the Python API all take their defaults from here.
"""

MODES = ("oneshot", "texture")
LEVELS = ("auto", "peak", "loudness", "raw")
DEFAULT_VARIATION = 0.5  # 0 = close to one of your sounds … 1 = new blends between distant ones
DEFAULT_DENSITY = 1.0  # × the corpus's event rate (textures)
DENSITY_RANGE = (0.1, 8.0)
DEFAULT_LEVEL = "auto"  # one-shots peak-normalized, textures at the corpus's loudness
